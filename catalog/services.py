"""Every write to the catalog: create, edit, delete, push, drift and its repair."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from digitalriver import errors as dr_errors
from digitalriver.client import calls_about, get_client
from digitalriver.models import Instruction
from digitalriver.services.outbox import instruction_enqueue, instruction_send

from . import dr_mapping
from .models import Sku

PUSH_KIND = "catalog.sku.push"
DELETE_KIND = "catalog.sku.delete"

# Fields whose change means DR's copy is stale.
DR_FIELDS = frozenset({field for field, _ in dr_mapping.SKU_FIELDS} | {"fulfillment_model"})


def sku_create(*, values: dict, by=None) -> Sku:
    """A new SKU starts as a draft: nothing goes to DR until someone pushes it."""
    sku = Sku(**values)
    sku.full_clean()
    sku.save()
    return sku


@transaction.atomic
def sku_update(*, sku: Sku, values: dict, by=None) -> Sku:
    """Apply edits; if DR already has the SKU, push the new values (or mark it out of sync)."""
    sku = Sku.objects.select_for_update().get(pk=sku.pk)
    changed = {field for field, value in values.items() if getattr(sku, field) != value}
    if "sku_id" in changed and sku.sync_state != Sku.SyncState.DRAFT:
        # DR keeps the SKU and its inventory item under the old id; a new id would orphan both.
        raise ValidationError({"sku_id": "The SKU id cannot change once the SKU was pushed: create a new SKU."})
    for field, value in values.items():
        setattr(sku, field, value)
    sku.full_clean()
    sku.save()
    if changed & DR_FIELDS:
        _after_edit(sku, by=by)
    return sku


def sku_after_admin_save(*, sku: Sku, changed_fields: Iterable[str], by=None) -> None:
    """The admin saves the form itself; this does what an edit means for DR."""
    if set(changed_fields) & DR_FIELDS:
        with transaction.atomic():
            _after_edit(Sku.objects.select_for_update().get(pk=sku.pk), by=by)


def _after_edit(sku: Sku, *, by) -> None:
    if sku.sync_state == Sku.SyncState.DRAFT:
        return
    if settings.CATALOG_AUTO_PUSH:
        _queue_push(sku, by=by, reason="edited after a push")
    elif sku.sync_state in (Sku.SyncState.SYNCED, Sku.SyncState.OUT_OF_SYNC):
        sku.mark_out_of_sync(by=by, description="edited after a push; automatic pushes are off")
        sku.save()


def skus_push(*, skus: Iterable[Sku], by=None) -> int:
    """Queue a push of each SKU's newest values; a SKU already waiting for a push is not queued twice."""
    return len(_queue_pushes(skus, by=by))


def _queue_pushes(skus: Iterable[Sku], *, by) -> list[Instruction]:
    instructions = []
    for sku in skus:
        with transaction.atomic():
            instructions.append(
                _queue_push(Sku.objects.select_for_update().get(pk=sku.pk), by=by, reason="push requested")
            )
    return instructions


def _queue_push(sku: Sku, *, by, reason: str) -> Instruction:
    sku.queue_push(by=by, description=reason)
    sku.save()
    return instruction_enqueue(
        kind=PUSH_KIND,
        subject=f"sku:{sku.sku_id}",
        payload={"sku_id": sku.sku_id},
        coalesce=True,
        delay_seconds=settings.CATALOG_PUSH_DELAY_SECONDS,
    )


@dataclass
class SyncReport:
    """What a catalog sync did: SKU ids by the sync state each ended in, DR's message per failure."""

    by_state: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def pushed(self) -> int:
        return sum(len(sku_ids) for sku_ids in self.by_state.values())

    def count(self, state: str) -> int:
        return len(self.by_state.get(state, []))


def skus_sync(*, include_synced: bool = False, by=None) -> SyncReport:
    """Push SKUs that are out of sync or failed (with ``include_synced``: every SKU) and send them now.

    The pushes are sent from this process rather than left to the background, so whoever asked
    sees each outcome; a sender elsewhere that meets the same instruction finds it claimed.
    """
    stale = (Sku.SyncState.OUT_OF_SYNC, Sku.SyncState.FAILED)
    skus = Sku.objects.all() if include_synced else Sku.objects.filter(sync_state__in=stale)
    instructions = _queue_pushes(list(skus.order_by("pk")), by=by)
    for instruction_id in dict.fromkeys(instruction.pk for instruction in instructions):
        instruction_send(instruction_id=instruction_id, ignore_backoff=True)
    report = SyncReport()
    pushed_ids = [instruction.payload["sku_id"] for instruction in instructions]
    for sku in Sku.objects.filter(sku_id__in=pushed_ids).order_by("sku_id"):
        report.by_state.setdefault(sku.sync_state, []).append(sku.sku_id)
        if sku.sync_state == Sku.SyncState.FAILED:
            report.errors[sku.sku_id] = sku.sync_error
    return report


@transaction.atomic
def sku_delete(*, sku: Sku, by=None) -> None:
    """Delete locally and, if DR has it, at DR (which deletes its inventory item too)."""
    sku = Sku.objects.select_for_update().get(pk=sku.pk)
    if sku.sync_state != Sku.SyncState.DRAFT:
        instruction_enqueue(kind=DELETE_KIND, subject=f"sku:{sku.sku_id}", payload={"sku_id": sku.sku_id})
    sku.delete()


def skus_change_model(*, skus: Iterable[Sku], model: str, by=None) -> tuple[list[Sku], dict[str, list[str]]]:
    """Move SKUs to another fulfillment model; those the new model's rules refuse are reported, not changed."""
    changed, refused = [], {}
    for sku in skus:
        try:
            changed.append(sku_update(sku=sku, values={"fulfillment_model": model}, by=by))
        except ValidationError as exc:
            refused[sku.sku_id] = [
                f"{field}: {message}" for field, messages in exc.message_dict.items() for message in messages
            ]
    return changed, refused


@dataclass
class DriftReport:
    sku: Sku
    rows: list[dict]
    error: str = ""

    @property
    def drifted(self) -> bool:
        return bool(self.rows)


def sku_check_drift(*, sku: Sku) -> DriftReport:
    """Fetch the SKU and its inventory item from DR and record where they differ from ours."""
    client = get_client()
    try:
        with calls_about(f"sku:{sku.sku_id}"):
            dr_sku = _get_or_none(client, f"/skus/{sku.sku_id}")
            dr_item = _get_or_none(client, f"/inventory-items/{sku.sku_id}") if sku.is_physical else None
    except dr_errors.DigitalRiverError as exc:
        return DriftReport(sku=sku, rows=[], error=str(exc))
    with transaction.atomic():
        locked = Sku.objects.select_for_update().get(pk=sku.pk)
        rows = dr_mapping.differences(locked, dr_sku, dr_item)
        now = timezone.now()
        locked.dr_sku, locked.dr_inventory_item, locked.fetched_at = dr_sku, dr_item, now
        locked.drift, locked.drift_checked_at = rows, now
        locked.save(
            update_fields=["dr_sku", "dr_inventory_item", "fetched_at", "drift", "drift_checked_at", "updated_at"]
        )
        if rows and locked.sync_state in (Sku.SyncState.SYNCED, Sku.SyncState.OUT_OF_SYNC):
            locked.mark_out_of_sync(description=f"drift found in {', '.join(row['field'] for row in rows)}")
            locked.save()
    return DriftReport(sku=locked, rows=rows)


@dataclass
class DriftScan:
    reports: list[DriftReport] = dataclasses.field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "checked": len(self.reports),
            "in_step": sum(1 for report in self.reports if not report.drifted and not report.error),
            "drifted": sum(1 for report in self.reports if report.drifted),
            "errors": sum(1 for report in self.reports if report.error),
        }


def skus_check_drift(*, skus: Iterable[Sku] | None = None) -> DriftScan:
    """Check each SKU against DR (by default every SKU ever pushed); one failure does not stop the rest."""
    if skus is None:
        skus = Sku.objects.filter(pushed_at__isnull=False).order_by("sku_id").iterator()
    return DriftScan(reports=[sku_check_drift(sku=sku) for sku in skus])


def _get_or_none(client, path: str) -> dict | None:
    try:
        return client.get(path)
    except dr_errors.NotFound:
        return None


def sku_take_dr_values(*, sku: Sku, by=None) -> Sku:
    """Copy DR's SKU values over ours (from the last drift check) and push, so the pair agrees again.

    DR's SKU is the reference: where its inventory item differs, the push brings the item back in
    step with the SKU.
    """
    if sku.fetched_at is None:
        raise ValidationError("DR's values are not known yet: check drift first.")
    if not sku.dr_sku:
        raise ValidationError("DR has no copy of this SKU to take values from: push ours instead.")
    values = dr_mapping.our_values_from_dr(sku.dr_sku, current_model=sku.fulfillment_model)
    with transaction.atomic():
        sku = sku_update(sku=sku, values=values, by=by)
        if sku.sync_state != Sku.SyncState.QUEUED:
            _queue_push(Sku.objects.select_for_update().get(pk=sku.pk), by=by, reason="took DR's values")
    return Sku.objects.get(pk=sku.pk)

"""Every write to the catalog: create, edit, delete, push, drift and its repair, stock as DR reports it.

Functions that call DR while you wait end in ``_fetch`` (a read at DR whose answer is stored here),
except ``skus_sync``, which sends its pushes at once; every other change for DR is an outbox row,
sent after the transaction commits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.types import Actor, JSONObject
from digitalriver import errors as dr_errors
from digitalriver.client import calls_about, get_client
from digitalriver.models import Instruction
from digitalriver.services.outbox import instruction_enqueue, instruction_send

from . import dr_mapping, selectors
from .models import Sku

if TYPE_CHECKING:
    from digitalriver.client import DigitalRiverClient

PUSH_KIND = "catalog.sku.push"
DELETE_KIND = "catalog.sku.delete"

# Fields whose change means DR's copy is stale.
DR_FIELDS = frozenset({field for field, _ in dr_mapping.SKU_FIELDS} | {"fulfillment_model"})


def sku_create(*, values: dict[str, Any], by: Actor = None) -> Sku:
    """A new SKU starts as a draft: nothing goes to DR until someone pushes it."""
    sku = Sku(**values)
    sku.full_clean()
    sku.save()
    return sku


@transaction.atomic
def sku_update(*, sku: Sku, values: dict[str, Any], by: Actor = None) -> Sku:
    """Apply edits; if DR already has the SKU, push the new values (or mark it out of sync).

    Sku.clean() refuses what DR's rules refuse, and a new id for a SKU that was pushed.
    """
    sku = Sku.objects.select_for_update().get(pk=sku.pk)
    changed = {field for field, value in values.items() if getattr(sku, field) != value}
    for field, value in values.items():
        setattr(sku, field, value)
    sku.full_clean()
    sku.save()
    if changed & DR_FIELDS:
        _after_edit(sku, by=by)
    return sku


def sku_after_admin_save(*, sku: Sku, changed_fields: Iterable[str], by: Actor = None) -> None:
    """The admin saves the form itself; this does what an edit means for DR."""
    if set(changed_fields) & DR_FIELDS:
        with transaction.atomic():
            _after_edit(Sku.objects.select_for_update().get(pk=sku.pk), by=by)


def _after_edit(sku: Sku, *, by: Actor) -> None:
    if sku.sync_state == Sku.SyncState.DRAFT:
        return
    if settings.CATALOG_AUTO_PUSH:
        _queue_push(sku, by=by, reason="edited after a push")
    elif sku.sync_state in (Sku.SyncState.SYNCED, Sku.SyncState.OUT_OF_SYNC):
        sku.mark_out_of_sync(by=by, description="edited after a push; automatic pushes are off")
        sku.save()


# --- pushing: one gate in front of every push ---------------------------------------------------


@dataclass(frozen=True)
class PushRefusal:
    """A SKU the push gate held back, with DR's rules it breaks by our field name."""

    sku_id: str
    breaches: dict[str, list[str]]

    @property
    def messages(self) -> list[str]:
        """'part_number: A part number is required for its inventory item.', one per breach."""
        return [f"{field}: {message}" for field, messages in self.breaches.items() for message in messages]

    def __str__(self) -> str:
        return f"{self.sku_id} was not pushed: {' '.join(self.messages)}"


class PushRefused(Exception):
    """Raised on the locked row so nothing of the push is written; ``skus_push`` reports it."""

    def __init__(self, refusal: PushRefusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


@dataclass(frozen=True)
class PushPlan:
    """What a push of some SKUs would do: the SKU ids it would queue and those DR's rules hold back."""

    ready: list[str]
    refused: list[PushRefusal]


@dataclass(frozen=True)
class PushOutcome:
    """What a push did: the SKU ids queued (a SKU already waiting joins its queued push) and refusals."""

    queued: list[str]
    refused: list[PushRefusal]


def sku_push_refusal(*, sku: Sku) -> PushRefusal | None:
    """DR's rules the SKU's current values break, or None: a push DR would refuse is not queued.

    The values can break them although every edit is checked: a rule that changed since, or a row
    written around the services (SQL, a data migration).
    """
    try:
        sku.clean()
    except ValidationError as exc:
        return PushRefusal(sku_id=sku.sku_id, breaches=exc.message_dict)
    return None


def skus_push_plan(*, skus: Iterable[Sku]) -> PushPlan:
    """What ``skus_push`` would do with these SKUs as they are now; nothing is queued."""
    ready, refused = [], []
    for sku in skus:
        refusal = sku_push_refusal(sku=sku)
        if refusal is None:
            ready.append(sku.sku_id)
        else:
            refused.append(refusal)
    return PushPlan(ready=ready, refused=refused)


def skus_push(*, skus: Iterable[Sku], by: Actor = None) -> PushOutcome:
    """Queue a push of each SKU's newest values, unless they break DR's rules (each refusal says which).

    A SKU already waiting for a push is not queued twice. The rules are checked on the locked row,
    so a SKU that passed the plan but was broken meanwhile is still refused.
    """
    instructions, refused = _queue_pushes(skus, by=by)
    return PushOutcome(queued=[instruction.payload["sku_id"] for instruction in instructions], refused=refused)


def _queue_pushes(skus: Iterable[Sku], *, by: Actor) -> tuple[list[Instruction], list[PushRefusal]]:
    instructions, refused = [], []
    for sku in skus:
        try:
            with transaction.atomic():
                locked = Sku.objects.select_for_update().get(pk=sku.pk)
                instructions.append(_queue_push(locked, by=by, reason="push requested"))
        except PushRefused as exc:
            refused.append(exc.refusal)
    return instructions, refused


def _queue_push(sku: Sku, *, by: Actor, reason: str) -> Instruction:
    """Every push passes here: the gate, the transition to queued and the outbox row."""
    refusal = sku_push_refusal(sku=sku)
    if refusal is not None:
        raise PushRefused(refusal)
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
    """What a catalog sync did: SKU ids by the sync state each ended in, DR's message per failure,
    and the SKUs the push gate held back."""

    by_state: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    refused: list[PushRefusal] = dataclasses.field(default_factory=list)

    @property
    def pushed(self) -> int:
        return sum(len(sku_ids) for sku_ids in self.by_state.values())

    def count(self, state: str) -> int:
        return len(self.by_state.get(state, []))


def skus_sync(*, include_synced: bool = False, by: Actor = None) -> SyncReport:
    """Push SKUs that are out of sync or failed (with ``include_synced``: every SKU) and send them to DR now.

    The pushes are sent from this process rather than left to the background, so whoever asked
    sees each outcome; a sender elsewhere that meets the same instruction finds it claimed.
    """
    stale = (Sku.SyncState.OUT_OF_SYNC, Sku.SyncState.FAILED)
    skus = Sku.objects.all() if include_synced else Sku.objects.filter(sync_state__in=stale)
    instructions, refused = _queue_pushes(list(skus.order_by("pk")), by=by)
    for instruction_id in dict.fromkeys(instruction.pk for instruction in instructions):
        instruction_send(instruction_id=instruction_id, ignore_backoff=True)
    report = SyncReport(refused=sorted(refused, key=lambda refusal: refusal.sku_id))
    pushed_ids = [instruction.payload["sku_id"] for instruction in instructions]
    for sku in Sku.objects.filter(sku_id__in=pushed_ids).order_by("sku_id"):
        report.by_state.setdefault(sku.sync_state, []).append(sku.sku_id)
        if sku.sync_state == Sku.SyncState.FAILED:
            report.errors[sku.sku_id] = sku.sync_error
    return report


def sku_delete_reaches_dr(*, sku: Sku) -> bool:
    """Whether deleting the SKU deletes DR's copy (and its inventory item) too: once it was ever pushed."""
    return sku.sync_state != Sku.SyncState.DRAFT


@transaction.atomic
def sku_delete(*, sku: Sku, by: Actor = None) -> None:
    """Delete locally and, if DR has it, at DR (which deletes its inventory item too)."""
    sku = Sku.objects.select_for_update().get(pk=sku.pk)
    if sku_delete_reaches_dr(sku=sku):
        instruction_enqueue(kind=DELETE_KIND, subject=f"sku:{sku.sku_id}", payload={"sku_id": sku.sku_id})
    sku.delete()


def skus_change_model(*, skus: Iterable[Sku], model: str, by: Actor = None) -> tuple[list[Sku], dict[str, list[str]]]:
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


# --- DR's copy: drift and stock, fetched on request and stored --------------------------------


@dataclass
class DriftReport:
    sku: Sku
    rows: list[JSONObject]
    error: str = ""

    @property
    def drifted(self) -> bool:
        return bool(self.rows)


def sku_drift_fetch(*, sku: Sku) -> DriftReport:
    """Fetch the SKU and its inventory item from DR and record where they differ from ours.

    A synced SKU that differs becomes out of sync. When DR cannot be asked, nothing is recorded
    and the report carries DR's error.
    """
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


def skus_drift_fetch(*, skus: Iterable[Sku] | None = None) -> DriftScan:
    """Check each SKU against DR (by default every SKU ever pushed); one failure does not stop the rest."""
    if skus is None:
        skus = Sku.objects.filter(pushed_at__isnull=False).order_by("sku_id").iterator()
    return DriftScan(reports=[sku_drift_fetch(sku=sku) for sku in skus])


def _get_or_none(client: DigitalRiverClient, path: str) -> JSONObject | None:
    try:
        return client.get(path)
    except dr_errors.NotFound:
        return None


@dataclass(frozen=True)
class StockFetch:
    """What asking DR for a SKU's stock gave: the rows stored, or why nothing was (then nothing changed)."""

    sku: Sku
    rows: list[JSONObject] = dataclasses.field(default_factory=list)
    error: str = ""


def sku_stock_fetch(*, sku: Sku) -> StockFetch:
    """GET /inventory-levels for the SKU's same-id inventory item and store the rows with the time.

    DR sends no inventory events, so stock is only ever as fresh as the last fetch. A person is
    waiting for the answer (the SKU page's button), so the call fails fast instead of retrying.
    """
    if not selectors.sku_has_stock_at_dr(sku):
        return StockFetch(sku=sku, error=selectors.NO_STOCK_AT_DR)
    try:
        with calls_about(f"sku:{sku.sku_id}"):
            answer = get_client().get("/inventory-levels", {"inventoryItemIds": sku.sku_id}, while_a_person_waits=True)
    except dr_errors.DigitalRiverError as exc:
        if exc.transient:
            error = f"Digital River could not be reached for stock levels; try again shortly. ({exc})"
        else:
            error = f"Digital River refused the stock request: {exc}"
        return StockFetch(sku=sku, error=error)
    rows = list((answer or {}).get("data", []))
    # Two columns of DR's figures and nothing of ours: a plain UPDATE needs no lock, and it leaves
    # updated_at (when our values last changed) alone.
    Sku.objects.filter(pk=sku.pk).update(stock_levels=rows, stock_fetched_at=timezone.now())
    return StockFetch(sku=Sku.objects.get(pk=sku.pk), rows=rows)


def sku_take_dr_values(*, sku: Sku, by: Actor = None) -> Sku:
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

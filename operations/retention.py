"""Keeping the integration's busiest tables small: old processed events, calls and attempts go.

Run daily (``operations.tasks.prune_records``) and by hand (``manage.py prune_records``). Rows are
deleted a batch at a time, each batch a range of primary keys in its own short transaction, so no
delete holds locks on a large table for long.

What stays, whatever its age:

- every webhook event not processed (received or failed), and the events that tell an order's
  business story (``KEPT_EVENT_TYPES``: the order page shows them without the technical entries);
- every attempt of an instruction that is not done (failed, cancelled or still to be sent);
- the events, calls and attempts of open orders (not complete, cancelled or returned): their
  timeline still tells the whole story;
- instructions themselves and their transitions, which the timeline reads without the attempts.

The operations dashboard reads the last 7 days, which RETENTION_DAYS never reaches below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import CharField, Model, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django_fsm_log.models import StateLog

from commerce.models import Order
from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent

from .selectors import DAYS

BATCH_SIZE = 5_000
MIN_DAYS = DAYS
# DR's events the business timeline tells (desk.timeline_technical.BUSINESS_EVENTS; a test pins both).
KEPT_EVENT_TYPES = frozenset(
    {
        "order.charge.capture.complete",
        "order.charge.capture.failed",
        "order.charge.cancel.complete",
        "order.charge.failed",
    }
)
CLOSED_ORDER_STATES = (Order.State.COMPLETE, Order.State.CANCELLED, Order.State.RETURNED)


@dataclass(frozen=True)
class PruneResult:
    cutoff: datetime
    dry_run: bool
    counts: dict[str, int]  # table → rows deleted (or, in a dry run, that would be)


def _open_orders() -> QuerySet[Order]:
    return Order.objects.exclude(state__in=CLOSED_ORDER_STATES)


def _open_order_subjects() -> QuerySet[Order, Any]:
    return (
        _open_orders()
        .annotate(subject=Concat(Value("order:"), "dr_order_id", output_field=CharField()))
        .values("subject")
    )


def prunable_events(cutoff: datetime) -> QuerySet[WebhookEvent]:
    return (
        WebhookEvent.objects.filter(
            state__in=(WebhookEvent.State.PROCESSED, WebhookEvent.State.IGNORED), received_at__lt=cutoff
        )
        .exclude(type__in=KEPT_EVENT_TYPES)
        .exclude(order_id__in=_open_orders().values("dr_order_id"))
    )


def prunable_calls(cutoff: datetime) -> QuerySet[ApiCall]:
    return ApiCall.objects.filter(started_at__lt=cutoff).exclude(subject__in=_open_order_subjects())


def prunable_attempts(cutoff: datetime) -> QuerySet[Attempt]:
    return Attempt.objects.filter(started_at__lt=cutoff, instruction__state=Instruction.State.DONE).exclude(
        instruction__subject__in=_open_order_subjects()
    )


def prune_records(
    *, days: int, dry_run: bool = False, batch_size: int = BATCH_SIZE, now: datetime | None = None
) -> PruneResult:
    """Delete (or, with ``dry_run``, count) what is older than ``days`` and no longer needed."""
    if days < MIN_DAYS:
        raise ValueError(f"records younger than {MIN_DAYS} days are kept (the dashboard's week), got {days}")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    event_type = ContentType.objects.get_for_model(WebhookEvent)

    def forget_event_transitions(ids: list[int]) -> None:
        StateLog.objects.filter(content_type=event_type, object_id__in=ids).delete()

    tables: list[tuple[str, Callable[[datetime], QuerySet[Any]], Callable[[list[int]], None] | None]] = [
        ("webhook events", prunable_events, forget_event_transitions),
        ("API calls", prunable_calls, None),
        ("attempts", prunable_attempts, None),
    ]
    counts = {}
    for name, rows_of, also in tables:
        rows = rows_of(cutoff)
        counts[name] = rows.count() if dry_run else delete_in_batches(rows, batch_size, also)
    return PruneResult(cutoff=cutoff, dry_run=dry_run, counts=counts)


def delete_in_batches(rows: QuerySet[Model], batch_size: int, also: Callable[[list[int]], None] | None = None) -> int:
    """Delete ``rows`` a primary-key range at a time, lowest first; ``also`` runs with each batch's ids."""
    deleted = 0
    after = 0
    while True:
        ids = list(rows.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        with transaction.atomic():
            if also is not None:
                also(ids)
            # The range, with the conditions again: a row that changed since it was read stays.
            count, _ = rows.filter(pk__gte=ids[0], pk__lte=ids[-1]).delete()
        deleted += count
        after = ids[-1]

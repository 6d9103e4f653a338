"""Reconcile the order mirror with DR, so that a missed webhook cannot leave an order stuck.

Three passes, each independent of the others' failures:

1. **Compare every open order** (pending payment, in review, accepted, fulfilled, blocked) with
   `GET /orders/{id}` through `order_fetch`, which mirrors whatever DR has moved on. An order that is
   accepted at DR but whose distributed lines have no fulfillment order gets the follow-up its
   `order.accepted` handler would have made (see `fulfillment_order_ensure`), since the event that would
   have caused it may be older than the pull below reaches.
2. **Compare every open refund and return** with DR (`GET /refunds/{id}`, `GET /fulfillment-returns/{id}`,
   `GET /returns/{id}`): a refund still pending here that DR paid or failed, or a return DR's
   warehouse approved or received, is brought up to date as its events would have (emails included,
   once), whatever the order's own state.
3. **Pull the events DR kept** from `GET /events` into the inbox, marked as polled, and process the
   new ones. The inbox stores an event once by DR id, so pulling one we already hold does nothing.

Which events to pull: DR lists newest first, pages with `startingAfter`/`endingBefore` (ids) and
filters with `createdTime[gt]`. We read "newer than the last one seen" as a time window, not an id
cursor: `createdTime[gt]` = the newest `createdTime` of any event we hold, minus `SAFETY_MARGIN`.
An id cursor would skip every event created before the newest one we hold, which is exactly where
a dropped or still-retrying delivery sits; the margin re-reads those and the inbox's dedupe makes
re-reading free. The margin is a little over a day so that a daily run re-reads everything since the
previous run even while other webhooks keep arriving. With no event held yet (a first run), the
window is the last `FIRST_RUN_LOOKBACK`, not DR's whole 30 days. Only the types a handler is
registered for are asked for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.db.models import Max
from django.utils import timezone

from commerce.models import Order, Refund
from commerce.services import dr_time, order_fetch
from core.types import JSONObject
from digitalriver.client import get_client
from digitalriver.errors import DigitalRiverError, NotFound
from digitalriver.models import WebhookEvent
from digitalriver.registry import handled_event_types
from digitalriver.services.inbox import InvalidEvent, webhook_event_process, webhook_event_store

from .models import Return
from .refund_handlers import refund_follow
from .return_mirror import return_mirror, return_refund_automatically
from .services import fulfillment_order_ensure

logger = logging.getLogger(__name__)

OPEN_STATES = (
    Order.State.PENDING_PAYMENT,
    Order.State.IN_REVIEW,
    Order.State.ACCEPTED,
    Order.State.FULFILLED,
    Order.State.BLOCKED,
)
FIRST_RUN_LOOKBACK = timedelta(days=3)
# DR's `GET /events` takes "an array of fewer than 20 event types" in `types`: more are asked in turns.
EVENT_TYPES_PER_CALL = 19
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SAFETY_MARGIN = timedelta(hours=25)
#: What DR can change about an order that matters to us; any difference means the mirror was behind.
COMPARED_FIELDS = (
    "state",
    "fraud_state",
    "dr_updated_at",
    "captured_amount",
    "cancelled_amount",
    "refunded_amount",
)


@dataclass
class ReconcileSummary:
    orders_checked: int = 0
    orders_changed: list[str] = field(default_factory=list)
    reversals_checked: int = 0
    reversals_changed: list[str] = field(default_factory=list)
    events_since: datetime | None = None
    events_pulled: int = 0
    events_already_held: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_since": _dr_time(self.events_since) if self.events_since else None}

    def lines(self) -> list[str]:
        changed = f" ({', '.join(self.orders_changed)})" if self.orders_changed else ""
        since = _dr_time(self.events_since) if self.events_since else "-"
        moved = f" ({', '.join(self.reversals_changed)})" if self.reversals_changed else ""
        return [
            f"orders checked: {self.orders_checked}, changed: {len(self.orders_changed)}{changed}",
            f"refunds and returns checked: {self.reversals_checked}, changed: {len(self.reversals_changed)}{moved}",
            f"events since {since}: {self.events_pulled} pulled, {self.events_already_held} already held",
            f"errors: {len(self.errors)}",
            *(f"  {error}" for error in self.errors),
        ]


def orders_reconcile(*, now: datetime | None = None) -> ReconcileSummary:
    """Bring every open order and the inbox up to date with DR; returns what it found and changed."""
    summary = ReconcileSummary()
    _compare_open_orders(summary)
    _compare_open_reversals(summary)
    _pull_events(summary, now=now or timezone.now())
    return summary


# --- orders ---------------------------------------------------------------------------------------


def _compare_open_orders(summary: ReconcileSummary) -> None:
    # Read up front: the loop writes to the same table between DR's answers.
    orders = list(Order.objects.filter(state__in=OPEN_STATES).order_by("id").only("dr_order_id", *COMPARED_FIELDS))
    for held in orders:
        summary.orders_checked += 1
        try:
            if _order_reconcile(held):
                summary.orders_changed.append(held.dr_order_id)
        except NotFound:
            summary.errors.append(f"order {held.dr_order_id}: DR has no such order")
        except DigitalRiverError as exc:
            summary.errors.append(f"order {held.dr_order_id}: {exc}")
        except Exception as exc:
            # One order's surprise (bad data, a constraint) must not keep the others stuck.
            logger.exception("reconciling order %s failed", held.dr_order_id)
            summary.errors.append(f"order {held.dr_order_id}: {type(exc).__name__}: {exc}")


def _order_reconcile(held: Order) -> bool:
    """Mirror DR's order; True if DR had moved it on."""
    before = _compared(held)
    order = order_fetch(dr_order_id=held.dr_order_id)
    if order.state == Order.State.ACCEPTED:
        # An accepted order whose order.accepted was missed still gets its fulfillment order.
        fulfillment_order_ensure(order=order)
    return _compared(order) != before


def _compared(order: Order) -> tuple[Any, ...]:
    return tuple(getattr(order, name) for name in COMPARED_FIELDS)


# --- refunds and returns -------------------------------------------------------------------------


def _compare_open_reversals(summary: ReconcileSummary) -> None:
    refunds = Refund.objects.filter(state__in=Refund.OPEN_STATES).exclude(dr_refund_id="").order_by("id")
    for refund in list(refunds):
        _reversal_reconcile(summary, f"refund {refund.dr_refund_id}", refund.state, partial(_refund_now, refund))
    returns = Return.objects.filter(state__in=Return.OPEN_STATES).exclude(dr_return_id="").order_by("id")
    for ret in list(returns):
        _reversal_reconcile(summary, f"return {ret.dr_return_id}", ret.state, partial(_return_now, ret))


def _reversal_reconcile(summary: ReconcileSummary, name: str, before: str, read: Callable[[], str]) -> None:
    summary.reversals_checked += 1
    try:
        if read() != before:
            summary.reversals_changed.append(name)
    except DigitalRiverError as exc:
        summary.errors.append(f"{name}: {exc}")
    except Exception as exc:
        logger.exception("reconciling %s failed", name)
        summary.errors.append(f"{name}: {type(exc).__name__}: {exc}")


def _refund_now(refund: Refund) -> str:
    return str(refund_follow(data=get_client().get(f"/refunds/{refund.dr_refund_id}")).state)


def _return_now(ret: Return) -> str:
    through_warehouse = ret.api == Return.Api.FULFILLMENT_RETURNS
    path = f"/fulfillment-returns/{ret.dr_return_id}" if through_warehouse else f"/returns/{ret.dr_return_id}"
    mirrored = return_mirror(data=get_client().get(path), event_type="")
    return_refund_automatically(ret=mirrored)
    return str(mirrored.state)


# --- events ---------------------------------------------------------------------------------------


def _pull_events(summary: ReconcileSummary, *, now: datetime) -> None:
    summary.events_since = _events_since(now)
    listed: list[JSONObject] = []
    types = handled_event_types()
    for start in range(0, len(types), EVENT_TYPES_PER_CALL):
        # Repeated `types=` parameters, the usual form of an array in a query string.
        params = {
            "createdTime[gt]": _dr_time(summary.events_since),
            "types": types[start : start + EVENT_TYPES_PER_CALL],
        }
        try:
            listed.extend(get_client().paginate("/events", params))
        except DigitalRiverError as exc:
            summary.errors.append(f"events: {exc}")
            break  # DR is failing: the next run asks again for every type
    # Each call lists newest first; one list newest first again, whatever the types' order.
    listed.sort(key=lambda payload: dr_time(payload.get("createdTime")) or EPOCH, reverse=True)
    created: list[WebhookEvent] = []
    for payload in reversed(listed):  # DR lists newest first; the handlers get them oldest first
        try:
            receipt = webhook_event_store(
                payload=payload, body=json.dumps(payload), headers={}, source=WebhookEvent.Source.POLLED
            )
        except InvalidEvent as exc:
            summary.errors.append(f"event {payload.get('id')!r}: {exc}")
            continue
        if receipt.created:
            created.append(receipt.event)
        else:
            summary.events_already_held += 1
    summary.events_pulled = len(created)
    for event in created:
        # Usually its queued job has run already; processing here too means the run ends with its
        # events handled even where jobs run on a thread that this process's exit would cut short.
        outcome = webhook_event_process(event_id=event.pk) or WebhookEvent.objects.get(pk=event.pk)
        if outcome.state == WebhookEvent.State.FAILED:
            reason = (outcome.error or "its handler failed").splitlines()[0]
            summary.errors.append(f"event {outcome.dr_event_id} ({outcome.type}): {reason}")


def _events_since(now: datetime) -> datetime:
    newest = WebhookEvent.objects.aggregate(newest=Max("dr_created_at"))["newest"]
    if newest is None:
        return now - FIRST_RUN_LOOKBACK
    # An event stamped in the future (a clock off somewhere) must not hide the ones since.
    return min(newest, now) - SAFETY_MARGIN


def _dr_time(value: datetime) -> str:
    """DR's form: UTC with milliseconds and a Z."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"

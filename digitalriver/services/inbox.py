"""The webhook inbox: verify, store once, process in the background, replay on demand."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import operator
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.db import Slot, insert_unless_exists, update_returning_compiled
from core.jobs import enqueue_gathered_on_commit, enqueue_on_commit
from core.redaction import REDACTED, is_secret_key, redact_headers
from core.types import Actor, JSONObject

from .. import registry
from ..lease import LeaseKeeper
from ..models import WebhookEvent

logger = logging.getLogger(__name__)

#: A received event nobody claimed for this long (its job was lost) is picked up by the sweep; sooner,
#: the sweep would mostly race jobs still queued behind a burst. An event whose claim ran out (its
#: worker died) needs no grace: the sweep takes it at once.
UNCLAIMED_GRACE = timedelta(minutes=1)


class InvalidEvent(Exception):
    """The delivery is not an event we can store; the message is safe to return to the sender."""


@dataclass(frozen=True)
class Receipt:
    event: WebhookEvent
    created: bool


def webhook_delivery_store(*, body: bytes, headers: Mapping[str, str]) -> Receipt:
    """Store a delivery once; raises InvalidEvent, storing nothing, when the body is not an event.

    The caller has verified DR's signature over exactly these bytes (the webhook endpoint's
    authentication, digitalriver/authentication.py).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("body is not UTF-8") from exc
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"body is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except (ValueError, RecursionError) as exc:
        # int() refusing a number of thousands of digits; nesting deeper than the parser's stack.
        raise InvalidEvent("body is not valid JSON: a number is too long or the nesting too deep") from exc
    if not isinstance(payload, dict):
        raise InvalidEvent("body must be a JSON object")
    return webhook_event_store(payload=payload, body=text, headers=headers, source=WebhookEvent.Source.WEBHOOK)


def webhook_event_store(*, payload: JSONObject, body: str, headers: Mapping[str, str], source: str) -> Receipt:
    """Insert the event unless its DR id is already stored, and queue its processing.

    Payment secrets (a source's or a payment session's ``clientSecret``, card data: whatever sits under
    a secret key) are not kept: ``payload`` and ``body`` are stored redacted, the body written again
    from the redacted payload (still JSON). The signature was checked on the raw body before this.
    A body with nothing to redact is kept byte for byte.
    """
    event_id, event_type = payload.get("id"), payload.get("type")
    if not isinstance(event_id, str) or not event_id.strip():
        raise InvalidEvent("event has no 'id'")
    if not isinstance(event_type, str) or not event_type.strip():
        raise InvalidEvent("event has no 'type'")
    if len(event_id) > 100 or len(event_type) > 100:
        raise InvalidEvent("event 'id' or 'type' is longer than 100 characters")
    stored = _storable(payload)
    if stored is not payload:
        payload, body = stored, json.dumps(stored, ensure_ascii=False)
    event = WebhookEvent(
        dr_event_id=event_id,
        type=event_type,
        source=source,
        order_id=_order_id_of(event_type, payload),
        live_mode=_live_mode_of(payload),
        dr_created_at=_created_time_of(payload),
        body=body,
        payload=payload,
        headers=redact_headers({name: str(value).replace("\x00", "") for name, value in headers.items()}),
    )
    if not insert_unless_exists(event, unique_field="dr_event_id"):
        # Stored before, by an earlier delivery or a concurrent one that won the insert: that one is processed.
        return Receipt(WebhookEvent.objects.get(dr_event_id=event_id), created=False)
    from ..tasks import process_webhook_events

    # Sent with the other events of a burst, not waited for (core.jobs.Gatherer): the row is committed,
    # and a job lost before it reached the broker is the inbox sweep's.
    enqueue_gathered_on_commit(process_webhook_events, event.pk)
    return Receipt(event, created=True)


def webhook_event_process(*, event_id: int) -> WebhookEvent | None:
    """Run the event's handler once. Returns None if the event is not waiting or another worker has it.

    Handlers run outside any transaction of ours so that they can read from DR first and then write
    their changes, with the instructions those cause, in one transaction of their own.
    """
    lease = _claim(event_id)
    if lease is None:
        return None
    event = lease.event
    handler = registry.get_event_handler(event.type)
    error: tuple[str, str] | None = None
    if handler is not None:
        every = settings.DR_INBOX_LEASE_SECONDS / 3
        with LeaseKeeper(lease.renew, every=every, what=f"event {event.dr_event_id}"):
            try:
                handler(event)
            except Exception as exc:
                error = (f"{type(exc).__name__}: {exc}", traceback.format_exc())
                logger.warning("handler for %s %s failed: %s", event.type, event.dr_event_id, error[0])
    if handler is None:
        move, kwargs = event.mark_ignored, {"description": f"no handler for {event.type}"}
    elif error is not None:
        move, kwargs = event.mark_failed, {"error": error[0][:5000], "traceback": error[1]}
    else:
        move, kwargs = event.mark_processed, {}
    logged = move.__name__ not in WebhookEvent.FSM_LOG_UNLOGGED
    # One conditional UPDATE both checks that the event is still ours and records the outcome; a
    # logged move (a failure) writes its StateLog row in the same transaction. Outside one, the
    # usual outcome costs a single statement.
    with transaction.atomic() if logged else contextlib.nullcontext():
        move(**kwargs)
        mine = WebhookEvent.objects.filter(
            pk=event_id, state=WebhookEvent.State.RECEIVED, lease_expires_at=lease.expires_at
        )
        if mine.update(**{name: getattr(event, name) for name in OUTCOME_FIELDS}):
            return event
        if logged:
            transaction.set_rollback(True)
    # Our lease ran out and another worker holds the event now (or has finished it): its outcome
    # is the one to keep.
    logger.warning("event %s was taken over by another worker; not recording", event.dr_event_id)
    return WebhookEvent.objects.get(pk=event_id)


#: What the moves out of "received" change (WebhookEvent.mark_processed, mark_ignored, mark_failed).
OUTCOME_FIELDS = ("state", "processed_at", "lease_expires_at", "error", "traceback")


class Lease:
    """A worker's claim on one event. The event has no claim token: the lease's end, which only
    its holder sets, serves as one (a worker that takes an expired lease over sets a new end)."""

    def __init__(self, event: WebhookEvent, expires_at: datetime) -> None:
        self.event = event
        self.event_id = event.pk
        self.expires_at = expires_at

    def renew(self) -> bool:
        """Push the lease a full lease ahead; False if it is no longer ours."""
        until = timezone.now() + _lease()
        mine = WebhookEvent.objects.filter(
            pk=self.event_id, state=WebhookEvent.State.RECEIVED, lease_expires_at=self.expires_at
        )
        if not mine.update(lease_expires_at=until):
            return False
        self.expires_at = until
        return True


def _lease() -> timedelta:
    return timedelta(seconds=settings.DR_INBOX_LEASE_SECONDS)


def _claim(event_id: int) -> Lease | None:
    now = timezone.now()
    until = now + _lease()
    # One statement, atomic alone, that also reads the event back. Handlers read the parsed
    # payload; the raw body and headers are for people and replays.
    claimed = update_returning_compiled(
        WebhookEvent,
        "inbox claim",
        _claim_statement,
        values={"pk": event_id, "now": now, "until": until},
        defer=("body", "headers"),
    )
    return Lease(claimed, until) if claimed is not None else None


def _claim_statement() -> tuple[QuerySet[WebhookEvent], dict[str, Any]]:
    free = WebhookEvent.objects.filter(pk=Slot("pk", WebhookEvent, "id"), state=WebhookEvent.State.RECEIVED).exclude(
        lease_expires_at__gt=Slot("now", WebhookEvent, "lease_expires_at")
    )
    return free, {"lease_expires_at": Slot("until", WebhookEvent, "lease_expires_at"), "attempts": F("attempts") + 1}


def webhook_events_replay(*, events: Iterable[WebhookEvent], by: Actor = None, enqueue: bool = True) -> int:
    """Put the events back to 'received' (and queue them, unless the caller will process them).

    An event still 'received' is queued again only if no worker holds it: its job was lost.
    """
    count = 0
    for event in events:
        with transaction.atomic():
            locked = WebhookEvent.objects.select_for_update().get(pk=event.pk)
            if locked.state == WebhookEvent.State.RECEIVED:
                if locked.lease_expires_at and locked.lease_expires_at > timezone.now():
                    continue
            else:
                locked.replay(by=by, description="replayed")
                locked.save()
            if enqueue:
                from ..tasks import process_webhook_event

                enqueue_on_commit(process_webhook_event, locked.pk)
            count += 1
    return count


def inbox_sweep(*, limit: int = 500) -> int:
    """Process received events whose job was lost or whose worker died; returns how many ran."""
    now = timezone.now()
    lost_job = Q(lease_expires_at__isnull=True, received_at__lt=now - UNCLAIMED_GRACE)
    dead_worker = Q(lease_expires_at__lte=now)
    due = (
        WebhookEvent.objects.filter(lost_job | dead_worker, state=WebhookEvent.State.RECEIVED)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in list(due) if webhook_event_process(event_id=pk) is not None)


#: DR's envelopes nest less than a dozen levels; far deeper ones only serve to exhaust a stack.
MAX_JSON_DEPTH = 64


def _storable(payload: JSONObject) -> JSONObject:
    """``payload`` as it may be stored: whatever sits under a secret key redacted (a copy, only when
    something was) and nothing else changed (unlike ``redact_data``, free text is left alone, so an id
    or a tracking number that happens to pass the Luhn check is kept as it is).

    Refuses what json.loads accepts but a JSON column or a later json.dumps does not: NaN and
    infinities (1e400 too), lone surrogates (a "\\ud800" escape), NUL characters (PostgreSQL's jsonb
    refuses "\\u0000") and absurd nesting. Left alone those would fail the insert with a 500, which DR
    retries for days.

    One walk does both: checking, redacting and comparing the copy with the original were three walks,
    0.14 ms for a 4 KB order.accepted (twice its json.loads); this one takes 0.05 ms.
    """
    return _storable_value(payload, 1)


def _storable_value(value: Any, depth: int) -> Any:
    """``value`` itself when nothing under it was redacted, else a redacted copy. Only containers
    recurse (bounded by MAX_JSON_DEPTH): a call per string or number was most of the walk's time."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidEvent(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        copy: dict[str, Any] | None = None
        for index, (key, item) in enumerate(value.items()):
            _check_text(key)
            kept = _storable_value(item, depth + 1) if isinstance(item, dict | list) else _checked_scalar(item, depth)
            if _is_secret_key(key) and kept != REDACTED:
                kept = REDACTED
            if kept is not item and copy is None:
                copy = dict(islice(value.items(), index))
            if copy is not None:
                copy[key] = kept
        return value if copy is None else copy
    if isinstance(value, list):
        items = [
            _storable_value(item, depth + 1) if isinstance(item, dict | list) else _checked_scalar(item, depth)
            for item in value
        ]
        return value if all(map(operator.is_, items, value)) else items
    return _checked_scalar(value, depth - 1)


def _checked_scalar(value: Any, depth: int) -> Any:
    """A string, number, boolean or null inside a container at ``depth``."""
    if depth >= MAX_JSON_DEPTH:
        raise InvalidEvent(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidEvent("body has NaN or an infinite number")
    return value


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InvalidEvent("body has a NUL character (\\u0000)")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidEvent("body has a lone surrogate (e.g. \\ud800) in a string") from exc


#: DR's payloads use a few hundred distinct keys: asking the patterns once per key name, not once per
#: occurrence, took a quarter off the walk. Bounded, so odd keys in a hostile body cannot grow it.
_is_secret_key = lru_cache(maxsize=2048)(is_secret_key)


def _order_id_of(event_type: str, payload: JSONObject) -> str:
    data = payload["data"] if isinstance(payload.get("data"), dict) else {}
    obj = data["object"] if isinstance(data.get("object"), dict) else {}
    # The Charge, Fulfillment, Refund, Invoice … name their order in orderId; a Shipment
    # (fulfillment_order.shipped) in fulfillmentOrderUpstreamId.
    candidates = [obj.get("orderId"), obj.get("fulfillmentOrderUpstreamId")]
    if event_type.startswith(("fulfillment_order.", "fulfillment_cancellation.", "fulfillment_return.")):
        # A fulfillment order and a fulfillment cancellation have no orderId: their upstreamId is the
        # DR order id. Elsewhere upstreamId is some other system's id (ours, for an order).
        candidates.append(obj.get("upstreamId"))
    elif event_type.startswith("order.") and not event_type.startswith("order.charge."):
        candidates.append(obj.get("id"))  # the Order itself
    for candidate in candidates:
        if isinstance(candidate, str | int) and not isinstance(candidate, bool) and str(candidate).strip():
            return str(candidate).strip()[:64]
    return ""


def _live_mode_of(payload: JSONObject) -> bool | None:
    for key, value in payload.items():
        if key.lower() == "livemode" and isinstance(value, bool):
            return value
    return None


def _created_time_of(payload: JSONObject) -> datetime | None:
    value = payload.get("createdTime")
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None

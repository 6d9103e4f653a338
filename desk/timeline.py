"""The order's timeline: what happened to it, newest first, merged from its state log, DR's events,
our instructions with their attempts, the calls we made to DR about it, customer service's
cancellations and the emails sent about it; each source cut at the limit before the merge, so the
queries are the same however long the story."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, Prefetch, QuerySet
from django.urls import reverse
from django_fsm_log.models import StateLog

from commerce.chargebacks import chargeback_sentence
from commerce.models import Chargeback, Document, Order, OrderLine, order_subject, units_of
from commerce.refund_mirror import CREATE_REFUND
from core.types import JSONObject
from digitalriver.models import Instruction
from fulfillment.kinds import (
    CREATE_FULFILLMENT_ORDER,
    CREATE_FULFILLMENT_RETURN,
    CREATE_RETURN,
    POST_FULFILLMENT,
    RECEIVE_RETURN,
    REQUEST_CANCELLATION,
)
from fulfillment.models import CancellationLine, CancellationRequest, Notification, Shipment, ShipmentItem

SOURCE_LABELS = {
    "ordered": "Ordered",
    "state": "Order state",
    "cancellation": "Cancellation",
    "event": "DR event",
    "instruction": "Instruction",
    "attempt": "Attempt",
    "call": "API call",
    "email": "Email",
    "shipment": "Shipment",
    "refund": "Refund",
    "return": "Return",
    "document": "Document",
    "chargeback": "Chargeback",
}
OK, WARNING, ERROR = "ok", "warning", "error"
EVENT_MEANINGS = {
    "order.pending_payment": "waiting for the payment",
    "order.review_opened": "the order is in fraud review",
    "order.accepted": "the order was accepted",
    "order.blocked": "the order was blocked",
    "order.cancelled": "the order was cancelled",
    "order.fulfilled": "every unit is captured or cancelled",
    "order.complete": "the order is complete",
    "order.refunded": "money was refunded",
    "fulfillment_order.pending": "the warehouse has the fulfillment order",
    "fulfillment_order.backordered": "the warehouse backordered units",
    "fulfillment_order.shipped": "the warehouse shipped units",
    "fulfillment_order.cancelled": "the warehouse cancelled units",
    "fulfillment.created": "DR recorded a capture or cancellation",
    "fulfillment_cancellation.created": "DR has the cancellation request",
    "fulfillment_cancellation.accepted": "the warehouse answered the cancellation request",
    "fulfillment_cancellation.rejected": "the warehouse refused the cancellation request",
    "order.charge.capture.complete": "payment captured",
    "order.charge.capture.failed": "a payment capture failed",
    "order.charge.cancel.complete": "payment released",
    "order.charge.failed": "the charge failed",
    "refund.pending": "DR is paying a refund back",
    "refund.pending_information": "a refund waits for the customer's bank details",
    "refund.complete": "a refund was paid back",
    "refund.failed": "a refund failed",
    "fulfillment_return.created": "DR has the return",
    "fulfillment_return.pending": "the warehouse approved the return (return address given)",
    "fulfillment_return.accepted": "the warehouse received the returned goods",
    "fulfillment_return.rejected": "the warehouse rejected the return",
    "return.created": "DR has the return",
    "return.updated": "DR recorded returned goods received",
    "return.accepted": "every returned unit is received; DR refunds it",
    "order.invoice.created": "DR made the invoice",
    "order.credit_memo.created": "DR made a credit memo",
    "order.chargeback": "the customer's bank took money back",
    # DR holds captures, refunds and returns while the order is in dispute (disputes-and-chargebacks.md).
    "order.dispute": "the customer disputed the payment; captures, refunds and returns wait",
    "order.dispute.resolved": "the dispute is over; held captures go again",
}
CANCELLATION_LINES = Prefetch("lines", queryset=CancellationLine.objects.select_related("order_line").order_by("id"))
# Who asked, with their role: "Customer service (alice)".
REQUESTED_BY_GROUPS = Prefetch("requested_by__groups")


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    source: str  # a key of SOURCE_LABELS
    sentence: str
    detail: str = ""
    tone: str = ""  # OK, WARNING, ERROR, or "" when nothing needs noticing
    links: tuple[tuple[str, str], ...] = ()  # (label, URL)

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS[self.source]


def line_names(lines: Iterable[OrderLine]) -> dict[str, str]:
    """DR item id -> what the customer bought, to speak of goods rather than ids."""
    return {line.dr_item_id: line.name or line.dr_sku_id for line in lines}


def order_timeline(
    *, order: Order, limit: int | None = None, lines: list[OrderLine] | None = None, technical: bool = True
) -> list[TimelineEntry]:
    """What happened to the order, newest first, from every source; at most ``limit`` entries.

    Without ``technical`` it is the business story (ordered, accepted, shipped, cancelled, captured,
    returned, refunded, emailed): no API call, attempt or queued instruction, and only the DR events
    that move money. Each source is cut at ``limit`` rows before the merge, so an order with
    thousands of calls costs the same queries and about the same time as a small one. ``lines``
    saves a query when the caller already has them.
    """
    from .timeline_returns import return_entries as _return_entries
    from .timeline_technical import attempt_entries, call_entries, event_entries, instruction_entries

    names = line_names(order.lines.all() if lines is None else lines)
    subject = order_subject(order.dr_order_id)
    machinery = (
        [
            *instruction_entries(subject, names, limit),
            *attempt_entries(subject, names, limit),
            *call_entries(subject, limit),
        ]
        if technical
        else []
    )
    entries = [
        *_ordered(order, names),
        *_order_transitions(order, limit),
        *machinery,
        *_cancellation_entries(order, limit),
        *event_entries(order, limit, technical=technical),
        *_email_entries(order, limit),
        *_shipment_entries(order, limit),
        *_refund_entries(order, limit),
        *_return_entries(order, limit),
        *_document_entries(order, limit),
        *_chargeback_entries(order, limit),
    ]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit] if limit else entries


def _ordered(order: Order, names: dict[str, str]) -> Iterator[TimelineEntry]:
    """The story's first entry: when the customer ordered, what, and for how much."""
    if order.dr_created_at is not None:
        goods = _listed(list(names.values()))
        yield TimelineEntry(
            at=order.dr_created_at,
            source="ordered",
            sentence=f"{order.customer_name or order.email or 'The customer'} ordered {goods}",
            detail=f"{order.total_amount} {order.currency} in all",
        )


def _refund_entries(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    from .refund_page import refund_entries  # it reads TimelineEntry from here

    return refund_entries(order, limit)


_Rows = TypeVar("_Rows", bound=QuerySet[Any])


def _newest(queryset: _Rows, field: str, limit: int | None) -> _Rows:
    queryset = queryset.order_by(f"-{field}", "-pk")
    return queryset[:limit] if limit else queryset


def _admin_link(label: str, model: type[Model], pk: int) -> tuple[str, str]:
    meta = model._meta
    return label, reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[pk])


def _joined(*parts: object) -> str:
    return " · ".join(str(part) for part in parts if part)


def _order_transitions(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    labels = dict(Order.State.choices)
    for log in _newest(StateLog.objects.for_(order).select_related("by"), "timestamp", limit):
        # "Order is now in dispute (was complete)": the state names read as words of the sentence.
        was = labels.get(log.source_state, log.source_state or "").lower()
        sentence = f"Order is now {labels.get(log.state, log.state).lower()}" + (f" (was {was})" if was else "")
        tone = OK if log.state in (Order.State.FULFILLED, Order.State.COMPLETE) else ""
        if log.state in (Order.State.BLOCKED, Order.State.CANCELLED, Order.State.DISPUTE):
            tone = WARNING
        yield TimelineEntry(
            at=log.timestamp,
            source="state",
            sentence=sentence,
            detail=f"by {log.by}" if log.by else (log.description or ""),
            tone=tone,
        )


@dataclass(frozen=True)
class InstructionWords:
    to_do: str  # "Capture 2 units of Widget (shipment 4f1b2c3d…)"
    done: str  # "Captured 2 units of Widget (shipment 4f1b2c3d…)"


def short_id(value: str) -> str:
    return value if len(value) <= 10 else f"{value[:8]}…"


def _listed(phrases: list[str]) -> str:
    """ "a, b and c"; "no items" for none (a record DR sent without items still reads as a sentence)."""
    if not phrases:
        return "no items"
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def units_of_item(item: JSONObject, quantity_key: str, line_key: str, names: dict[str, str]) -> str:
    """'2 units of Widget' for an item of a payload, named after the order line it points at."""
    name = names.get(str(item.get(line_key)), item.get("inventoryItemId") or "an item")
    return units_of(int(item.get(quantity_key) or 0), name)


def describe_instruction(instruction: Instruction, names: dict[str, str]) -> InstructionWords:
    """The instruction as a sentence about goods and money, not about endpoints."""
    payload = instruction.payload or {}
    items = payload.get("items") or []
    if instruction.kind == POST_FULFILLMENT and items:
        captured = [units_of_item(item, "quantity", "itemId", names) for item in items if item.get("quantity")]
        released = [
            units_of_item(item, "cancelQuantity", "itemId", names) for item in items if item.get("cancelQuantity")
        ]
        shipment = f" (shipment {short_id(payload['shipmentId'])})" if payload.get("shipmentId") else ""
        to_do, done = [], []
        if captured:
            to_do.append(f"Capture {_listed(captured)}{shipment}")
            done.append(f"Captured {_listed(captured)}{shipment}")
        if released:
            to_do.append(f"Cancel {_listed(released)} (release the payment)")
            done.append(f"Cancelled {_listed(released)} (payment released)")
        return InstructionWords("; ".join(to_do), "; ".join(done))
    if instruction.kind == CREATE_FULFILLMENT_ORDER and items:
        goods = _listed([units_of_item(item, "quantity", "upstreamId", names) for item in items])
        return InstructionWords(
            f"Ask the warehouse to ship {goods} (create the fulfillment order)",
            f"Fulfillment order created for {goods}",
        )
    if instruction.kind == REQUEST_CANCELLATION and items:
        goods = _listed([units_of_item(item, "quantity", "fulfillmentOrderItemUpstreamId", names) for item in items])
        return InstructionWords(f"Ask the warehouse to cancel {goods}", f"Asked the warehouse to cancel {goods}")
    if instruction.kind == CREATE_REFUND:
        return _refund_words(payload, names)
    if instruction.kind in (CREATE_FULFILLMENT_RETURN, CREATE_RETURN, RECEIVE_RETURN):
        from .timeline_returns import return_words

        return return_words(instruction, names)
    generic = instruction.kind.rpartition(".")[2].replace("_", " ").capitalize()
    return InstructionWords(generic, generic)


def _refund_words(payload: JSONObject, names: dict[str, str]) -> InstructionWords:
    currency = payload.get("currency") or ""
    if payload.get("items"):
        what = f"for {_listed([units_of_item(item, 'quantity', 'itemId', names) for item in payload['items']])}"
    elif payload.get("type"):
        what = f"for the {str(payload['type']).replace('_', ' ')}"
    elif payload.get("amount") is not None:
        what = f"of {payload['amount']} {currency}"
    else:
        what = f"of {payload.get('percent')}% of what is refundable"
    return InstructionWords(f"Ask DR to refund {what}", f"DR has the refund {what}")


def cancelled_goods(request: CancellationRequest) -> str:
    return _listed(
        [units_of(line.quantity, line.order_line.name or line.order_line.dr_sku_id) for line in request.lines.all()]
    )


def requester(request: CancellationRequest) -> str:
    """'Customer service (alice)': the role says more to a colleague than the login does."""
    user = request.requested_by
    if user is None:
        return ""
    roles = ", ".join(group.name for group in user.groups.all())
    return f"{roles} ({user.get_username()})" if roles else user.get_username()


def accepted_of_asked(request: CancellationRequest) -> tuple[int, int]:
    lines = request.lines.all()
    return sum(line.quantity_accepted or 0 for line in lines), sum(line.quantity for line in lines)


def _warehouse_answer(request: CancellationRequest) -> str:
    accepted, asked = accepted_of_asked(request)
    if accepted == 0:
        return "the warehouse refused it (the units had probably shipped)"
    if accepted < asked:
        return f"the warehouse accepted {accepted} of the {asked} units (it had shipped the rest)"
    return "the warehouse accepted it"


def cancellation_outcome(request: CancellationRequest) -> str:
    """Where the request stands, as one clause: 'the warehouse accepted it; payment released'."""
    State = CancellationRequest.State
    through_warehouse = request.route == CancellationRequest.Route.FULFILLMENT_CANCELLATION
    if request.state == State.FAILED:
        return "Digital River refused the request; nothing was cancelled"
    if not through_warehouse:
        return "payment released" if request.state == State.RELEASED else "waiting for DR to release the payment"
    if request.state == State.REQUESTED:
        return "waiting to be sent to Digital River"
    if request.state == State.SUBMITTED:
        return "waiting for the warehouse to answer"
    if request.state == State.REJECTED:
        return _warehouse_answer(request)
    if request.state == State.RELEASED:
        return f"{_warehouse_answer(request)}; payment released"
    return f"{_warehouse_answer(request)}; waiting for the payment to be released"


# What each transition of a request means, after "Cancellation of 1 unit of Desk lamp: ".
CANCELLATION_EVENTS = {
    CancellationRequest.State.SUBMITTED: "Digital River passed it to the warehouse",
    CancellationRequest.State.RELEASED: "payment released",
    CancellationRequest.State.FAILED: "Digital River refused the request",
}


def _cancellation_entries(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    """Customer service's cancellation requests, and what the warehouse and DR made of them."""
    newest = _newest(
        CancellationRequest.objects.filter(order=order)
        .select_related("requested_by")
        .prefetch_related(CANCELLATION_LINES, REQUESTED_BY_GROUPS),
        "created_at",
        limit,
    )
    requests = {request.pk: request for request in newest}
    for request in requests.values():
        who = requester(request)
        asked = (
            f"{who} asked to cancel {cancelled_goods(request)}"
            if who
            else f"Cancellation of {cancelled_goods(request)} requested"
        )
        yield TimelineEntry(
            at=request.created_at,
            source="cancellation",
            sentence=f"{asked}: {cancellation_outcome(request)}",
            detail=_joined(request.reason and f"reason: {request.reason}", request.get_route_display()),
            tone=_cancellation_tone(request.state),
            links=(_admin_link("cancellation", CancellationRequest, request.pk),),
        )
    logs = list(
        _newest(
            StateLog.objects.filter(
                content_type=ContentType.objects.get_for_model(CancellationRequest),
                object_id__in=CancellationRequest.objects.filter(order=order).values("pk"),
            ),
            "timestamp",
            limit,
        )
    )
    missing = {log.object_id for log in logs} - requests.keys()
    if missing:
        requests.update(CancellationRequest.objects.prefetch_related(CANCELLATION_LINES).in_bulk(missing))
    for log in logs:
        request = requests[log.object_id]
        happened = CANCELLATION_EVENTS.get(log.state) or _warehouse_answer(request)
        yield TimelineEntry(
            at=log.timestamp,
            source="cancellation",
            sentence=f"Cancellation of {cancelled_goods(request)}: {happened}",
            detail=log.description or "",
            tone=_cancellation_tone(log.state),
            links=(_admin_link("cancellation", CancellationRequest, request.pk),),
        )


def _cancellation_tone(state: str) -> str:
    State = CancellationRequest.State
    tones: dict[str, str] = {
        State.REJECTED: ERROR,
        State.FAILED: ERROR,
        State.PARTIALLY_ACCEPTED: WARNING,
        State.RELEASED: OK,
    }
    return tones.get(state, "")


def _email_entries(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    """Each email about the order: sent, failing (with the mail server's error), or waiting to be sent."""
    for email in _newest(Notification.objects.filter(order=order).defer("body"), "created_at", limit):
        if email.sent_at:
            sentence, tone = f"Emailed {email.to}: {email.subject}", ""
        elif email.error:
            sentence, tone = f"Email to {email.to} not sent: {email.subject}", ERROR
        else:
            sentence, tone = f"Email to {email.to} waiting to be sent: {email.subject}", WARNING
        yield TimelineEntry(
            at=email.sent_at or email.created_at,
            source="email",
            sentence=sentence,
            detail=_joined(
                f"{email.attempts} tries" if email.attempts > 1 else "",
                email.error.splitlines()[0][:200] if email.error and not email.sent_at else "",
            ),
            tone=tone,
            links=(_admin_link("email", Notification, email.pk),),
        )


def _shipment_entries(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    """Each shipment with its goods and tracking: the warehouse's, DR's, or one customer service recorded."""
    shipments = (
        Shipment.objects.filter(order=order)
        .select_related("recorded_by")
        .prefetch_related(Prefetch("items", queryset=ShipmentItem.objects.select_related("order_line").order_by("id")))
    )
    for shipment in _newest(shipments, "shipped_at", limit):
        goods = _listed(
            [
                units_of(item.quantity, item.order_line.name or item.order_line.dr_sku_id)
                for item in shipment.items.all()
            ]
        )
        tracking = " ".join(part for part in (shipment.tracking_company, shipment.tracking_number) if part)
        yield TimelineEntry(
            at=shipment.shipped_at,
            source="shipment",
            sentence=f"Shipped {goods or 'nothing we know of'}" + (f", tracked as {tracking}" if tracking else ""),
            detail=_joined(
                shipment.get_source_display(),
                f"by {shipment.recorded_by.get_username()}" if shipment.recorded_by else "",
            ),
            links=(_admin_link("shipment", Shipment, shipment.pk),),
        )


def _document_entries(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    """Each invoice and credit memo DR made, when DR made it (or when we learnt of it)."""
    for document in _newest(Document.objects.filter(order=order), "recorded_at", limit):
        yield TimelineEntry(
            at=document.dr_created_at or document.recorded_at,
            source="document",
            sentence=f"{document.get_purpose_display()} ready to download or send to the customer",
            tone=OK,
            links=(("download", reverse("admin:commerce_order_document", args=[order.pk, document.dr_file_id])),),
        )


def _chargeback_entries(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    """ "Chargeback: 25.00 USD taken back by the customer's bank"."""
    for chargeback in _newest(Chargeback.objects.filter(order=order), "id", limit):
        yield TimelineEntry(
            at=chargeback.dr_created_at or order.updated_at,
            source="chargeback",
            sentence=chargeback_sentence(chargeback),
            detail=f"DR {chargeback.dr_id}",
            tone=ERROR,
            links=(_admin_link("chargeback", Chargeback, chargeback.pk),),
        )

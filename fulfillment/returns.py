"""Returns: customer service asks for goods to come back, DR's warehouse or our partner takes them.

Two APIs, by who coordinates the goods (DR's pages under
order-management/returns-and-refunds-1/returns/ in DigitalRiver/GitBook):

* DR-coordinated lines (distributed, orchestrated): ``POST /fulfillment-returns``, one per fulfillment
  order, only for units that fulfillment order shipped (digital-river-coordinated-returns.md,
  "Ensuring the correct item state"). The warehouse approves (``pending``, with the return address),
  receives (``accepted``) or rejects; the refund is ours to issue afterwards.
* third-party and digital lines: one ``POST /returns`` (creating-a-return.md); we record receipt with
  ``POST /returns/{id}``, all units at once or per parcel; DR refunds by itself only once every unit
  is received ("What conditions trigger a refund").

Like a cancellation, a return is a plan shown to the agent (``return_plan``, writing nothing), then
its execution under the order's lock (``return_execute``). What DR reports is mirrored by
``return_mirror`` (fulfillment/return_mirror.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import transaction

from catalog.models import Sku
from commerce.models import Order, OrderLine, order_subject, quantities_by_item, units_of
from commerce.services import lock_order
from core.plans import plan_fingerprint
from digitalriver.models import Instruction
from digitalriver.services.outbox import instruction_enqueue

from .cancellation_steps import PlannedStep
from .kinds import CREATE_FULFILLMENT_RETURN, CREATE_RETURN, RECEIVE_RETURN
from .ledger import ledger_recount
from .models import FulfillmentOrder, FulfillmentOrderLine, Return, ReturnLine
from .return_mirror import return_mirror, return_refund_offer

if TYPE_CHECKING:
    from django.contrib.auth.models import User

__all__ = [
    "InvalidReturn",
    "ReceiptPlan",
    "ReturnPlan",
    "ReturnRefused",
    "Returnable",
    "return_execute",
    "return_mirror",
    "return_plan",
    "return_received_execute",
    "return_received_plan",
    "return_refund_offer",
    "returnable_units",
]

DR_COORDINATED = (Sku.FulfillmentModel.DISTRIBUTED, Sku.FulfillmentModel.ORCHESTRATED)
RETURNABLE_ORDER_STATES = (Order.State.ACCEPTED, Order.State.FULFILLED, Order.State.COMPLETE)
# ReturnsRequest.reason in DR's spec (maxLength 64); the same limit for both APIs keeps one rule.
REASON_LIMIT = 64
WAITING = (Instruction.State.PENDING, Instruction.State.RETRY_WAIT, Instruction.State.SENDING)


class ReturnRefused(Exception):
    """The rules forbid it; the message tells the agent why, with the counts."""


class InvalidReturn(ValueError):
    """The request itself is malformed (unknown item, quantity below one, reason too long)."""


def is_dr_coordinated(line: OrderLine) -> bool:
    return line.fulfillment_model in DR_COORDINATED


# --- what can come back ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Returnable:
    line: OrderLine
    quantity: int
    why_not: str = ""


def returnable_units(*, order: Order) -> dict[int, Returnable]:
    """For each line of the order (by pk), how many units can be returned now, and if none, why.

    Units shipped and captured (fulfilled), less those returned and those in returns still open; for
    DR-coordinated lines also no more than their fulfillment orders shipped and have not taken back.
    """
    rooms = _fulfillment_line_rooms(order)
    result = {}
    for line in order.lines.all():
        out = min(line.shipped, line.fulfilled)
        units = out - line.returned - line.return_requested
        if is_dr_coordinated(line):
            units = min(units, sum(room for fo_line, room in rooms.values() if fo_line.order_line_id == line.pk))
        why_not = ""
        if order.state not in RETURNABLE_ORDER_STATES:
            units, why_not = 0, f"the order is {order.get_state_display().lower()}"
        elif units <= 0:
            why_not = _why_nothing_is_returnable(line, out)
        result[line.pk] = Returnable(line=line, quantity=max(units, 0), why_not=why_not)
    return result


def _why_nothing_is_returnable(line: OrderLine, out: int) -> str:
    if not line.shipped:
        return "nothing has shipped yet"
    if not out:
        return f"{_units(line.shipped)} shipped but the payment is not captured yet"
    if line.return_requested:
        return f"{_units(line.return_requested)} already in a return that is still open"
    return f"every unit shipped is already returned ({line.returned} returned)"


def _units(quantity: int) -> str:
    return f"{quantity} unit{'' if quantity == 1 else 's'}"


def _fulfillment_line_rooms(order: Order) -> dict[int, tuple[FulfillmentOrderLine, int]]:
    """Fulfillment-order line pk -> (line, units it shipped that no return has taken or asked for)."""
    taken: dict[int, int] = defaultdict(int)
    accepted: dict[int, int] = defaultdict(int)
    lines = (
        ReturnLine.objects.filter(return_request__order=order, fulfillment_order_line__isnull=False)
        .exclude(return_request__state__in=[Return.State.FAILED, Return.State.REJECTED])
        .select_related("return_request")
    )
    for line in lines:
        assert line.fulfillment_order_line_id is not None  # filtered above
        accepted[line.fulfillment_order_line_id] += line.quantity_accepted
        if line.return_request.state in Return.OPEN_STATES:
            taken[line.fulfillment_order_line_id] += line.quantity - line.quantity_accepted
    rooms = {}
    for fo_line in FulfillmentOrderLine.objects.filter(order_line__order=order).select_related("fulfillment_order"):
        back = max(fo_line.returned, accepted[fo_line.pk])  # DR's counter and ours tell the same units
        rooms[fo_line.pk] = (fo_line, max(fo_line.shipped - back - taken[fo_line.pk], 0))
    return rooms


# --- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnPlan:
    """What starting a return would do now, or why it cannot: computed without writing anything.

    ``warehouse_returns``: per fulfillment order, (order line, fulfillment-order line, units), one
    ``POST /fulfillment-returns`` each; ``partner_return``: (order line, units) in one ``POST /returns``.
    """

    order: Order
    reason: str
    steps: list[PlannedStep] = field(default_factory=list)
    warehouse_returns: dict[FulfillmentOrder, list[tuple[OrderLine, FulfillmentOrderLine, int]]] = field(
        default_factory=dict
    )
    partner_return: list[tuple[OrderLine, int]] = field(default_factory=list)
    refusal: str = ""

    @property
    def calls(self) -> list[tuple[str, list[tuple[str, int]]]]:
        calls = []
        if self.partner_return:
            calls.append(("POST /returns", sorted((line.dr_item_id, units) for line, units in self.partner_return)))
        for fulfillment_order, lines in self.warehouse_returns.items():
            asked = sorted((fo_line.dr_item_id, units) for _, fo_line, units in lines)
            calls.append((f"POST /fulfillment-returns {fulfillment_order.dr_fulfillment_order_id}", asked))
        return sorted(calls)

    @property
    def fingerprint(self) -> str:
        return plan_fingerprint([self.calls, self.reason])


def return_plan(*, order: Order, items: list[tuple[str, int]], reason: str = "") -> ReturnPlan:
    """What returning the given (DR order item id, quantity) pairs would ask of DR now, or the refusal
    with counts and line names. Writes nothing; raises InvalidReturn when the request is malformed."""
    reason = (reason or "").strip()
    if not items:
        raise InvalidReturn("say which items come back")
    if len(reason) > REASON_LIMIT:
        raise InvalidReturn(f"the reason may be at most {REASON_LIMIT} characters (DR's limit)")
    totals = quantities_by_item(items, error=InvalidReturn)
    by_item = {line.dr_item_id: line for line in order.lines.all()}
    unknown = [item_id for item_id in totals if item_id not in by_item]
    if unknown:
        raise InvalidReturn(f"item {unknown[0]} is not a line of this order")
    if order.dispute_lock:
        return ReturnPlan(order=order, reason=reason, refusal=order.dispute_lock)
    returnable = {entry.line.dr_item_id: entry for entry in returnable_units(order=order).values()}
    refusals = []
    for item_id, quantity in totals.items():
        entry = returnable[item_id]
        if quantity > entry.quantity:
            detail = f"{entry.quantity} of {entry.line.quantity} can be returned now"
            if entry.why_not:
                detail += f": {entry.why_not}"
            refusals.append(f"{entry.line.label}: asked for {quantity}, {detail}")
    if refusals:
        return ReturnPlan(
            order=order, reason=reason, refusal="Cannot return that many units. " + "; ".join(refusals) + "."
        )
    rooms = _fulfillment_line_rooms(order)
    warehouse: dict[FulfillmentOrder, list[tuple[OrderLine, FulfillmentOrderLine, int]]] = defaultdict(list)
    partner = []
    steps = []
    for item_id, quantity in totals.items():
        line = by_item[item_id]
        if is_dr_coordinated(line):
            for fo_line, units in _spread(line, quantity, rooms):
                warehouse[fo_line.fulfillment_order].append((line, fo_line, units))
        else:
            partner.append((line, quantity))
        steps.append(_step(line, quantity))
    return ReturnPlan(
        order=order, reason=reason, steps=steps, warehouse_returns=dict(warehouse), partner_return=partner
    )


def _spread(
    line: OrderLine, quantity: int, rooms: dict[int, tuple[FulfillmentOrderLine, int]]
) -> list[tuple[FulfillmentOrderLine, int]]:
    """The fulfillment-order lines the units are asked of: the oldest first, each for no more than it
    shipped and has not given back or been asked for already."""
    spread = []
    for pk in sorted(pk for pk, (fo_line, _) in rooms.items() if fo_line.order_line_id == line.pk):
        fo_line, room = rooms[pk]
        units = min(quantity, room)
        if units > 0:
            spread.append((fo_line, units))
            quantity -= units
    return spread


def _step(line: OrderLine, quantity: int) -> PlannedStep:
    goods = units_of(quantity, line.label)
    if is_dr_coordinated(line):
        return PlannedStep(
            line,
            quantity,
            f"Ask DR's warehouse to take back {goods}; the customer gets the return address by email once "
            "the warehouse approves; once it has the goods back, their refund is offered on this page",
            "POST /fulfillment-returns: the warehouse approves (with the address) or rejects, then reports "
            "the goods received; we refund the received units afterwards.",
        )
    return PlannedStep(
        line,
        quantity,
        f"Tell DR that our partner takes back {goods}; the customer sends them the way our partner says, "
        "and DR refunds them once you record every unit received",
        "POST /returns: DR refunds the return by itself when all its units are recorded as received.",
    )


# --- executing it ---------------------------------------------------------------------------------


def return_execute(*, plan: ReturnPlan, by: User | None = None) -> list[Return]:
    """Queue the plan's calls with the returns that follow them, or raise ReturnRefused.

    The plan is made again under the order's lock: if the order changed since it was shown (another
    agent started a return, the warehouse took goods back), nothing is queued.
    """
    if plan.refusal:
        raise ReturnRefused(plan.refusal)
    with transaction.atomic():
        order = lock_order(order=plan.order)
        asked = [(step.line.dr_item_id, step.quantity) for step in plan.steps]
        now = return_plan(order=order, items=asked, reason=plan.reason)
        if now.refusal:
            raise ReturnRefused(now.refusal)
        if now.calls != plan.calls:
            raise ReturnRefused(f"Order {order.dr_order_id} changed since this return was shown; look at it again.")
        returns = []
        for fulfillment_order, lines in now.warehouse_returns.items():
            returns.append(_ask_the_warehouse(order, fulfillment_order, lines, reason=now.reason, by=by))
        if now.partner_return:
            returns.append(_tell_dr(order, now.partner_return, reason=now.reason, by=by))
        ledger_recount(order=order)
    return returns


def _ask_the_warehouse(
    order: Order,
    fulfillment_order: FulfillmentOrder,
    lines: list[tuple[OrderLine, FulfillmentOrderLine, int]],
    *,
    reason: str,
    by: User | None,
) -> Return:
    # GlobalFulfillmentReturnRequest takes no metadata: the return is found again by its units.
    payload: dict[str, object] = {
        "fulfillmentOrderId": fulfillment_order.dr_fulfillment_order_id,
        "upstreamId": order.dr_order_id,
        "items": [{"fulfillmentOrderItemId": fo_line.dr_item_id, "quantity": units} for _, fo_line, units in lines],
    }
    if reason:
        payload["reason"] = reason
    instruction = instruction_enqueue(
        kind=CREATE_FULFILLMENT_RETURN, subject=order_subject(order.dr_order_id), payload=payload
    )
    ret = Return.objects.create(
        order=order,
        fulfillment_order=fulfillment_order,
        api=Return.Api.FULFILLMENT_RETURNS,
        reason=reason,
        requested_by=by,
        instruction=instruction,
    )
    ReturnLine.objects.bulk_create(
        ReturnLine(return_request=ret, order_line=line, fulfillment_order_line=fo_line, quantity=units)
        for line, fo_line, units in lines
    )
    return ret


def _tell_dr(order: Order, lines: list[tuple[OrderLine, int]], *, reason: str, by: User | None) -> Return:
    ret = Return.objects.create(order=order, api=Return.Api.RETURNS, reason=reason, requested_by=by)
    ReturnLine.objects.bulk_create(
        ReturnLine(return_request=ret, order_line=line, quantity=units) for line, units in lines
    )
    payload: dict[str, object] = {
        "orderId": order.dr_order_id,
        "items": [{"itemId": line.dr_item_id, "quantity": units} for line, units in lines],
        # DR has no idempotency key: our id in metadata finds the return after a lost answer.
        "metadata": {"returnId": str(ret.pk)},
    }
    if reason:
        payload["reason"] = reason
    ret.instruction = instruction_enqueue(kind=CREATE_RETURN, subject=order_subject(order.dr_order_id), payload=payload)
    ret.save(update_fields=["instruction", "updated_at"])
    return ret


# --- recording a third-party return received ---------------------------------------------------------


@dataclass(frozen=True)
class ReceiptPlan:
    """What recording goods received back would send (``POST /returns/{id}``), or why not."""

    ret: Return
    received: list[tuple[ReturnLine, int]] = field(default_factory=list)
    completes: bool = False
    everything: bool = False
    steps: list[PlannedStep] = field(default_factory=list)
    refusal: str = ""

    @property
    def body(self) -> dict[str, object]:
        if self.everything:
            return {"state": "accepted"}
        return {
            "items": [
                {"itemId": line.order_line.dr_item_id, "quantity": units, "state": "accepted"}
                for line, units in self.received
            ]
        }

    @property
    def fingerprint(self) -> str:
        return plan_fingerprint([self.ret.pk, sorted((line.pk, units) for line, units in self.received)])


def still_to_receive(ret: Return) -> dict[int, int]:
    """Return line pk -> units neither received nor in a receipt already on its way to DR."""
    sending: dict[str, int] = defaultdict(int)
    for instruction in Instruction.objects.filter(
        kind=RECEIVE_RETURN, subject=order_subject(ret.order.dr_order_id), state__in=WAITING
    ):
        if instruction.payload.get("returnRef") == ret.pk:
            for item_id, units in receipt_units(instruction.payload).items():
                sending[item_id] += units
    result = {}
    for line in ret.lines.select_related("order_line").order_by("pk"):
        left = line.quantity - line.quantity_accepted
        taken = min(left, sending.pop(line.order_line.dr_item_id, 0))
        result[line.pk] = left - taken
    return result


def receipt_units(payload: dict) -> dict[str, int]:
    """DR order item id -> units a receipt instruction records as received."""
    return {str(item_id): int(units) for item_id, units in (payload.get("units") or {}).items()}


def return_received_plan(*, ret: Return, items: list[tuple[str, int]] | None = None) -> ReceiptPlan:
    """Recording goods of a third-party return as received: all units left (``items`` None) or the
    (DR order item id, quantity) pairs of one parcel. Writes nothing."""
    ret = Return.objects.select_related("order").get(pk=ret.pk)
    refusal = _why_not_receivable(ret)
    if refusal:
        return ReceiptPlan(ret=ret, refusal=refusal)
    lines = list(ret.lines.select_related("order_line").order_by("pk"))
    left = still_to_receive(ret)
    if items is None:
        received = [(line, left[line.pk]) for line in lines if left[line.pk] > 0]
        if not received:
            return ReceiptPlan(ret=ret, refusal="Every unit of this return is already recorded as received.")
    else:
        if not items:
            raise InvalidReturn("say which items were received")
        totals = quantities_by_item(items, error=InvalidReturn)
        by_item = {line.order_line.dr_item_id: line for line in lines}
        unknown = [item_id for item_id in totals if item_id not in by_item]
        if unknown:
            raise InvalidReturn(f"item {unknown[0]} is not in this return")
        too_many = [
            f"{by_item[item_id].order_line.label}: {quantity} received, {left[by_item[item_id].pk]} still expected"
            for item_id, quantity in totals.items()
            if quantity > left[by_item[item_id].pk]
        ]
        if too_many:
            return ReceiptPlan(
                ret=ret, refusal="More units than the return still expects. " + "; ".join(too_many) + "."
            )
        received = [(by_item[item_id], quantity) for item_id, quantity in totals.items()]
    expected = sum(left.values())
    got = sum(units for _, units in received)
    completes = got >= expected
    everything = completes and all(line.quantity_accepted == 0 for line in lines) and items is None
    steps = [_receipt_step(line, units, completes=completes, left_after=expected - got) for line, units in received]
    return ReceiptPlan(ret=ret, received=received, completes=completes, everything=everything, steps=steps)


def _why_not_receivable(ret: Return) -> str:
    if ret.api == Return.Api.FULFILLMENT_RETURNS:
        return (
            "This return goes back to DR's warehouse: the warehouse reports when the goods arrive, "
            "so there is nothing to record here."
        )
    if ret.order.dispute_lock:
        return ret.order.dispute_lock
    if ret.state == Return.State.REQUESTED or not ret.dr_return_id:
        return "DR has not confirmed this return yet; try again in a minute."
    if ret.state != Return.State.CREATED:
        return f"This return is {ret.get_state_display().lower()}: nothing more can be received."
    return ""


def _receipt_step(line: ReturnLine, units: int, *, completes: bool, left_after: int) -> PlannedStep:
    goods = units_of(units, line.order_line.label)
    if completes:
        then = "this completes the return, so DR refunds it by itself (do not refund these units again)"
    else:
        then = (
            f"{_units(left_after)} still to come back; a partial receipt "
            "never refunds by itself: DR refunds the return only when every unit is received"
        )
    return PlannedStep(
        line.order_line,
        units,
        f"Record {goods} as received back by our partner; {then}",
        "POST /returns/{id} with the units accepted.",
    )


def return_received_execute(*, plan: ReceiptPlan, by: User | None = None) -> Instruction:
    """Queue the receipt (``POST /returns/{id}``), or raise ReturnRefused; re-planned under the lock."""
    if plan.refusal:
        raise ReturnRefused(plan.refusal)
    with transaction.atomic():
        lock_order(order=plan.ret.order)
        ret = Return.objects.select_for_update().get(pk=plan.ret.pk)
        items = [(line.order_line.dr_item_id, units) for line, units in plan.received]
        now = return_received_plan(ret=ret, items=None if plan.everything else items)
        if now.refusal:
            raise ReturnRefused(now.refusal)
        if now.fingerprint != plan.fingerprint:
            raise ReturnRefused("This return changed since it was shown; look at it again.")
        return instruction_enqueue(
            kind=RECEIVE_RETURN,
            subject=order_subject(ret.order.dr_order_id),
            payload={
                "returnId": ret.dr_return_id,
                "returnRef": ret.pk,
                "body": now.body,
                "units": {line.order_line.dr_item_id: units for line, units in now.received},
                # What DR had accepted before: after a lost answer, more than this means it was recorded.
                "acceptedBefore": {
                    line.order_line.dr_item_id: line.quantity_accepted
                    for line in ret.lines.select_related("order_line")
                },
            },
        )

"""Customer service cancels a whole order or some units of some lines; DR is asked the right way.

Which call depends on the order's state and each line's fulfillment model:

* not accepted yet (pending_payment, in_review, blocked): POST /fulfillments with cancelQuantity;
* accepted, DR-coordinated lines (distributed, orchestrated): POST /fulfillment-cancellations for
  units still pending or backordered at the fulfillment order; the warehouse accepts (maybe partly)
  or rejects, and the payment is released afterwards (by us for distributed lines, on
  fulfillment_order.cancelled; by DR for orchestrated lines);
* third-party and digital lines: POST /fulfillments with cancelQuantity.

Shipped units are never cancellable: they need a return. A line's ``cancel_requested`` counts units
asked for and not yet released or refused, so two agents cannot cancel the same unit twice.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F

from catalog.models import Sku
from commerce.attention import attention_raise
from commerce.models import Order, OrderLine, order_subject, quantities_by_item
from commerce.services import lock_order, order_locked
from core.plans import plan_fingerprint
from core.types import JSONObject
from digitalriver.models import Instruction
from digitalriver.services.outbox import instruction_enqueue

from .cancellation_steps import NOT_ACCEPTED, PlannedStep, cancellation_step
from .kinds import POST_FULFILLMENT, REQUEST_CANCELLATION
from .models import CancellationLine, CancellationRequest, FulfillmentOrder, FulfillmentOrderLine

if TYPE_CHECKING:
    from django.contrib.auth.models import User

CLOSED = (Order.State.CANCELLED, Order.State.COMPLETE, Order.State.RETURNED)
DR_COORDINATED = (Sku.FulfillmentModel.DISTRIBUTED, Sku.FulfillmentModel.ORCHESTRATED)
Route = CancellationRequest.Route


class CancellationRefused(Exception):
    """The rules forbid it; the message tells the agent why, with the counts."""


class InvalidCancellation(ValueError):
    """The request itself is malformed (unknown item, quantity below one)."""


@dataclass(frozen=True)
class Cancellable:
    line: OrderLine
    quantity: int
    why_not: str = ""


def cancellable_units(*, order: Order) -> dict[int, Cancellable]:
    """For each line of the order (by pk), how many units can be cancelled now, and if none, why."""
    lines = list(order.lines.all())
    in_flight = _units_in_flight(order)
    fulfillment_lines = defaultdict(list)
    for fo_line in FulfillmentOrderLine.objects.filter(order_line__order=order):
        fulfillment_lines[fo_line.order_line_id].append(fo_line)
    result = {}
    for line in lines:
        shipped = max(line.shipped, line.fulfilled)
        open_units = line.quantity - line.cancelled - line.cancel_requested - shipped
        why_not = ""
        if order.state in CLOSED:
            open_units, why_not = 0, f"the order is {order.get_state_display().lower()}"
        elif order.state not in NOT_ACCEPTED and line.fulfillment_model in DR_COORDINATED:
            at_warehouse = sum(fo.pending + fo.backordered for fo in fulfillment_lines[line.pk])
            if not fulfillment_lines[line.pk]:
                open_units, why_not = 0, "its fulfillment order is not created yet; try again in a minute"
            else:
                open_units = min(open_units, at_warehouse - in_flight.get(line.pk, 0))
        if open_units <= 0 and not why_not:
            why_not = _why_nothing_is_open(line, shipped)
        result[line.pk] = Cancellable(line=line, quantity=max(open_units, 0), why_not=why_not)
    return result


def _units_in_flight(order: Order, *, by: str = "order_line_id") -> dict[int, int]:
    """Units in requests the warehouse has not answered yet: still pending there, but already asked
    for; summed per order line, or per fulfillment-order line with ``by="fulfillment_order_line_id"``."""
    waiting = CancellationLine.objects.filter(
        request__order=order,
        request__route=Route.FULFILLMENT_CANCELLATION,
        request__state__in=[CancellationRequest.State.REQUESTED, CancellationRequest.State.SUBMITTED],
    )
    totals: dict[int, int] = defaultdict(int)
    for line in waiting:
        totals[getattr(line, by)] += line.quantity
    return totals


def _why_nothing_is_open(line: OrderLine, shipped: int) -> str:
    if shipped and shipped + line.cancelled >= line.quantity:
        every = "the unit" if line.quantity == 1 else f"all {line.quantity} units"
        return f"{every} shipped or were cancelled; shipped units need a return"
    if line.cancel_requested:
        being = "1 unit is" if line.cancel_requested == 1 else f"{line.cancel_requested} units are"
        return f"{being} already being cancelled"
    return "every unit is already cancelled or shipped"


def cancellation_route(order: Order, line: OrderLine) -> str:
    """Which way cancelling units of this line goes now: through the warehouse, or a direct release."""
    if order.state not in NOT_ACCEPTED and line.fulfillment_model in DR_COORDINATED:
        return Route.FULFILLMENT_CANCELLATION
    return Route.FULFILLMENT


@dataclass(frozen=True)
class CancellationPlan:
    """What cancelling would do now, or why it cannot: computed without writing anything.

    ``releases`` are the units released directly (one POST /fulfillments with cancelQuantity);
    ``warehouse_requests`` the units asked of each fulfillment order (one POST
    /fulfillment-cancellations each), as (order line, fulfillment-order line, units).
    """

    order: Order
    reason: str
    steps: list[PlannedStep] = field(default_factory=list)
    releases: list[tuple[OrderLine, int]] = field(default_factory=list)
    warehouse_requests: dict[FulfillmentOrder, list[tuple[OrderLine, FulfillmentOrderLine, int]]] = field(
        default_factory=dict
    )
    refusal: str = ""

    @property
    def money(self) -> Decimal:
        """What the whole cancellation releases once done, tax included."""
        return sum((step.money for step in self.steps), Decimal(0))

    @property
    def calls(self) -> list[tuple[str, list[tuple[str, int]]]]:
        """The DR calls as (where, [(item, units)]): two plans that agree on this do the same thing."""
        calls = []
        if self.releases:
            calls.append(("POST /fulfillments", sorted((line.dr_item_id, units) for line, units in self.releases)))
        for fulfillment_order, lines in self.warehouse_requests.items():
            asked = sorted((fo_line.dr_item_id, units) for _, fo_line, units in lines)
            calls.append((f"POST /fulfillment-cancellations {fulfillment_order.dr_fulfillment_order_id}", asked))
        return sorted(calls)

    @property
    def fingerprint(self) -> str:
        """Names the calls, so a confirmation page can tell whether what it showed still holds."""
        return plan_fingerprint([self.calls, self.reason])


def cancellation_plan(
    *, order: Order, items: list[tuple[str, int]] | None = None, cancel_all: bool = False, reason: str = ""
) -> CancellationPlan:
    """What cancelling the whole order, or the given (DR item id, quantity) pairs, would ask of DR now,
    or the refusal with counts and line names. Writes nothing; raises InvalidCancellation when the
    request itself is malformed."""
    if not cancel_all and not items:
        raise InvalidCancellation("say which items to cancel, or cancel the whole order")
    if order.dispute_lock:
        return CancellationPlan(order=order, reason=reason, refusal=order.dispute_lock)
    cancellable = cancellable_units(order=order)
    by_item = {entry.line.dr_item_id: entry for entry in cancellable.values()}
    try:
        wanted = _whole_order(order, cancellable) if cancel_all else _some_units(items or [], by_item)
    except CancellationRefused as exc:
        return CancellationPlan(order=order, reason=reason, refusal=str(exc))
    releases, warehouse_requests = [], defaultdict(list)
    in_flight = _units_in_flight(order, by="fulfillment_order_line_id")
    for line, quantity in wanted:
        if cancellation_route(order, line) == Route.FULFILLMENT_CANCELLATION:
            for fo_line, units in _spread_over_fulfillment_lines(line, quantity, in_flight):
                warehouse_requests[fo_line.fulfillment_order].append((line, fo_line, units))
        else:
            releases.append((line, quantity))
    return CancellationPlan(
        order=order,
        reason=reason,
        steps=[cancellation_step(order, line, quantity, cancellation_route(order, line)) for line, quantity in wanted],
        releases=releases,
        warehouse_requests=dict(warehouse_requests),
    )


def cancellation_execute(*, plan: CancellationPlan, by: User | None = None) -> list[CancellationRequest]:
    """Queue the plan's calls with the requests that follow them, or raise CancellationRefused.

    The plan is made again under the order's lock: if the order changed since it was shown (another
    agent cancelled, a unit shipped), nothing is queued and the agent is told to look again.
    """
    if plan.refusal:
        raise CancellationRefused(plan.refusal)
    with transaction.atomic():
        order = lock_order(order=plan.order)
        asked = [(step.line.dr_item_id, step.quantity) for step in plan.steps]
        now = cancellation_plan(order=order, items=asked, reason=plan.reason)
        if now.refusal:
            raise CancellationRefused(now.refusal)
        if now.calls != plan.calls:
            raise CancellationRefused(
                f"Order {order.dr_order_id} changed since this cancellation was shown; look at it again."
            )
        for line, quantity in [(step.line, step.quantity) for step in now.steps]:
            OrderLine.objects.filter(pk=line.pk).update(cancel_requested=F("cancel_requested") + quantity)
        requests = []
        if now.releases:
            requests.append(_release_directly(order, now.releases, reason=plan.reason, by=by))
        for fulfillment_order, lines in now.warehouse_requests.items():
            requests.append(_ask_the_warehouse(order, fulfillment_order, lines, reason=plan.reason, by=by))
    return requests


def order_cancel(
    *,
    order: Order,
    items: list[tuple[str, int]] | None = None,
    cancel_all: bool = False,
    reason: str = "",
    by: User | None = None,
) -> list[CancellationRequest]:
    """Cancel the whole order or the given (DR item id, quantity) pairs now, or raise with the reason."""
    plan = cancellation_plan(order=order, items=items, cancel_all=cancel_all, reason=reason)
    return cancellation_execute(plan=plan, by=by)


def whole_order_refusal(*, order: Order, cancellable: dict[int, Cancellable]) -> str:
    """Why the whole order cannot be cancelled now (a unit shipped, …), or "" when it can."""
    try:
        _whole_order(order, cancellable)
    except CancellationRefused as exc:
        return str(exc)
    return ""


def _whole_order(order: Order, cancellable: dict[int, Cancellable]) -> list[tuple[OrderLine, int]]:
    shipped = [entry.line for entry in cancellable.values() if max(entry.line.shipped, entry.line.fulfilled)]
    if shipped:
        names = ", ".join(
            f"{line.name or line.dr_sku_id} ({max(line.shipped, line.fulfilled)} shipped)" for line in shipped
        )
        raise CancellationRefused(
            f"The whole order cannot be cancelled: units already shipped on {names}. "
            "Cancel the open units line by line; shipped units need a return."
        )
    blocked = [entry for entry in cancellable.values() if entry.quantity == 0 and entry.line.open_quantity > 0]
    if blocked:
        reasons = "; ".join(f"{entry.line.name or entry.line.dr_sku_id}: {entry.why_not}" for entry in blocked)
        raise CancellationRefused(f"The whole order cannot be cancelled now: {reasons}.")
    wanted = [(entry.line, entry.quantity) for entry in cancellable.values() if entry.quantity > 0]
    if not wanted:
        raise CancellationRefused(f"Nothing is left to cancel on order {order.dr_order_id}.")
    return wanted


def _some_units(items: list[tuple[str, int]], by_item: dict[str, Cancellable]) -> list[tuple[OrderLine, int]]:
    wanted, refusals = [], []
    totals = quantities_by_item(items, error=InvalidCancellation)
    unknown = [item_id for item_id in totals if item_id not in by_item]
    if unknown:
        raise InvalidCancellation(f"item {unknown[0]} is not a line of this order")
    for item_id, quantity in totals.items():
        entry = by_item[item_id]
        label = entry.line.name or entry.line.dr_sku_id
        if quantity > entry.quantity:
            shipped = max(entry.line.shipped, entry.line.fulfilled)
            detail = f"{entry.quantity} of {entry.line.quantity} can be cancelled"
            if shipped:
                detail += f"; {shipped} shipped (a return is needed for those)"
            if entry.why_not and not entry.quantity:
                detail += f": {entry.why_not}"
            refusals.append(f"{label}: asked for {quantity}, {detail}")
        else:
            wanted.append((entry.line, quantity))
    if refusals:
        raise CancellationRefused("Cannot cancel that many units. " + "; ".join(refusals) + ".")
    return wanted


def _spread_over_fulfillment_lines(
    line: OrderLine, quantity: int, in_flight: dict[int, int]
) -> list[tuple[FulfillmentOrderLine, int]]:
    """Which fulfillment-order lines the units are asked of: the oldest first, each for no more than
    it still holds (pending or backordered) less what earlier requests already asked of it."""
    spread = []
    for fo_line in line.fulfillment_order_lines.select_related("fulfillment_order").order_by("pk"):
        units = min(quantity, fo_line.pending + fo_line.backordered - in_flight.get(fo_line.pk, 0))
        if units > 0:
            spread.append((fo_line, units))
            quantity -= units
    return spread


def _release_directly(
    order: Order, lines: list[tuple[OrderLine, int]], *, reason: str, by: User | None
) -> CancellationRequest:
    instruction = instruction_enqueue(
        kind=POST_FULFILLMENT,
        subject=order_subject(order.dr_order_id),
        payload={
            "orderId": order.dr_order_id,
            "items": [{"itemId": line.dr_item_id, "cancelQuantity": quantity} for line, quantity in lines],
        },
    )
    request = CancellationRequest.objects.create(
        order=order, route=Route.FULFILLMENT, reason=reason, requested_by=by, instruction=instruction
    )
    CancellationLine.objects.bulk_create(
        CancellationLine(request=request, order_line=line, quantity=quantity, quantity_accepted=quantity)
        for line, quantity in lines
    )
    return request


def _ask_the_warehouse(
    order: Order,
    fulfillment_order: FulfillmentOrder,
    lines: list[tuple[OrderLine, FulfillmentOrderLine, int]],
    *,
    reason: str,
    by: User | None,
) -> CancellationRequest:
    payload = {
        "fulfillmentOrderId": fulfillment_order.dr_fulfillment_order_id,
        "upstreamId": order.dr_order_id,
        "items": [
            {
                "fulfillmentOrderItemId": fo_line.dr_item_id,
                "fulfillmentOrderItemUpstreamId": line.dr_item_id,
                "quantity": units,
            }
            for line, fo_line, units in lines
        ],
    }
    if reason:
        payload["reason"] = reason
    instruction = instruction_enqueue(
        kind=REQUEST_CANCELLATION, subject=order_subject(order.dr_order_id), payload=payload
    )
    request = CancellationRequest.objects.create(
        order=order,
        fulfillment_order=fulfillment_order,
        route=Route.FULFILLMENT_CANCELLATION,
        reason=reason,
        requested_by=by,
        instruction=instruction,
    )
    CancellationLine.objects.bulk_create(
        CancellationLine(request=request, order_line=line, fulfillment_order_line=fo_line, quantity=units)
        for line, fo_line, units in lines
    )
    return request


# --- answers from DR ------------------------------------------------------------------------------


def cancellation_submitted(*, instruction: Instruction, result: JSONObject) -> None:
    """DR created the cancellation request (our POST /fulfillment-cancellations answered 201)."""
    _lock_order_of(instruction)
    request = CancellationRequest.objects.select_for_update().filter(instruction=instruction).first()
    if request is None:
        return
    if request.state == CancellationRequest.State.REQUESTED and result.get("id"):
        request.mark_submitted(dr_cancellation_id=str(result["id"]), description="DR has the request")
        request.save()
    if result.get("state") in ("accepted", "rejected"):
        _apply_answer(request, result)


def cancellation_known_at_dr(*, instruction: Instruction) -> JSONObject | None:
    """DR's request as we already know it (its events matched ours), else None."""
    request = CancellationRequest.objects.filter(instruction=instruction).exclude(dr_cancellation_id="").first()
    return {"id": request.dr_cancellation_id} if request is not None else None


def cancellation_is_ours(*, instruction: Instruction, data: JSONObject) -> bool:
    """Whether DR's cancellation request asks for exactly the units of this instruction, and no other
    request of ours has claimed it already."""
    payload = instruction.payload
    if str(data.get("fulfillmentOrderId")) != str(payload["fulfillmentOrderId"]) or not data.get("id"):
        return False
    if CancellationRequest.objects.filter(dr_cancellation_id=str(data["id"])).exclude(instruction=instruction).exists():
        return False
    return _units_asked(data) == _units_asked(payload)


def _units_asked(data: JSONObject) -> list[tuple[str, int]]:
    return sorted((str(i.get("fulfillmentOrderItemId")), int(i.get("quantity") or 0)) for i in data.get("items") or [])


def cancellation_failed(*, instruction: Instruction) -> None:
    """DR refused the request for good: the units are no longer being cancelled; a person must look."""
    _lock_order_of(instruction)
    request = CancellationRequest.objects.select_for_update().filter(instruction=instruction).first()
    if request is None or request.state not in (
        CancellationRequest.State.REQUESTED,
        CancellationRequest.State.SUBMITTED,
    ):
        return
    for line in request.lines.all():
        _stop_counting(line.order_line_id, line.quantity)
    request.mark_failed(description=instruction.last_error[:300])
    request.save()
    attention_raise(
        order=request.order,
        kind="cancellation_rejected",
        reason=f"DR refused the cancellation: {instruction.last_error[:300]}",
        source=f"instruction:{instruction.pk}",
    )


def cancellation_answered(*, data: JSONObject) -> CancellationRequest | None:
    """fulfillment_cancellation.created / .accepted / .rejected."""
    with order_locked(dr_order_id=str(data.get("upstreamId") or "")) as order:
        request = _request_for(order, data)
        if request is None:
            return None
        if data.get("state") in ("accepted", "rejected"):
            _apply_answer(request, data)
        elif request.state == CancellationRequest.State.REQUESTED:
            request.mark_submitted(dr_cancellation_id=str(data["id"]), description="DR has the request")
            request.save()
    return request


def _lock_order_of(instruction: Instruction) -> None:
    """The order's row lock before the request's and its lines' (see ``lock_order``)."""
    with suppress(Order.DoesNotExist):
        lock_order(dr_order_id=str(instruction.payload.get("upstreamId") or ""))


def _request_for(order: Order, data: JSONObject) -> CancellationRequest | None:
    """Our request with DR's id, or the one still waiting for it that asks for exactly these units."""
    requests = CancellationRequest.objects.select_for_update().filter(order=order)
    found = requests.filter(dr_cancellation_id=str(data["id"])).first()
    if found is not None:
        return found
    asked = _units_asked(data)
    waiting = requests.filter(
        route=Route.FULFILLMENT_CANCELLATION,
        dr_cancellation_id="",
        fulfillment_order__dr_fulfillment_order_id=str(data.get("fulfillmentOrderId")),
    ).prefetch_related("lines__fulfillment_order_line")
    for request in waiting.order_by("created_at"):
        ours = sorted((_warehouse_item_id(line), line.quantity) for line in request.lines.all())
        if ours == asked:
            return request
    return None


def _apply_answer(request: CancellationRequest, data: JSONObject) -> None:
    if request.state not in (CancellationRequest.State.REQUESTED, CancellationRequest.State.SUBMITTED):
        return  # already answered: a repeated or late event
    accepted_by_item = {
        str(item.get("fulfillmentOrderItemId")): int(item.get("quantityAccepted") or 0)
        for item in data.get("items") or []
    }
    requested = accepted = 0
    lines = list(request.lines.select_related("fulfillment_order_line"))
    for line in lines:
        taken = min(line.quantity, accepted_by_item.get(_warehouse_item_id(line), 0))
        line.quantity_accepted = taken
        line.save(update_fields=["quantity_accepted"])
        # Units released before this answer arrived were counted off already (see units_released).
        _stop_counting(line.order_line_id, line.quantity - max(taken, line.quantity_released))
        requested, accepted = requested + line.quantity, accepted + taken
    request.mark_answered(
        requested=requested,
        accepted=accepted,
        dr_cancellation_id=str(data.get("id") or ""),
        description=f"the warehouse accepted {accepted} of {requested} unit(s)",
    )
    request.save()
    if accepted < requested:
        attention_raise(
            order=request.order,
            kind="cancellation_rejected",
            reason=f"The warehouse cancelled {accepted} of {requested} unit(s) asked; the rest will ship.",
            source=f"cancellation:{request.dr_cancellation_id}",
        )
    if accepted and all(line.quantity_released >= (line.quantity_accepted or 0) for line in lines):
        request.mark_released(description="payment released before the warehouse's answer arrived")
        request.save()


def _warehouse_item_id(line: CancellationLine) -> str:
    """The fulfillment-order item a line of a request to the warehouse asked about."""
    assert line.fulfillment_order_line is not None  # only a direct release's lines have none
    return line.fulfillment_order_line.dr_item_id


def _stop_counting(order_line_id: int, units: int) -> None:
    """Units no longer being cancelled (refused, or released and now counted as cancelled)."""
    if units > 0:
        line = OrderLine.objects.select_for_update().get(pk=order_line_id)
        line.cancel_requested -= min(units, line.cancel_requested)
        line.save(update_fields=["cancel_requested"])


def units_released(*, order_line: OrderLine, quantity: int, instruction_id: int | None = None) -> None:
    """The payment of ``quantity`` units of the line was released: close the requests they belong to.

    A direct release names its request through the instruction; a release through the warehouse
    goes to the oldest requests of that line first, accepted ones before those whose answer has not
    arrived yet (DR delivers out of order: the release may come before the acceptance). Units the
    warehouse cancelled on its own belong to no request and change nothing here.
    """
    answered = (CancellationRequest.State.ACCEPTED, CancellationRequest.State.PARTIALLY_ACCEPTED)
    waiting = (CancellationRequest.State.REQUESTED, CancellationRequest.State.SUBMITTED)
    lines = []
    if instruction_id is not None:
        lines = list(
            CancellationLine.objects.filter(request__instruction_id=instruction_id, order_line=order_line)
            .select_related("request")
            .order_by("pk")
        )
    through_warehouse = not lines
    if through_warehouse:
        lines = sorted(
            CancellationLine.objects.filter(
                order_line=order_line,
                request__route=Route.FULFILLMENT_CANCELLATION,
                request__state__in=answered + waiting,
            ).select_related("request"),
            key=lambda line: (line.request.state in waiting, line.request.created_at, line.pk),
        )
    remaining = quantity
    touched = set()
    for line in lines:
        unanswered = through_warehouse and line.request.state in waiting
        room = (line.quantity if unanswered else (line.quantity_accepted or 0)) - line.quantity_released
        take = min(room, remaining)
        if take <= 0:
            continue
        line.quantity_released += take
        line.save(update_fields=["quantity_released"])
        _stop_counting(order_line.pk, take)
        touched.add(line.request)
        remaining -= take
        if not remaining:
            break
    for request in touched:
        if through_warehouse and request.state in waiting:
            continue  # released early; the warehouse's answer closes it (see _apply_answer)
        lines = list(request.lines.all())
        if all(line.quantity_released >= (line.quantity_accepted or 0) for line in lines):
            request.mark_released(description="payment released")
            request.save()

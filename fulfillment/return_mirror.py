"""What DR says about returns, mirrored: its events, and its answers to our calls.

``fulfillment_return.created|pending|accepted|rejected`` carry a fulfillment return (DR's page
order-management/returns-and-refunds-1/returns/digital-river-coordinated-returns.md): ``created`` →
``pending`` (the fulfiller approved; ``location`` is the return address) → ``accepted`` (received) or
``rejected``; ``type`` is ``client``, or ``warehouse`` for a refused parcel nobody asked to return.
``return.created|updated|accepted`` carry a third-party return (creating-a-return.md): ``created``,
each item's ``quantityAccepted`` growing with every receipt, ``accepted`` once every unit is back.

Events come twice, concurrently and out of order: a return never moves back along
``Return.PROGRESS``, ``accepted`` and ``rejected`` are final, and a line's accepted units only grow.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import suppress
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from commerce.models import Order, OrderLine
from commerce.models.refunds import Refund, RefundLine
from commerce.refunds import refund_request
from commerce.services import dr_time, lock_order, order_get_or_fetch
from core.types import JSONObject
from digitalriver.models import Instruction
from digitalriver.registry import UnusableEvent

from . import notifications
from .ledger import ledger_recount
from .models import FulfillmentOrder, FulfillmentOrderLine, Return, ReturnLine

State = Return.State
FINAL = (State.ACCEPTED, State.REJECTED)


def return_mirror(*, data: JSONObject, event_type: str) -> Return:
    """Mirror DR's return (from an event or a list): ours found by DR's id, by our id in its metadata,
    or (a fulfillment return, which takes no metadata) by the units of one we asked for; otherwise
    recorded as a return nobody here asked for."""
    order = _order_of(data)
    with transaction.atomic():
        order = lock_order(order=order)
        ret = _find(order, data, event_type)
        return _apply(order, ret, data)


def _is_fulfillment_return(data: JSONObject, event_type: str) -> bool:
    return event_type.startswith("fulfillment_return") or "fulfillmentOrderId" in data


def _order_of(data: JSONObject) -> Order:
    dr_order_id = str(data.get("orderId") or data.get("upstreamId") or "")
    if not dr_order_id and data.get("fulfillmentOrderId"):
        fulfillment_order = FulfillmentOrder.objects.filter(
            dr_fulfillment_order_id=str(data["fulfillmentOrderId"])
        ).first()
        if fulfillment_order is not None:
            return fulfillment_order.order
    if not dr_order_id:
        raise UnusableEvent(f"return {data.get('id')} names no order we can find")
    return order_get_or_fetch(dr_order_id=dr_order_id)


def _find(order: Order, data: JSONObject, event_type: str) -> Return:
    returns = Return.objects.select_for_update().filter(order=order)
    dr_id = str(data.get("id") or "")
    found = returns.filter(dr_return_id=dr_id).first() if dr_id else None
    if found is not None:
        return found
    ours = str((data.get("metadata") or {}).get("returnId") or "")
    if ours.isdigit():
        found = returns.filter(pk=int(ours), dr_return_id="").first()
        if found is not None:
            return found
    if _is_fulfillment_return(data, event_type):
        found = _waiting_with_units(returns, data)
        if found is not None:
            return found
    return _unasked(order, data, event_type)


def fulfillment_return_units(data: JSONObject) -> list[tuple[str, int]]:
    return sorted(
        (str(item.get("fulfillmentOrderItemId")), int(item.get("quantity") or 0)) for item in data.get("items") or []
    )


def _waiting_with_units(returns: Any, data: JSONObject) -> Return | None:
    """The oldest fulfillment return we asked for on that fulfillment order, not yet matched to one of
    DR's, asking for exactly these units."""
    asked = fulfillment_return_units(data)
    waiting = returns.filter(
        api=Return.Api.FULFILLMENT_RETURNS,
        dr_return_id="",
        fulfillment_order__dr_fulfillment_order_id=str(data.get("fulfillmentOrderId")),
    ).exclude(state=State.FAILED)
    for ret in waiting.order_by("created_at", "pk").prefetch_related("lines__fulfillment_order_line"):
        if _units_of(ret) == asked:
            return ret
    return None


def _units_of(ret: Return) -> list[tuple[str, int]]:
    return sorted(
        (line.fulfillment_order_line.dr_item_id if line.fulfillment_order_line else "", line.quantity)
        for line in ret.lines.all()
    )


def _unasked(order: Order, data: JSONObject, event_type: str) -> Return:
    """A return nobody here asked for: a refused parcel the warehouse sends back, or one made in DR's
    dashboard. Its items are mapped to our lines through DR's item ids."""
    fulfillment = _is_fulfillment_return(data, event_type)
    fulfillment_order = (
        FulfillmentOrder.objects.filter(dr_fulfillment_order_id=str(data.get("fulfillmentOrderId"))).first()
        if fulfillment
        else None
    )
    lines = []
    for item in data.get("items") or []:
        order_line, fo_line = _line_of(order, item, fulfillment)
        quantity = int(item.get("quantity") or 0)
        if order_line is not None and quantity > 0:
            lines.append((order_line, fo_line, quantity))
    if not lines:
        raise UnusableEvent(f"return {data.get('id')} names no unit of order {order.dr_order_id}")
    ret = Return.objects.create(
        order=order,
        fulfillment_order=fulfillment_order,
        api=Return.Api.FULFILLMENT_RETURNS if fulfillment else Return.Api.RETURNS,
        type=Return.Type.WAREHOUSE if data.get("type") == "warehouse" else Return.Type.CLIENT,
        dr_return_id=str(data.get("id") or ""),
        reason=str(data.get("reason") or ""),
    )
    ReturnLine.objects.bulk_create(
        ReturnLine(return_request=ret, order_line=line, fulfillment_order_line=fo_line, quantity=quantity)
        for line, fo_line, quantity in lines
    )
    return ret


def _line_of(order: Order, item: JSONObject, fulfillment: bool) -> tuple[OrderLine | None, FulfillmentOrderLine | None]:
    if fulfillment:
        fo_line = (
            FulfillmentOrderLine.objects.filter(
                order_line__order=order, dr_item_id=str(item.get("fulfillmentOrderItemId"))
            )
            .select_related("order_line")
            .first()
        )
        return (fo_line.order_line, fo_line) if fo_line is not None else (None, None)
    line = order.lines.filter(dr_item_id=str(item.get("itemId"))).first()
    if line is None and item.get("skuId"):
        line = order.lines.filter(dr_sku_id=str(item["skuId"])).first()
    return line, None


def _apply(order: Order, ret: Return, data: JSONObject) -> Return:
    ret.dr_return_id = ret.dr_return_id or str(data.get("id") or "")
    ret.reason = ret.reason or str(data.get("reason") or "")[:500]
    if data.get("type") == "warehouse":
        ret.type = Return.Type.WAREHOUSE
    if data.get("location"):
        ret.location = data["location"]
    updated = dr_time(data.get("updatedTime"))
    stale = bool(updated and ret.dr_updated_at and updated < ret.dr_updated_at)
    if not stale:
        ret.raw = data
        ret.dr_updated_at = updated or ret.dr_updated_at
    before = ret.state
    moved = _follow(ret, str(data.get("state") or ""))
    ret.save()
    _lines_follow(ret, data)
    ledger_recount(order=order)
    if moved and ret.state == State.PENDING and before != State.PENDING and ret.type == Return.Type.CLIENT:
        notifications.notify_return_approved(ret=ret)
    return ret


def _follow(ret: Return, state: str) -> bool:
    """Move the return to DR's state unless that would be a step back; True if it moved."""
    if state not in State.values or state in (State.REQUESTED, State.FAILED) or state == ret.state:
        return False
    if ret.state in FINAL:
        return False
    on_the_path = state != State.REJECTED and ret.state in Return.PROGRESS
    if on_the_path and Return.PROGRESS.index(State(state)) <= Return.PROGRESS.index(State(ret.state)):
        return False
    ret.follow_dr(state=state, description=f"DR says the return is {state}")
    return True


def _lines_follow(ret: Return, data: JSONObject) -> None:
    fulfillment = ret.api == Return.Api.FULFILLMENT_RETURNS
    items = {}
    for item in data.get("items") or []:
        key = str(item.get("fulfillmentOrderItemId") if fulfillment else item.get("itemId"))
        items[key] = item
    for line in ret.lines.select_related("order_line", "fulfillment_order_line"):
        fo_line = line.fulfillment_order_line
        key = fo_line.dr_item_id if fulfillment and fo_line is not None else line.order_line.dr_item_id
        item = items.get(key)
        if item is None:
            continue
        accepted = item.get("quantityAccepted")
        if accepted is None and item.get("state") == "accepted":
            accepted = item.get("quantity")
        new_accepted = max(line.quantity_accepted, min(int(accepted or 0), line.quantity))
        new_state = _line_state(line.state, str(item.get("state") or ""))
        if (new_accepted, new_state, key) != (line.quantity_accepted, line.state, line.dr_item_id):
            line.quantity_accepted, line.state, line.dr_item_id = new_accepted, new_state, key
            line.save(update_fields=["quantity_accepted", "state", "dr_item_id"])


LINE_PROGRESS = ("", "created", "pending", "accepted")


def _line_state(current: str, reported: str) -> str:
    if not reported or current in ("accepted", "rejected"):
        return current
    if reported == "rejected" or current not in LINE_PROGRESS or reported not in LINE_PROGRESS:
        return reported
    return reported if LINE_PROGRESS.index(reported) > LINE_PROGRESS.index(current) else current


# --- what the refund step needs -------------------------------------------------------------------


def return_refund_offer(*, ret: Return) -> list[tuple[str, int]]:
    """(DR order item id, accepted units not yet refunded for this return), for the refund that is
    ours to issue after ``fulfillment_return.accepted``. A third-party return is refunded by DR itself
    once fully received, so it offers nothing."""
    if ret.api != Return.Api.FULFILLMENT_RETURNS or ret.state != State.ACCEPTED or not ret.dr_return_id:
        return []
    refunded: dict[int, int] = defaultdict(int)
    rows = (
        RefundLine.objects.filter(refund__for_return=ret.dr_return_id, refund__state__in=Refund.HOLDING_STATES)
        .values("order_line")
        .annotate(units=Sum("quantity"))
    )
    for row in rows:
        refunded[row["order_line"]] = row["units"] or 0
    accepted: dict[int, int] = defaultdict(int)
    items: dict[int, str] = {}
    for line in ret.lines.select_related("order_line"):
        accepted[line.order_line_id] += line.quantity_accepted
        items[line.order_line_id] = line.order_line.dr_item_id
    offer = [(items[pk], units - refunded[pk]) for pk, units in accepted.items()]
    return [(item_id, units) for item_id, units in offer if units > 0]


def return_refund_automatically(*, ret: Return) -> Refund | None:
    """Refund the accepted units of a return through DR's warehouse as soon as they are back, when
    ``REFUND_RETURNS_AUTOMATICALLY`` is on; otherwise customer service is offered the refund
    pre-filled on the order page. Once per return (``refund_request`` finds the one already made)."""
    if not settings.REFUND_RETURNS_AUTOMATICALLY:
        return None
    offer = return_refund_offer(ret=ret)
    if not offer:
        return None
    return refund_request(
        order=ret.order, items=offer, reason=f"Returned goods (return {ret.dr_return_id})", for_return=ret.dr_return_id
    )


# --- DR's answers to our calls (the performers' on_done and on_failed) ---------------------------


def return_answered(*, instruction: Instruction, result: JSONObject) -> Return | None:
    """DR created the return we asked for (or already had it, found after a lost answer)."""
    ret = Return.objects.filter(instruction=instruction).select_related("order").first()
    if ret is None or not result.get("id"):
        return ret
    order = lock_order(order=ret.order)
    ret = Return.objects.select_for_update().get(pk=ret.pk)
    other = Return.objects.filter(dr_return_id=str(result["id"])).exclude(pk=ret.pk).first()
    if other is not None:
        return _apply(order, other, result)  # an event matched DR's return to a twin request of ours
    return _apply(order, ret, result)


def return_refused(*, instruction: Instruction) -> Return | None:
    """DR refused to create the return for good: the units are no longer on their way back."""
    ret = Return.objects.filter(instruction=instruction).select_related("order").first()
    if ret is None:
        return None
    order = lock_order(order=ret.order)
    ret = Return.objects.select_for_update().get(pk=ret.pk)
    if ret.state == State.REQUESTED:
        reason = instruction.last_error[:1000] or "DR refused the return"
        ret.mark_failed(reason=reason, description=reason[:300])
        ret.save()
        ledger_recount(order=order)
    return ret


def return_known_at_dr(*, instruction: Instruction) -> JSONObject | None:
    """DR's return as we already know it (an event matched it to ours), else None."""
    ret = Return.objects.filter(instruction=instruction).exclude(dr_return_id="").first()
    if ret is None:
        return None
    return ret.raw if ret.raw.get("id") == ret.dr_return_id else {"id": ret.dr_return_id}


def fulfillment_return_is_ours(*, instruction: Instruction, data: JSONObject) -> bool:
    """Whether DR's fulfillment return asks for exactly this instruction's units, was made after it,
    and no other return of ours has claimed it."""
    payload = instruction.payload
    if str(data.get("fulfillmentOrderId")) != str(payload["fulfillmentOrderId"]) or not data.get("id"):
        return False
    if data.get("type") == "warehouse":
        return False
    created = dr_time(data.get("createdTime"))
    if created is not None and created < instruction.created_at.replace(microsecond=0):
        return False
    if Return.objects.filter(dr_return_id=str(data["id"])).exclude(instruction=instruction).exists():
        return False
    return fulfillment_return_units(data) == fulfillment_return_units(payload)


def receipt_answered(*, instruction: Instruction, result: JSONObject) -> Return | None:
    """DR recorded our receipt (POST /returns/{id} answered with the return)."""
    if not result.get("id"):
        return None
    with suppress(Order.DoesNotExist, UnusableEvent):
        return return_mirror(data=result, event_type="return.updated")
    return None


def receipt_already_recorded(*, instruction: Instruction, data: JSONObject) -> bool:
    """After a lost answer: whether DR's return already counts this receipt's units as accepted.

    DR's count has to cover what it had accepted when the receipt was planned (``acceptedBefore``)
    and every other receipt of ours for this return that DR confirmed since, plus this one: a parcel
    queued along with another must not take the other's units for its own.
    """
    payload = instruction.payload
    before = {str(item_id): int(units) for item_id, units in (payload.get("acceptedBefore") or {}).items()}
    confirmed: dict[str, int] = defaultdict(int)
    others = Instruction.objects.filter(
        kind=instruction.kind, subject=instruction.subject, state=Instruction.State.DONE
    ).exclude(pk=instruction.pk)
    for other in others:
        if other.payload.get("returnRef") == payload.get("returnRef"):
            for item_id, units in (other.payload.get("units") or {}).items():
                confirmed[str(item_id)] += int(units)
    accepted = {str(item.get("itemId")): int(item.get("quantityAccepted") or 0) for item in data.get("items") or []}
    units = payload.get("units") or {}
    return bool(units) and all(
        accepted.get(str(item_id), 0) >= max(before.get(str(item_id), 0), confirmed[str(item_id)]) + int(quantity)
        for item_id, quantity in units.items()
    )

"""Returns: `/fulfillment-returns` (DR-coordinated lines) and `/returns` (third-party and digital lines).

Sources: order-management/returns-and-refunds-1/returns/digital-river-coordinated-returns.md and
creating-a-return.md; request and answer fields as the spec's GlobalFulfillmentReturnRequest /
Response and ReturnsRequest / UpdateReturnsRequest / ReturnsResponse name them.

Where the spec differs from the notes (`digitalriver-api.md` §9), the spec wins: a fulfillment return's
items take `fulfillmentOrderItemId` only (no `itemId`), and the request has no `metadata`; its answer
spells `livemode` in lower case and shows no item ids, `updatedTime` or `metadata`.
"""

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from ..errors import ApiError, Errors, conflict, not_found
from ..ids import prefixed_id, uuid_id
from ..models import (
    FulfillmentOrder,
    FulfillmentOrderItem,
    FulfillmentReturn,
    FulfillmentReturnItem,
    Order,
    OrderItem,
    Return,
    ReturnItem,
)
from ..models.orders import SHIP_FROM
from ..types import JSONObject
from .events import event_emit
from .refunds import Part, refund_issue

FR_FIELDS = frozenset({"fulfillmentOrderId", "upstreamId", "reason", "items"})
FR_ITEM_FIELDS = frozenset({"fulfillmentOrderItemId", "quantity", "unitAttributes"})
RETURN_FIELDS = frozenset({"orderId", "reason", "items", "location", "metadata"})
RETURN_ITEM_FIELDS = frozenset({"itemId", "skuId", "quantity"})
UPDATE_FIELDS = frozenset({"state", "items", "location", "metadata"})
UPDATE_ITEM_FIELDS = frozenset({"itemId", "skuId", "quantity", "state"})
IN_DISPUTE = "A return cannot be performed while there is a dispute on the order."
#: Where the sandbox's warehouse takes returns (a fulfillment return's `location` once approved).
RETURN_LOCATION = {"name": "Sandbox returns desk", "phone": "952-253-1234", **SHIP_FROM}
OPEN_STATES = (FulfillmentReturn.State.CREATED, FulfillmentReturn.State.PENDING)


class ReturnError(ValueError):
    """A warehouse action the return's state does not allow."""


def _positive(errors: Errors, value: Any, parameter: str) -> None:
    if value is None:
        errors.missing(parameter)
    elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
        errors.invalid(parameter, "'quantity' must be a positive integer.")


def _items(errors: Errors, body: JSONObject) -> list[Any]:
    items: Any = body.get("items")
    if not items:
        errors.missing("items")
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        errors.invalid("items", "'items' must be a list of objects.")
        return []
    return items


def _unknown(errors: Errors, source: JSONObject, known: frozenset[str], prefix: str = "") -> None:
    for key in source:
        if key not in known:
            errors.add("unknown_parameter", f"{prefix}{key}", f"'{key}' is not a known parameter.")


def _not_disputed(order: Order | None) -> None:
    if order is not None and order.state == Order.State.DISPUTE:
        # DR's answer to POST /returns while disputed: a 409 with code invalid_parameter.
        raise conflict("invalid_parameter", "order", IN_DISPUTE)


# --- /fulfillment-returns ---------------------------------------------------------------------------


def returnable(line: FulfillmentOrderItem) -> int:
    """Shipped units not yet returned nor asked back by an open fulfillment return."""
    asked = (
        FulfillmentReturnItem.objects.filter(
            fulfillment_order_item=line, fulfillment_return__state__in=OPEN_STATES
        ).aggregate(total=Sum("quantity"))["total"]
        or 0
    )
    return line.shipped - asked


def fulfillment_return_create(*, body: JSONObject) -> FulfillmentReturn:
    """`POST /fulfillment-returns`: shipped units of one fulfillment order, `created`."""
    errors = Errors()
    _unknown(errors, body, FR_FIELDS)
    if not body.get("fulfillmentOrderId"):
        errors.missing("fulfillmentOrderId")
    for key in ("fulfillmentOrderId", "upstreamId", "reason"):
        if body.get(key) is not None and not isinstance(body[key], str):
            errors.invalid(key, f"'{key}' must be a string.")
    items = _items(errors, body)
    for index, item in enumerate(items):
        _unknown(errors, item, FR_ITEM_FIELDS, f"items[{index}].")
        if not item.get("fulfillmentOrderItemId"):
            errors.missing(f"items[{index}].fulfillmentOrderItemId")
        _positive(errors, item.get("quantity"), f"items[{index}].quantity")
    errors.raise_if_any()
    with transaction.atomic():
        fulfillment_order = _locked_fo(str(body["fulfillmentOrderId"]))
        if fulfillment_order is None:
            raise not_found("fulfillmentOrderId", str(body["fulfillmentOrderId"]))
        _not_disputed(fulfillment_order.order)
        wanted = _wanted_lines(fulfillment_order, [(i["fulfillmentOrderItemId"], i["quantity"]) for i in items])
        return _create(
            fulfillment_order,
            wanted,
            upstream_id=str(body.get("upstreamId") or fulfillment_order.upstream_id),
            reason=str(body.get("reason") or ""),
        )


def _locked_fo(fulfillment_order_id: str) -> FulfillmentOrder | None:
    order_id = FulfillmentOrder.objects.filter(dr_id=fulfillment_order_id).values_list("order_id", flat=True).first()
    if order_id is not None:
        Order.objects.select_for_update().filter(pk=order_id).first()
    return FulfillmentOrder.objects.select_for_update().filter(dr_id=fulfillment_order_id).first()


def _wanted_lines(
    fulfillment_order: FulfillmentOrder, asked: list[tuple[Any, int]]
) -> list[tuple[FulfillmentOrderItem, int]]:
    lines = {line.dr_id: line for line in fulfillment_order.items.select_for_update()}
    wanted: list[tuple[FulfillmentOrderItem, int]] = []
    for index, (item_id, quantity) in enumerate(asked):
        line = lines.get(str(item_id))
        if line is None:
            raise ApiError(
                400,
                [
                    (
                        "invalid_parameter",
                        f"items[{index}].fulfillmentOrderItemId",
                        f"No item '{item_id}' in '{fulfillment_order.dr_id}'.",
                    )
                ],
            )
        already = sum(q for seen, q in wanted if seen.pk == line.pk)
        if quantity + already > returnable(line):
            raise conflict(
                "quantity_too_large",
                f"items[{index}].quantity",
                f"Only {returnable(line)} shipped units of item '{line.dr_id}' can be returned.",
            )
        wanted.append((line, quantity))
    return wanted


def _create(
    fulfillment_order: FulfillmentOrder,
    wanted: list[tuple[FulfillmentOrderItem, int]],
    *,
    upstream_id: str,
    reason: str,
    kind: str = FulfillmentReturn.Type.CLIENT,
) -> FulfillmentReturn:
    fulfillment_return = FulfillmentReturn.objects.create(
        dr_id=uuid_id(), fulfillment_order=fulfillment_order, upstream_id=upstream_id, reason=reason, type=kind
    )
    for line, quantity in wanted:
        FulfillmentReturnItem.objects.create(
            fulfillment_return=fulfillment_return, fulfillment_order_item=line, quantity=quantity
        )
    _emit_fr(fulfillment_return, "fulfillment_return.created", {})
    return fulfillment_return


def _emit_fr(fulfillment_return: FulfillmentReturn, event_type: str, previous: JSONObject) -> None:
    fulfillment_return = FulfillmentReturn.objects.get(pk=fulfillment_return.pk)
    event_emit(
        type=event_type, obj=fulfillment_return.as_dr(), previous=previous, order_id=fulfillment_return.upstream_id
    )


def _locked_return(return_id: str, states: tuple[str, ...]) -> FulfillmentReturn:
    found = FulfillmentReturn.objects.filter(dr_id=return_id).select_related("fulfillment_order").first()
    if found is None:
        raise ReturnError(f"no fulfillment return {return_id}")
    _locked_fo(found.fulfillment_order.dr_id)
    fulfillment_return = FulfillmentReturn.objects.select_for_update().get(pk=found.pk)
    if fulfillment_return.state not in states:
        raise ReturnError(f"fulfillment return {return_id} is {fulfillment_return.state}")
    return fulfillment_return


def fulfillment_return_approve(*, return_id: str, location: JSONObject | None = None) -> FulfillmentReturn:
    """The fulfiller approves: `pending`, with the address to send the parcel to."""
    with transaction.atomic():
        fulfillment_return = _locked_return(return_id, (FulfillmentReturn.State.CREATED,))
        fulfillment_return.state = FulfillmentReturn.State.PENDING
        fulfillment_return.location = location or RETURN_LOCATION
        fulfillment_return.updated_time = timezone.now()
        fulfillment_return.save()
        _emit_fr(fulfillment_return, "fulfillment_return.pending", {"state": "created"})
        return fulfillment_return


def fulfillment_return_receive(*, return_id: str, accepted: dict[str, int] | None = None) -> FulfillmentReturn:
    """The parcel arrived: each line accepted for `accepted[line id]` units (all by default).

    A line accepted for none is rejected; the return is `accepted` when any unit is, `rejected`
    otherwise. Accepted units move from the line's `shipped` to its `returned` counter.
    """
    with transaction.atomic():
        fulfillment_return = _locked_return(return_id, OPEN_STATES)
        previous = {"state": fulfillment_return.state}
        _receive(fulfillment_return, accepted)
        _emit_fr(fulfillment_return, f"fulfillment_return.{fulfillment_return.state}", previous)
        return fulfillment_return


def _receive(fulfillment_return: FulfillmentReturn, accepted: dict[str, int] | None) -> None:
    any_accepted = False
    for request in fulfillment_return.items.select_related("fulfillment_order_item"):
        line = FulfillmentOrderItem.objects.select_for_update().get(pk=request.fulfillment_order_item_id)
        wanted = request.quantity if accepted is None else accepted.get(line.dr_id, 0)
        take = max(0, min(wanted, request.quantity, line.shipped))
        if take:
            line.shipped -= take
            line.returned += take
            line.save()
            OrderItem.objects.filter(order__dr_id=fulfillment_return.upstream_id, dr_id=line.upstream_id).update(
                returned_quantity=F("returned_quantity") + take
            )
            _mark_returned(fulfillment_return.upstream_id, line.upstream_id)
            any_accepted = True
        request.quantity_accepted = take
        request.state = "accepted" if take else "rejected"
        request.save()
    fulfillment_return.state = FulfillmentReturn.State.ACCEPTED if any_accepted else FulfillmentReturn.State.REJECTED
    if not fulfillment_return.location:
        fulfillment_return.location = RETURN_LOCATION
    fulfillment_return.updated_time = timezone.now()
    fulfillment_return.save()


def _mark_returned(order_id: str, item_id: str) -> None:
    item = OrderItem.objects.filter(order__dr_id=order_id, dr_id=item_id).first()
    if item is not None and item.fulfilled_quantity and item.returned_quantity >= item.fulfilled_quantity:
        item.state = OrderItem.State.RETURNED
        item.save(update_fields=["state"])


def fulfillment_return_reject(*, return_id: str) -> FulfillmentReturn:
    with transaction.atomic():
        fulfillment_return = _locked_return(return_id, OPEN_STATES)
        previous = {"state": fulfillment_return.state}
        fulfillment_return.items.update(state="rejected", quantity_accepted=0)
        fulfillment_return.state = FulfillmentReturn.State.REJECTED
        fulfillment_return.updated_time = timezone.now()
        fulfillment_return.save()
        _emit_fr(fulfillment_return, "fulfillment_return.rejected", previous)
        return fulfillment_return


def warehouse_return(*, fulfillment_order_id: str, items: list[tuple[str, int]], reason: str = "") -> FulfillmentReturn:
    """A refused parcel comes back: a `warehouse` return nobody asked for.

    DR's page says only that a warehouse return is "initiated when a shipment is refused"; the parcel
    is already at the warehouse, so the sandbox creates it and accepts it at once
    (`fulfillment_return.created`, then `.accepted`).
    """
    with transaction.atomic():
        fulfillment_order = _locked_fo(fulfillment_order_id)
        if fulfillment_order is None:
            raise ReturnError(f"no fulfillment order {fulfillment_order_id}")
        try:
            wanted = _wanted_lines(fulfillment_order, list(items))
        except ApiError as exc:
            raise ReturnError(str(exc)) from None
        fulfillment_return = _create(
            fulfillment_order,
            wanted,
            upstream_id=fulfillment_order.upstream_id,
            reason=reason or "Shipment refused",
            kind=FulfillmentReturn.Type.WAREHOUSE,
        )
        _receive(fulfillment_return, None)
        _emit_fr(fulfillment_return, "fulfillment_return.accepted", {"state": "created"})
        return fulfillment_return


# --- /returns -------------------------------------------------------------------------------------


def _line_of(order: Order, raw: JSONObject, parameter: str) -> OrderItem:
    lines = list(order.items.all())
    item_id, sku_id = raw.get("itemId"), raw.get("skuId")
    line = next((line for line in lines if line.dr_id == item_id), None) if item_id else None
    if line is None and not item_id:
        line = next((line for line in lines if line.sku_id == sku_id), None)
    if line is None:
        raise not_found(f"{parameter}.itemId", str(item_id or sku_id))
    return line


def return_available(item: OrderItem) -> int:
    """Fulfilled units not returned through either API nor already authorized for return."""
    authorized = item.return_items.aggregate(total=Sum("quantity"))["total"] or 0
    return item.fulfilled_quantity - item.returned_quantity - authorized


def return_create(*, body: JSONObject) -> Return:
    """`POST /returns`: a return authorization, `created`; `return.created`."""
    errors = Errors()
    _unknown(errors, body, RETURN_FIELDS)
    if not body.get("orderId"):
        errors.missing("orderId")
    if isinstance(body.get("reason"), str) and len(body["reason"]) > 64:
        errors.invalid("reason", "'reason' may have at most 64 characters.")
    for key in ("metadata", "location"):
        if key in body and not isinstance(body[key], dict):
            errors.invalid(key, f"'{key}' must be an object.")
    items = _items(errors, body)
    for index, item in enumerate(items):
        _unknown(errors, item, RETURN_ITEM_FIELDS, f"items[{index}].")
        if not item.get("itemId") and not item.get("skuId"):
            errors.missing(f"items[{index}].itemId")
        _positive(errors, item.get("quantity"), f"items[{index}].quantity")
    errors.raise_if_any()
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(dr_id=str(body["orderId"])).first()
        if order is None:
            raise not_found("orderId", str(body["orderId"]))
        _not_disputed(order)
        wanted: list[tuple[OrderItem, int]] = []
        for index, raw in enumerate(items):
            line = _line_of(order, raw, f"items[{index}]")
            already = sum(q for seen, q in wanted if seen.pk == line.pk)
            if raw["quantity"] + already > return_available(line):
                # DR's own answer (creating-a-return.md), `qty` and all.
                raise conflict(
                    "quantity_too_large", f"items[{index}].qty", "Return quantity is larger than order quantity"
                )
            wanted.append((line, raw["quantity"]))
        now = timezone.now()
        return_request = Return.objects.create(
            dr_id=prefixed_id("ret"),
            order=order,
            reason=body.get("reason") or "",
            location=body.get("location") or {},
            metadata=body.get("metadata") or {},
            created_time=now,
            updated_time=now,
        )
        for line, quantity in wanted:
            ReturnItem.objects.create(
                return_request=return_request, order_item=line, quantity=quantity, amount=line.share(0, quantity)
            )
        _emit_return(return_request, "return.created", {})
        return return_request


def _emit_return(return_request: Return, event_type: str, previous: JSONObject) -> None:
    return_request = Return.objects.get(pk=return_request.pk)
    event_emit(type=event_type, obj=return_request.as_dr(), previous=previous, order_id=return_request.order.dr_id)


def return_update(*, return_id: str, body: JSONObject) -> Return:
    """`POST /returns/{id}`: accept all (`state`) or some units per line (`items`).

    Partly received: `return.updated`. Every line fully accepted: the return is `accepted`,
    `return.accepted`, and DR refunds the accepted units by itself (`refund.pending` …).
    """
    errors = Errors()
    _unknown(errors, body, UPDATE_FIELDS)
    if body.get("state") is not None and body["state"] != "accepted":
        errors.invalid("state", "'state' can only be 'accepted'.")
    raw_items: Any = body.get("items") or []
    if not isinstance(raw_items, list) or not all(isinstance(item, dict) for item in raw_items):
        errors.invalid("items", "'items' must be a list of objects.")
        raw_items = []
    for index, item in enumerate(raw_items):
        _unknown(errors, item, UPDATE_ITEM_FIELDS, f"items[{index}].")
        if not item.get("itemId") and not item.get("skuId"):
            errors.missing(f"items[{index}].itemId")
        _positive(errors, item.get("quantity"), f"items[{index}].quantity")
        if item.get("state") != "accepted":
            errors.invalid(f"items[{index}].state", "'state' must be 'accepted'.")
    for key in ("metadata", "location"):
        if key in body and not isinstance(body[key], dict):
            errors.invalid(key, f"'{key}' must be an object.")
    errors.raise_if_any()
    with transaction.atomic():
        found = Return.objects.filter(dr_id=return_id).first()
        if found is None:
            raise not_found("id", return_id)
        order = Order.objects.select_for_update().get(pk=found.order_id)
        return_request = Return.objects.select_for_update().get(pk=found.pk)
        _not_disputed(order)
        accepting = body.get("state") == "accepted" or bool(raw_items)
        if accepting and return_request.state == Return.State.ACCEPTED:
            raise conflict("invalid_parameter", "state", f"Return '{return_id}' is already accepted.")
        previous: JSONObject = {"state": return_request.state}
        lines = {part.order_item.dr_id: part for part in return_request.items.select_related("order_item")}
        if body.get("state") == "accepted":
            for part in lines.values():
                part.quantity_accepted = part.quantity
        for index, raw in enumerate(raw_items):
            line = _line_of(order, raw, f"items[{index}]")
            expected = lines.get(line.dr_id)
            if expected is None:
                raise not_found(f"items[{index}].itemId", line.dr_id)
            if expected.quantity_accepted + raw["quantity"] > expected.quantity:
                raise conflict(
                    "quantity_too_large",
                    f"items[{index}].quantity",
                    f"Only {expected.quantity - expected.quantity_accepted} units of '{line.dr_id}' are expected.",
                )
            expected.quantity_accepted += raw["quantity"]
        for part in lines.values():
            part.state = "accepted" if part.quantity_accepted == part.quantity else "created"
            part.save()
        if "metadata" in body:
            return_request.metadata = body["metadata"]
        if "location" in body:
            return_request.location = body["location"]
        return_request.updated_time = timezone.now()
        if all(part.state == "accepted" for part in lines.values()):
            return_request.state = Return.State.ACCEPTED
            return_request.save()
            _emit_return(return_request, "return.accepted", previous)
            _refund_return(order, return_request, list(lines.values()))
        else:
            return_request.save()
            _emit_return(return_request, "return.updated", previous)
        return Return.objects.get(pk=return_request.pk)


def _refund_return(order: Order, return_request: Return, parts: list[ReturnItem]) -> None:
    """DR's own refund of a fully accepted return: the units at 100 %, never more than is left."""
    refund_parts = []
    for part in parts:
        line = part.order_item
        if line.share(0, part.quantity) <= line.available_to_refund:
            refund_parts.append(Part(item=line, quantity=part.quantity, percent=Decimal("100")))
        elif line.available_to_refund > 0:
            refund_parts.append(Part(item=line, quantity=part.quantity, amount=line.available_to_refund))
    if not refund_parts:
        return
    try:
        refund_issue(order=order, parts=refund_parts, reason=return_request.reason, return_request=return_request)
    except ApiError:
        # Nothing left to refund on the order (an earlier refund or a chargeback took it).
        return

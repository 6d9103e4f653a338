"""Fulfillment orders and the warehouse that works them.

Distributed lines: the client creates the fulfillment order and gets `fulfillment_order.*` events,
then captures or cancels with `POST /fulfillments`. Orchestrated lines: the sandbox creates a
managed fulfillment order on acceptance and captures or cancels by itself. It reports that order's
`pending` and `backordered` states (the client needs its ids for cancellation requests, and sees the
backorder), but not `shipped` or `cancelled`: those would make a client capture or cancel a second
time, and it learns of them through `fulfillment.created` instead.
"""

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..errors import ApiError, Errors, conflict, not_found
from ..ids import numeric_id, uuid_id
from ..models import (
    CancellationItem,
    FulfillmentCancellation,
    FulfillmentOrder,
    FulfillmentOrderItem,
    InventoryItem,
    InventoryLevel,
    Order,
    OrderItem,
    Shipment,
    ShipmentItem,
)
from ..timefmt import dr_time, parse_dr_time
from ..types import JSONObject
from .events import event_emit
from .payments import Request, fulfillment_apply

FO_FIELDS = frozenset(
    {
        "upstreamId",
        "upstreamOrderTime",
        "currency",
        "shipTo",
        "shippingChoice",
        "items",
        "locale",
        "name",
        "email",
        "phone",
        "reservationId",
        "metadata",
        "billTo",
        "shipFrom",
    }
)
FO_ITEM_FIELDS = frozenset({"inventoryItemId", "quantity", "upstreamId", "total", "tax", "metadata", "skuId"})
TRACKING_COMPANIES = {
    "UPS": "https://www.ups.com/track?tracknum={}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={}",
    "DHL": "https://www.dhl.com/en/express/tracking.html?AWB={}",
}


class WarehouseError(ValueError):
    """A warehouse action the fulfillment order's counters do not allow."""


# --- creating fulfillment orders --------------------------------------------------------------


def fulfillment_order_create(*, body: JSONObject) -> FulfillmentOrder:
    """`POST /fulfillment-orders` from the client (distributed lines)."""
    errors = Errors()
    for key in body:
        if key not in FO_FIELDS:
            errors.add("unknown_parameter", key, f"'{key}' is not a known parameter.")
    if not body.get("upstreamOrderTime"):
        errors.missing("upstreamOrderTime")
    elif parse_dr_time(body["upstreamOrderTime"]) is None:
        errors.invalid("upstreamOrderTime", "'upstreamOrderTime' must be an ISO 8601 date-time.")
    currency = body.get("currency")
    if not currency:
        errors.missing("currency")
    elif not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        errors.invalid("currency", "'currency' must be an ISO 4217 code such as USD.")
    ship_to = body.get("shipTo")
    if not ship_to:
        errors.missing("shipTo")
    elif not isinstance(ship_to, dict) or not isinstance(ship_to.get("address"), dict):
        errors.invalid("shipTo", "'shipTo' must be an object with an 'address'.")
    else:
        for key in ("line1", "city", "country"):
            if not ship_to["address"].get(key):
                errors.missing(f"shipTo.address.{key}")
    choice = body.get("shippingChoice")
    if not isinstance(choice, dict) or not choice.get("id"):
        errors.missing("shippingChoice.id")
    items: Any = body.get("items")  # untrusted JSON until the checks below pass
    if not items:
        errors.missing("items")
    elif not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        errors.invalid("items", "'items' must be a list of objects.")
        items = []
    known = set(
        InventoryItem.objects.filter(
            dr_id__in=[i.get("inventoryItemId") for i in items or [] if isinstance(i.get("inventoryItemId"), str)]
        ).values_list("dr_id", flat=True)
    )
    for index, item in enumerate(items or []):
        prefix = f"items[{index}]"
        for key in item:
            if key not in FO_ITEM_FIELDS:
                errors.add("unknown_parameter", f"{prefix}.{key}", f"'{key}' is not a known parameter.")
        inventory_id = item.get("inventoryItemId")
        if not inventory_id:
            errors.missing(f"{prefix}.inventoryItemId")
        elif inventory_id not in known:
            errors.invalid(f"{prefix}.inventoryItemId", f"Inventory item '{inventory_id}' does not exist.")
        quantity = item.get("quantity")
        if quantity is None:
            errors.missing(f"{prefix}.quantity")
        elif isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            errors.invalid(f"{prefix}.quantity", "'quantity' must be a positive integer.")
    errors.raise_if_any()
    with transaction.atomic():
        upstream_id = str(body.get("upstreamId") or "")
        fulfillment_order = FulfillmentOrder.objects.create(
            dr_id=numeric_id(),
            upstream_id=upstream_id,
            order=Order.objects.filter(dr_id=upstream_id).first() if upstream_id else None,
            data={key: value for key, value in body.items() if key not in ("items", "upstreamId")},
        )
        for item in items:
            FulfillmentOrderItem.objects.create(
                fulfillment_order=fulfillment_order,
                dr_id=numeric_id(),
                upstream_id=str(item.get("upstreamId") or ""),
                inventory_item_id=item["inventoryItemId"],
                quantity=item["quantity"],
                pending=item["quantity"],
                data={key: item[key] for key in ("total", "tax", "metadata", "skuId") if key in item},
            )
        _emit_fulfillment_order(fulfillment_order, "fulfillment_order.pending", {})
        return fulfillment_order


def fulfillment_order_create_managed(*, order: Order) -> FulfillmentOrder | None:
    """DR's own fulfillment order for the orchestrated lines of a just-accepted order."""
    lines = list(order.items.filter(fulfillment_model=OrderItem.Model.ORCHESTRATED))
    if not lines or FulfillmentOrder.objects.filter(order=order, managed=True).exists():
        return None
    fulfillment_order = FulfillmentOrder.objects.create(
        dr_id=numeric_id(),
        upstream_id=order.dr_id,
        order=order,
        managed=True,
        data={
            "upstreamOrderTime": dr_time(order.created_time),
            "currency": order.currency,
            "shipTo": order.ship_to,
            "shippingChoice": {"id": order.shipping_choice.get("serviceLevel", "SG")},
            "locale": order.locale,
            "email": order.email,
            "reservationId": order.checkout_id,
        },
    )
    for line in lines:
        FulfillmentOrderItem.objects.create(
            fulfillment_order=fulfillment_order,
            dr_id=numeric_id(),
            upstream_id=line.dr_id,
            inventory_item_id=line.sku_id,
            quantity=line.quantity,
            pending=line.quantity,
            data={"total": float(line.amount), "tax": {"amount": float(line.tax_amount)}},
        )
    # DR reports its own fulfillment orders too: that is how a client learns their ids, which its
    # cancellation requests need.
    _emit_fulfillment_order(fulfillment_order, "fulfillment_order.pending", {})
    return fulfillment_order


def _emit_fulfillment_order(fulfillment_order: FulfillmentOrder, event_type: str, previous: JSONObject) -> None:
    fulfillment_order = FulfillmentOrder.objects.get(pk=fulfillment_order.pk)
    obj = fulfillment_order.as_dr()
    if event_type == "fulfillment_order.backordered":
        # Each backordered item also says what was ordered and the total backordered so far
        # (global-fulfillments.md#backordered-events). The sandbox's `backordered` stays the line's
        # running count, like every other fulfillment-order event; for one backorder of a line the
        # page's "units that triggered this event" is the same number.
        for item in obj["items"]:
            if item["backordered"]:
                item["ordered"] = item["quantity"]
                item["totalBackordered"] = item["backordered"]
    event_emit(type=event_type, obj=obj, previous=previous, order_id=fulfillment_order.upstream_id)


# --- warehouse actions ------------------------------------------------------------------------


def _locked_fulfillment_order(fulfillment_order_id: str) -> FulfillmentOrder:
    """Lock the fulfillment order, after its DR order when it has one.

    `POST /fulfillments` locks the order and then its managed fulfillment-order lines; taking the
    locks in the same order here keeps two writers from deadlocking on PostgreSQL.
    """
    order_id = FulfillmentOrder.objects.filter(dr_id=fulfillment_order_id).values_list("order_id", flat=True).first()
    if order_id is not None:
        Order.objects.select_for_update().filter(pk=order_id).first()
    fulfillment_order = FulfillmentOrder.objects.select_for_update().filter(dr_id=fulfillment_order_id).first()
    if fulfillment_order is None:
        raise WarehouseError(f"no fulfillment order {fulfillment_order_id}")
    return fulfillment_order


def _line(fulfillment_order: FulfillmentOrder, item_id: str) -> FulfillmentOrderItem:
    line = fulfillment_order.items.select_for_update().filter(dr_id=item_id).first()
    if line is None:
        raise WarehouseError(f"fulfillment order {fulfillment_order.dr_id} has no item {item_id}")
    return line


def _take_open(line: FulfillmentOrderItem, quantity: int, action: str) -> None:
    """Take `quantity` units out of pending first, then backordered."""
    if quantity < 1 or quantity > line.open_quantity:
        raise WarehouseError(f"cannot {action} {quantity} of item {line.dr_id}: {line.open_quantity} units are open")
    from_pending = min(quantity, line.pending)
    line.pending -= from_pending
    line.backordered -= quantity - from_pending


def _managed_order_lines(
    fulfillment_order: FulfillmentOrder, moves: list[tuple[FulfillmentOrderItem, int]]
) -> tuple[Order, list[tuple[OrderItem, int, FulfillmentOrderItem]]]:
    assert fulfillment_order.order_id is not None, "a managed fulfillment order belongs to an order"
    order = Order.objects.select_for_update().get(pk=fulfillment_order.order_id)
    by_id = {item.dr_id: item for item in order.items.all()}
    return order, [(by_id[line.upstream_id], quantity, line) for line, quantity in moves]


def warehouse_ship(
    *,
    fulfillment_order_id: str,
    items: list[tuple[str, int]],
    tracking_company: str = "UPS",
    tracking_number: str = "",
    tracking_url: str = "",
) -> Shipment:
    """Ship some units of some lines with tracking: a Shipment and `fulfillment_order.shipped`."""
    with transaction.atomic():
        fulfillment_order = _locked_fulfillment_order(fulfillment_order_id)
        tracking_number = tracking_number or f"1Z{secrets.token_hex(8).upper()}"
        if not tracking_url and tracking_company in TRACKING_COMPANIES:
            tracking_url = TRACKING_COMPANIES[tracking_company].format(tracking_number)
        shipment = Shipment.objects.create(
            dr_id=uuid_id(),
            fulfillment_order=fulfillment_order,
            tracking_company=tracking_company,
            tracking_number=tracking_number,
            tracking_url=tracking_url,
        )
        moves = []
        for item_id, quantity in items:
            line = _line(fulfillment_order, item_id)
            _take_open(line, quantity, "ship")
            line.shipped += quantity
            line.save()
            ShipmentItem.objects.create(
                shipment=shipment, dr_id=uuid_id(), fulfillment_order_item=line, quantity=quantity
            )
            _consume_stock(line.inventory_item_id, quantity)
            moves.append((line, quantity))
        fulfillment_order.refresh_state()
        fulfillment_order.save()
        if fulfillment_order.managed:
            order, lines = _managed_order_lines(fulfillment_order, moves)
            shipment_items = {item.fulfillment_order_item_id: item.dr_id for item in shipment.items.all()}
            fulfillment_apply(
                order=order,
                requests=[
                    Request(item=item, quantity=quantity, shipment_item_id=shipment_items[line.pk])
                    for item, quantity, line in lines
                ],
                tracking={
                    "shipmentId": shipment.dr_id,
                    "trackingCompany": tracking_company,
                    "trackingNumber": tracking_number,
                    "trackingUrl": tracking_url,
                },
            )
        else:
            event_emit(type="fulfillment_order.shipped", obj=shipment.as_dr(), order_id=fulfillment_order.upstream_id)
        return shipment


def _consume_stock(inventory_item_id: str, quantity: int) -> None:
    level = (
        InventoryLevel.objects.select_for_update()
        .filter(inventory_item__dr_id=inventory_item_id)
        .order_by("-available_quantity")
        .first()
    )
    if level is not None:
        level.available_quantity = max(0, level.available_quantity - quantity)
        level.updated_time = timezone.now()
        level.save()


def warehouse_backorder(
    *, fulfillment_order_id: str, item_id: str, quantity: int, available_time: datetime | None = None
) -> FulfillmentOrderItem:
    """Pending units become backordered until `available_time`: `fulfillment_order.backordered`."""
    with transaction.atomic():
        fulfillment_order = _locked_fulfillment_order(fulfillment_order_id)
        line = _line(fulfillment_order, item_id)
        if quantity < 1 or quantity > line.pending:
            raise WarehouseError(f"cannot backorder {quantity} of item {item_id}: {line.pending} units are pending")
        previous = {"items": [line.as_dr()]}
        line.pending -= quantity
        line.backordered += quantity
        line.available_time = available_time or timezone.now() + timedelta(days=14)
        line.save()
        fulfillment_order.refresh_state()
        fulfillment_order.save()
        _emit_fulfillment_order(fulfillment_order, "fulfillment_order.backordered", previous)
        return line


def warehouse_restock(*, fulfillment_order_id: str, item_id: str, quantity: int | None = None) -> FulfillmentOrderItem:
    """Backordered units are back in stock and pending again: `fulfillment_order.pending`."""
    with transaction.atomic():
        fulfillment_order = _locked_fulfillment_order(fulfillment_order_id)
        line = _line(fulfillment_order, item_id)
        quantity = line.backordered if quantity is None else quantity
        if quantity < 1 or quantity > line.backordered:
            raise WarehouseError(f"cannot restock {quantity} of item {item_id}: {line.backordered} are backordered")
        previous = {"items": [line.as_dr()]}
        line.backordered -= quantity
        line.pending += quantity
        if not line.backordered:
            line.available_time = None
        line.save()
        fulfillment_order.refresh_state()
        fulfillment_order.save()
        _emit_fulfillment_order(fulfillment_order, "fulfillment_order.pending", previous)
        return line


def warehouse_cancel(*, fulfillment_order_id: str, items: list[tuple[str, int]]) -> FulfillmentOrder:
    """The fulfiller cancels open units: `fulfillment_order.cancelled` with running totals."""
    with transaction.atomic():
        fulfillment_order = _locked_fulfillment_order(fulfillment_order_id)
        moves = []
        for item_id, quantity in items:
            line = _line(fulfillment_order, item_id)
            _take_open(line, quantity, "cancel")
            line.cancelled += quantity
            line.save()
            moves.append((line, quantity))
        _after_cancel(fulfillment_order, moves)
        return fulfillment_order


def _after_cancel(fulfillment_order: FulfillmentOrder, moves: list[tuple[FulfillmentOrderItem, int]]) -> None:
    fulfillment_order.refresh_state()
    fulfillment_order.save()
    if not moves:
        return
    if fulfillment_order.managed:
        order, lines = _managed_order_lines(fulfillment_order, moves)
        fulfillment_apply(
            order=order, requests=[Request(item=item, cancel_quantity=quantity) for item, quantity, _ in lines]
        )
    else:
        _emit_fulfillment_order(fulfillment_order, "fulfillment_order.cancelled", {})


# --- cancellation requests --------------------------------------------------------------------


def cancellation_create(*, body: JSONObject) -> FulfillmentCancellation:
    """`POST /fulfillment-cancellations`: a request the warehouse accepts (maybe partly) or rejects."""
    errors = Errors()
    for key in body:
        if key not in ("fulfillmentOrderId", "upstreamId", "reason", "items", "metadata"):
            errors.add("unknown_parameter", key, f"'{key}' is not a known parameter.")
    if not body.get("fulfillmentOrderId"):
        errors.missing("fulfillmentOrderId")
    items: Any = body.get("items")  # untrusted JSON until the checks below pass
    if not items:
        errors.missing("items")
    elif not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        errors.invalid("items", "'items' must be a list of objects.")
        items = []
    for index, item in enumerate(items or []):
        if not item.get("fulfillmentOrderItemId"):
            errors.missing(f"items[{index}].fulfillmentOrderItemId")
        quantity = item.get("quantity")
        if quantity is None:
            errors.missing(f"items[{index}].quantity")
        elif isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            errors.invalid(f"items[{index}].quantity", "'quantity' must be a positive integer.")
    errors.raise_if_any()
    with transaction.atomic():
        fulfillment_order = (
            FulfillmentOrder.objects.select_for_update().filter(dr_id=str(body["fulfillmentOrderId"])).first()
        )
        if fulfillment_order is None:
            raise not_found("fulfillmentOrderId", str(body["fulfillmentOrderId"]))
        lines = {line.dr_id: line for line in fulfillment_order.items.all()}
        wanted = []
        for index, item in enumerate(items):
            line = lines.get(str(item["fulfillmentOrderItemId"]))
            if line is None:
                raise ApiError(
                    400,
                    [
                        (
                            "invalid_parameter",
                            f"items[{index}].fulfillmentOrderItemId",
                            f"No item '{item['fulfillmentOrderItemId']}' in '{fulfillment_order.dr_id}'.",
                        )
                    ],
                )
            if item["quantity"] > line.open_quantity:
                # Only pending or backordered units can be cancelled; shipped ones need a return.
                raise conflict(
                    "quantity_too_large",
                    f"items[{index}].quantity",
                    f"Only {line.open_quantity} units of item '{line.dr_id}' are pending or backordered.",
                )
            wanted.append((line, item["quantity"]))
        cancellation = FulfillmentCancellation.objects.create(
            dr_id=uuid_id(),
            fulfillment_order=fulfillment_order,
            upstream_id=str(body.get("upstreamId") or fulfillment_order.upstream_id),
            reason=str(body.get("reason") or ""),
        )
        for line, quantity in wanted:
            CancellationItem.objects.create(cancellation=cancellation, fulfillment_order_item=line, quantity=quantity)
        _emit_cancellation(cancellation, "fulfillment_cancellation.created", {})
        return cancellation


def cancellation_accept(*, cancellation_id: str, accepted: dict[str, int] | None = None) -> FulfillmentCancellation:
    """The warehouse accepts a pending request, each line for `accepted[item id]` units at most.

    Without `accepted` it accepts what is still open of each line; lines that shipped meanwhile are
    accepted in part or rejected, so `quantityAccepted` can be below `quantity`.
    """
    with transaction.atomic():
        cancellation = _pending_cancellation(cancellation_id)
        fulfillment_order = _locked_fulfillment_order(cancellation.fulfillment_order.dr_id)
        moves = []
        for request in cancellation.items.select_related("fulfillment_order_item"):
            line = FulfillmentOrderItem.objects.select_for_update().get(pk=request.fulfillment_order_item_id)
            ceiling = request.quantity if accepted is None else min(request.quantity, accepted.get(line.dr_id, 0))
            take = max(0, min(ceiling, line.open_quantity))
            if take:
                _take_open(line, take, "cancel")
                line.cancelled += take
                line.save()
                moves.append((line, take))
            request.quantity_accepted = take
            request.state = "accepted" if take else "rejected"
            request.save()
        cancellation.state = FulfillmentCancellation.State.ACCEPTED if moves else FulfillmentCancellation.State.REJECTED
        cancellation.updated_time = timezone.now()
        cancellation.save()
        _emit_cancellation(cancellation, f"fulfillment_cancellation.{cancellation.state}", {"state": "pending"})
        _after_cancel(fulfillment_order, moves)
        return cancellation


def cancellation_reject(*, cancellation_id: str) -> FulfillmentCancellation:
    with transaction.atomic():
        cancellation = _pending_cancellation(cancellation_id)
        cancellation.items.update(state="rejected", quantity_accepted=0)
        cancellation.state = FulfillmentCancellation.State.REJECTED
        cancellation.updated_time = timezone.now()
        cancellation.save()
        _emit_cancellation(cancellation, "fulfillment_cancellation.rejected", {"state": "pending"})
        return cancellation


def _pending_cancellation(cancellation_id: str) -> FulfillmentCancellation:
    cancellation = FulfillmentCancellation.objects.select_for_update().filter(dr_id=cancellation_id).first()
    if cancellation is None:
        raise WarehouseError(f"no fulfillment cancellation {cancellation_id}")
    if cancellation.state != FulfillmentCancellation.State.PENDING:
        raise WarehouseError(f"fulfillment cancellation {cancellation_id} is already {cancellation.state}")
    return cancellation


def _emit_cancellation(cancellation: FulfillmentCancellation, event_type: str, previous: JSONObject) -> None:
    cancellation = FulfillmentCancellation.objects.get(pk=cancellation.pk)
    event_emit(type=event_type, obj=cancellation.as_dr(), previous=previous, order_id=cancellation.upstream_id)

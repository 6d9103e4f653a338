"""`POST /fulfillments`: capture or cancel the matching share of an order's charge.

Each line's total (amount + tax) is spread over its units by cumulative rounding, so the shares of
all its units add up to the line total to the cent; shipping goes with the first capture, or with
the last cancel when nothing was ever captured.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..errors import Errors, conflict, not_found
from ..ids import prefixed_id, uuid_id
from ..models import Charge, ChargeOperation, Fulfillment, FulfillmentOrderItem, Order, OrderItem
from ..types import JSONObject
from .cards import CAPTURE_FAILS, card_outcome
from .documents import invoice_issue
from .events import event_emit
from .lifecycle import order_move
from .network import capture_should_fail

FULFILLMENT_FIELDS = frozenset(
    {"orderId", "items", "shipmentId", "trackingCompany", "trackingNumber", "trackingUrl", "metadata"}
)
ITEM_FIELDS = frozenset({"itemId", "quantity", "cancelQuantity", "shipmentItemId", "skuId"})
# The 409s that mean "the effect already holds" for the whole order.
CANCELLABLE_BEFORE_ACCEPTANCE = (Order.State.PENDING_PAYMENT, Order.State.IN_REVIEW, Order.State.BLOCKED)
ORDER_STATE_CONFLICTS: dict[str, str] = {
    Order.State.FULFILLED: "order_fulfilled",
    Order.State.COMPLETE: "order_complete",
    Order.State.CANCELLED: "order_cancelled",
}


@dataclass
class Request:
    item: OrderItem
    quantity: int = 0
    cancel_quantity: int = 0
    shipment_item_id: str = ""
    parameter: str = "items[0]"


def fulfillment_create(*, body: JSONObject) -> Fulfillment:
    """Validate and apply a client's `POST /fulfillments` body."""
    errors = Errors()
    for key in body:
        if key not in FULFILLMENT_FIELDS:
            errors.add("unknown_parameter", key, f"'{key}' is not a known parameter.")
    order_id: Any = body.get("orderId")  # untrusted JSON until the checks below pass
    if not order_id:
        errors.missing("orderId")
    elif not isinstance(order_id, str):
        errors.invalid("orderId", "'orderId' must be a string.")
    items: Any = body.get("items")
    if not items:
        errors.missing("items")
    elif not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        errors.invalid("items", "'items' must be a list of objects.")
        items = []
    for index, item in enumerate(items or []):
        prefix = f"items[{index}]"
        for key in item:
            if key not in ITEM_FIELDS:
                errors.add("unknown_parameter", f"{prefix}.{key}", f"'{key}' is not a known parameter.")
        if not item.get("itemId") and not item.get("skuId"):
            errors.missing(f"{prefix}.itemId")
        for key in ("quantity", "cancelQuantity"):
            value = item.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                errors.invalid(f"{prefix}.{key}", f"'{key}' must be a non-negative integer.")
        if not item.get("quantity") and not item.get("cancelQuantity"):
            errors.add(
                "missing_parameter", f"{prefix}.quantity", "Each item needs a positive 'quantity' or 'cancelQuantity'."
            )
    for key in ("shipmentId", "trackingCompany", "trackingNumber", "trackingUrl"):
        if key in body and not isinstance(body[key], str):
            errors.invalid(key, f"'{key}' must be a string.")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        errors.invalid("metadata", "'metadata' must be an object.")
    errors.raise_if_any()
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(dr_id=order_id).first()
        if order is None:
            raise not_found("orderId", order_id)
        requests = []
        by_id = {item.dr_id: item for item in order.items.all()}
        for index, raw in enumerate(items):
            item = by_id.get(raw.get("itemId")) if raw.get("itemId") else None
            if item is None and not raw.get("itemId"):
                item = next((line for line in by_id.values() if line.sku_id == raw.get("skuId")), None)
            if item is None:
                raise not_found(f"items[{index}].itemId", raw.get("itemId") or raw.get("skuId"))
            requests.append(
                Request(
                    item=item,
                    quantity=raw.get("quantity") or 0,
                    cancel_quantity=raw.get("cancelQuantity") or 0,
                    shipment_item_id=raw.get("shipmentItemId", ""),
                    parameter=f"items[{index}]",
                )
            )
        tracking: JSONObject = {
            key: body[key] for key in ("shipmentId", "trackingCompany", "trackingNumber", "trackingUrl") if key in body
        }
        fulfillment = fulfillment_apply(
            order=order, requests=requests, tracking=tracking, metadata=body.get("metadata")
        )
        _managed_lines_cancel(requests)
        return fulfillment


def _managed_lines_cancel(requests: list[Request]) -> None:
    """A client cancelling orchestrated units stops DR's warehouse from shipping them.

    Units the warehouse already shipped cannot be cancelled any more (they need a return), which
    rolls the whole request back.
    """
    for request in requests:
        if not request.cancel_quantity or request.item.fulfillment_model != OrderItem.Model.ORCHESTRATED:
            continue
        lines = FulfillmentOrderItem.objects.select_for_update().filter(
            fulfillment_order__managed=True, upstream_id=request.item.dr_id
        )
        remaining = request.cancel_quantity
        for line in lines:
            take = min(remaining, line.pending + line.backordered)
            from_pending = min(take, line.pending)
            line.pending -= from_pending
            line.backordered -= take - from_pending
            line.cancelled += take
            line.save()
            line.fulfillment_order.refresh_state()
            line.fulfillment_order.save()
            remaining -= take
        if remaining:
            raise conflict(
                "quantity_too_large",
                f"{request.parameter}.cancelQuantity",
                f"{remaining} units of item '{request.item.dr_id}' have already shipped and need a return.",
            )


def check_requests(order: Order, requests: list[Request]) -> None:
    """The 409s of `POST /fulfillments`, order-level codes first."""
    if order.state == Order.State.DISPUTE:
        # DR's own answer while the order is disputed (returns-and-refunds-1/disputes-and-chargebacks.md).
        raise conflict("order_not_submitted", "orderId", f"Order '{order.dr_id}' has not been submitted.")
    if order.state in ORDER_STATE_CONFLICTS:
        state = "fulfilled" if order.state == Order.State.FULFILLED else order.state
        raise conflict(ORDER_STATE_CONFLICTS[order.state], "orderId", f"Resource '{order.dr_id}' is {state}.")
    captures = any(request.quantity for request in requests)
    if order.state != Order.State.ACCEPTED and (captures or order.state not in CANCELLABLE_BEFORE_ACCEPTANCE):
        # An order not accepted yet can have units cancelled (its authorization released) but not
        # captured. DR documents no code for this; the sandbox names the order's state so a client
        # sees why.
        raise conflict("order_not_accepted", "orderId", f"Resource '{order.dr_id}' is {order.state}, not accepted.")
    asked: dict[int, int] = {}
    for request in requests:
        item = request.item
        if item.open_quantity == 0:
            if item.cancelled_quantity == item.quantity:
                raise conflict(
                    "item_cancelled", f"{request.parameter}.itemId", f"Resource '{item.dr_id}' is cancelled."
                )
            raise conflict("item_fulfilled", f"{request.parameter}.itemId", f"Resource '{item.dr_id}' is fulfilled.")
        asked[item.pk] = asked.get(item.pk, 0) + request.quantity + request.cancel_quantity
        if asked[item.pk] > item.open_quantity:
            # DR's own words, as its Salesforce connector shows them (DR's pages document no body).
            raise conflict(
                "quantity_too_large",
                "quantity",
                "Sum of quantity and cancelQuantity may not exceed sku quantity of the order.",
            )


def fulfillment_apply(
    *, order: Order, requests: list[Request], tracking: JSONObject | None = None, metadata: JSONObject | None = None
) -> Fulfillment:
    """Record a fulfillment, settle the charge and move item and order states (order row locked)."""
    check_requests(order, requests)
    charge = order.charges.select_for_update().first()
    assert charge is not None, "every sandbox order is placed with its charge"
    capture_amount = cancel_amount = Decimal("0")
    for request in requests:
        item = OrderItem.objects.select_for_update().get(pk=request.item.pk)
        settled = item.fulfilled_quantity + item.cancelled_quantity
        capture_amount += item.share(settled, request.quantity)
        cancel_amount += item.share(settled + request.quantity, request.cancel_quantity)
        item.fulfilled_quantity += request.quantity
        item.cancelled_quantity += request.cancel_quantity
        if item.open_quantity == 0:
            item.state = OrderItem.State.CANCELLED if item.fulfilled_quantity == 0 else OrderItem.State.FULFILLED
        item.save()
        request.item = item
    items = list(order.items.all())
    all_settled = all(item.open_quantity == 0 for item in items)
    nothing_captured = not charge.operations.filter(kind=ChargeOperation.Kind.CAPTURE).exists()
    shipping = order.total_shipping + Decimal(str(order.shipping_choice.get("taxAmount", 0)))
    if not charge.shipping_settled and capture_amount:
        capture_amount += shipping
        charge.shipping_settled = True
    elif not charge.shipping_settled and all_settled and nothing_captured:
        cancel_amount += shipping
        charge.shipping_settled = True
    now = timezone.now()
    fulfillment = Fulfillment.objects.create(
        dr_id=prefixed_id("ful"),
        order=order,
        created_time=now,
        data={
            "items": [
                {
                    key: value
                    for key, value in {
                        "itemId": request.item.dr_id,
                        "skuId": request.item.sku_id,
                        "quantity": request.quantity,
                        "cancelQuantity": request.cancel_quantity,
                        "shipmentItemId": request.shipment_item_id or None,
                    }.items()
                    if value is not None
                }
                for request in requests
            ],
            **(tracking or {}),
            "metadata": metadata or {},
        },
    )
    capture = cancel = None
    if capture_amount:
        # DR's capture-failing test card, or a failure asked for on the page / control endpoint.
        failed = card_outcome(order) == CAPTURE_FAILS or capture_should_fail()
        capture = ChargeOperation.objects.create(
            charge=charge,
            kind=ChargeOperation.Kind.CAPTURE,
            dr_id=uuid_id(),
            amount=capture_amount,
            state="failed" if failed else "complete",
            failure_code="failed-request" if failed else "",
            failure_message="Failed to operate on charge" if failed else "",
            fulfillment_id=fulfillment.dr_id,
            created_time=now,
        )
        if not failed:
            order.captured_amount += capture_amount
    if cancel_amount:
        cancel = ChargeOperation.objects.create(
            charge=charge,
            kind=ChargeOperation.Kind.CANCEL,
            dr_id=uuid_id(),
            amount=cancel_amount,
            fulfillment_id=fulfillment.dr_id,
            created_time=now,
        )
        order.cancelled_amount += cancel_amount
    order.updated_time = now
    order.save()
    _refresh_charge(charge)
    event_emit(
        type="fulfillment.created",
        obj={**fulfillment.as_dr(), "orderDetails": Order.objects.get(pk=order.pk).as_dr(with_payment=False)},
        order_id=order.dr_id,
    )
    if capture is not None:
        suffix = "failed" if capture.state == "failed" else "complete"
        event_emit(type=f"order.charge.capture.{suffix}", obj=charge.as_dr(), order_id=order.dr_id)
        if capture.state == "complete":
            invoice_issue(order=order)
    if cancel is not None:
        event_emit(type="order.charge.cancel.complete", obj=charge.as_dr(), order_id=order.dr_id)
    _settle_order(order)
    return fulfillment


def _refresh_charge(charge: Charge) -> None:
    captured, cancelled = charge.total("capture"), charge.total("cancel")
    if captured + cancelled >= charge.amount:
        charge.state = Charge.State.COMPLETE if captured else Charge.State.CANCELLED
    charge.updated_time = timezone.now()
    charge.save()


def _settle_order(order: Order) -> None:
    items = list(order.items.all())
    if any(item.open_quantity for item in items):
        return
    if all(item.fulfilled_quantity == 0 for item in items):
        order_move(order=order, state=Order.State.CANCELLED)
        return
    order_move(order=order, state=Order.State.FULFILLED)
    charge = order.charges.first()
    assert charge is not None, "every sandbox order is placed with its charge"
    # Complete once every capture went through; a failed capture leaves it fulfilled for a person.
    if not charge.operations.filter(kind=ChargeOperation.Kind.CAPTURE).exclude(state="complete").exists():
        order_move(order=order, state=Order.State.COMPLETE)

"""The sandbox page: the storefront, the warehouse and the bad network, as plain forms."""

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ..errors import ApiError
from ..models import (
    ChargeOperation,
    DeliveryAttempt,
    Event,
    FulfillmentCancellation,
    FulfillmentOrder,
    FulfillmentReturn,
    InventoryLevel,
    Order,
    Refund,
    Sku,
)
from ..services import control as control_service
from ..services import disputes, orders, refunds, returns, warehouse
from ..services.cards import TEST_CARDS
from ..services.catalog import inventory_level_set
from .control import allowed

PAGE_SIZE = 20
# Benchmarks push a thousand pairs; the page shows the most recently changed stock.
LEVELS_SHOWN = 200


def index(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        raise PermissionDenied("The sandbox page is for staff.")
    recent_orders = Order.objects.prefetch_related(
        "items",
        Prefetch("charges__operations", queryset=ChargeOperation.objects.order_by("id")),
        Prefetch("fulfillment_orders", queryset=FulfillmentOrder.objects.prefetch_related("items", "shipments__items")),
        "refunds",
        "files",
        "returns__items__order_item",
    )[:PAGE_SIZE]
    context = {
        "orders": recent_orders,
        "fulfillment_orders": FulfillmentOrder.objects.prefetch_related(
            "items", "shipments__items__fulfillment_order_item"
        )[:PAGE_SIZE],
        "cancellations": FulfillmentCancellation.objects.filter(state="pending")
        .select_related("fulfillment_order")
        .prefetch_related("items__fulfillment_order_item"),
        "levels": InventoryLevel.objects.select_related("inventory_item").order_by("-updated_time", "-id")[
            :LEVELS_SHOWN
        ],
        "levels_total": InventoryLevel.objects.count(),
        "skus": Sku.objects.all()[:100],
        "events": Event.objects.all()[:30],
        "attempts": DeliveryAttempt.objects.select_related("event")[:30],
        "network": control_service.control_state(),
        "states": orders.PLACEABLE_STATES,
        "cards": [(number, label) for number, (_, label) in TEST_CARDS.items()],
        "open_returns": FulfillmentReturn.objects.filter(state__in=returns.OPEN_STATES)
        .select_related("fulfillment_order")
        .prefetch_related("items__fulfillment_order_item"),
        "open_refunds": Refund.objects.filter(state__in=("pending", "pending_information")).select_related("order"),
        "disputable": disputes.DISPUTABLE,
    }
    return render(request, "sandbox/index.html", context)


def _int(post: Mapping[str, str], name: str, default: int | None = None, minimum: int = 0) -> int:
    raw = (post.get(name) or "").strip()
    if not raw and default is not None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


def _float(post: Mapping[str, str], name: str) -> float:
    try:
        return float(post.get(name) or 0)
    except ValueError:
        raise ValueError(f"{name} must be a number") from None


def place_order(post: Mapping[str, str]) -> str:
    order = orders.order_place(
        lines=orders.parse_lines(post.get("lines", "")),
        state=post.get("state") or "accepted",
        email=post.get("email") or "customer@example.com",
        upstream_id=post.get("upstream_id", ""),
        card=post.get("card") or "",
    )
    return f"Order {order.dr_id} placed ({order.state})."


def release(post: Mapping[str, str]) -> str:
    return f"Order {orders.order_release(order_id=post['order_id']).dr_id} accepted."


def review(post: Mapping[str, str]) -> str:
    return f"Order {orders.order_review(order_id=post['order_id']).dr_id} is in review."


def block(post: Mapping[str, str]) -> str:
    return f"Order {orders.order_block(order_id=post['order_id']).dr_id} blocked."


def ship(post: Mapping[str, str]) -> str:
    shipment = warehouse.warehouse_ship(
        fulfillment_order_id=post["fulfillment_order_id"],
        items=[(post["item_id"], _int(post, "quantity", minimum=1))],
        tracking_company=post.get("tracking_company") or "UPS",
        tracking_number=post.get("tracking_number", "").strip(),
    )
    return f"Shipped with {shipment.tracking_company} {shipment.tracking_number}."


def backorder(post: Mapping[str, str]) -> str:
    days = _int(post, "days", default=14)
    warehouse.warehouse_backorder(
        fulfillment_order_id=post["fulfillment_order_id"],
        item_id=post["item_id"],
        quantity=_int(post, "quantity", minimum=1),
        available_time=timezone.now() + timedelta(days=days),
    )
    return f"Backordered for {days} days."


def restock(post: Mapping[str, str]) -> str:
    warehouse.warehouse_restock(fulfillment_order_id=post["fulfillment_order_id"], item_id=post["item_id"])
    return "Restocked."


def cancel(post: Mapping[str, str]) -> str:
    warehouse.warehouse_cancel(
        fulfillment_order_id=post["fulfillment_order_id"],
        items=[(post["item_id"], _int(post, "quantity", minimum=1))],
    )
    return "Cancelled by the fulfiller."


def accept_cancellation(post: Mapping[str, str]) -> str:
    accepted = {
        key.removeprefix("accept_"): _int(post, key)
        for key in post
        if key.startswith("accept_") and (post.get(key) or "").strip()
    }
    cancellation = warehouse.cancellation_accept(cancellation_id=post["cancellation_id"], accepted=accepted or None)
    return f"Cancellation request {cancellation.state}."


def reject_cancellation(post: Mapping[str, str]) -> str:
    warehouse.cancellation_reject(cancellation_id=post["cancellation_id"])
    return "Cancellation request rejected."


def set_stock(post: Mapping[str, str]) -> str:
    level = inventory_level_set(
        item_id=post["inventory_item_id"],
        location_id=post.get("location_id") or "sandbox-warehouse-1",
        available_quantity=_int(post, "available_quantity"),
    )
    return f"{level} now has {level.available_quantity}."


def fail_next_capture(post: Mapping[str, str]) -> str:
    state = control_service.control_state()
    control_service.control_update({"fail_next_captures": state["fail_next_captures"] + 1})
    return "The next capture will fail."


def network(post: Mapping[str, str]) -> str:
    if post.get("reset"):
        control_service.control_update({"reset": True})
        return "The network is healthy again."
    values: dict[str, Any] = {key: _float(post, key) for key in control_service.RATES}

    values.update({key: _int(post, key, default=0) for key in control_service.COUNTS})
    values["backoff_seconds"] = _float(post, "backoff_seconds")
    if (post.get("refund_delay_seconds") or "").strip():
        values["refund_delay_seconds"] = _float(post, "refund_delay_seconds")
    values["reorder"] = bool(post.get("reorder"))
    if (post.get("rule_path") or "").strip():
        values["next_calls"] = {
            "path": post["rule_path"].strip(),
            "status": _int(post, "rule_status", minimum=400),
            "count": _int(post, "rule_count", default=1, minimum=1),
            "regex": bool(post.get("rule_regex")),
            "method": post.get("rule_method", ""),
        }
    control_service.control_update(values)
    return "Network settings saved."


def approve_return(post: Mapping[str, str]) -> str:
    returns.fulfillment_return_approve(return_id=post["return_id"])
    return "Fulfillment return approved (pending): the customer can send the parcel."


def receive_return(post: Mapping[str, str]) -> str:
    accepted = {
        key.removeprefix("accept_"): _int(post, key)
        for key in post
        if key.startswith("accept_") and (post.get(key) or "").strip()
    }
    found = returns.fulfillment_return_receive(return_id=post["return_id"], accepted=accepted or None)
    return f"Fulfillment return received: {found.state}."


def reject_return(post: Mapping[str, str]) -> str:
    returns.fulfillment_return_reject(return_id=post["return_id"])
    return "Fulfillment return rejected."


def refused_parcel(post: Mapping[str, str]) -> str:
    found = returns.warehouse_return(
        fulfillment_order_id=post["fulfillment_order_id"],
        items=[(post["item_id"], _int(post, "quantity", minimum=1))],
    )
    return f"Warehouse return {found.dr_id} accepted."


def complete_refund(post: Mapping[str, str]) -> str:
    refunds.refund_complete(refund_id=post["refund_id"])
    return "Refund succeeded."


def fail_refund(post: Mapping[str, str]) -> str:
    refunds.refund_fail(refund_id=post["refund_id"], reason=post.get("reason", "").strip())
    return "Refund failed."


def open_dispute(post: Mapping[str, str]) -> str:
    return f"Order {disputes.dispute_open(order_id=post['order_id']).dr_id} is in dispute."


def resolve_dispute(post: Mapping[str, str]) -> str:
    order = disputes.dispute_resolve(order_id=post["order_id"])
    return f"Dispute on {order.dr_id} resolved: back to {order.state}."


def record_chargeback(post: Mapping[str, str]) -> str:
    raw = (post.get("amount") or "").strip()
    try:
        amount = Decimal(raw) if raw else None
    except InvalidOperation:
        raise ValueError("amount must be a number") from None
    order = disputes.chargeback(order_id=post["order_id"], amount=amount)
    return f"Chargeback recorded on {order.dr_id}."


ACTIONS = {
    "place-order": place_order,
    "release": release,
    "review": review,
    "block": block,
    "ship": ship,
    "backorder": backorder,
    "restock": restock,
    "cancel": cancel,
    "accept-cancellation": accept_cancellation,
    "reject-cancellation": reject_cancellation,
    "stock": set_stock,
    "fail-next-capture": fail_next_capture,
    "approve-return": approve_return,
    "receive-return": receive_return,
    "reject-return": reject_return,
    "refused-parcel": refused_parcel,
    "complete-refund": complete_refund,
    "fail-refund": fail_refund,
    "open-dispute": open_dispute,
    "resolve-dispute": resolve_dispute,
    "chargeback": record_chargeback,
    "network": network,
}


@require_POST
def action(request: HttpRequest, action: str) -> HttpResponse:
    if not allowed(request):
        raise PermissionDenied("The sandbox page is for staff.")
    handler = ACTIONS.get(action)
    if handler is None:
        messages.error(request, f"Unknown action {action!r}.")
        return redirect("sandbox:index")
    try:
        messages.success(request, handler(request.POST))
    except (ValueError, KeyError, ApiError) as exc:
        # OrderError, WarehouseError, ReturnError, RefundError and ControlError are ValueErrors.
        messages.error(request, f"{action}: {exc}")
    return redirect("sandbox:index")

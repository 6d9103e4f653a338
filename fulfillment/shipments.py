"""Shipments: what the warehouse shipped (DR's `fulfillment_order.shipped`), what DR recorded for
orchestrated lines (`fulfillment.created`), and what customer service records for third-party and
digital lines; each causes the capture of the shipped units' payment where we capture it.

Recording a shipment is a plan, shown to the agent, then its execution: ``shipment_plan`` says what
would be recorded and captured (or why not) without writing; ``shipment_execute`` does it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from django.db import transaction

from catalog.models import Sku
from commerce.models import Order, OrderLine, order_subject, quantities_by_item, units_of
from commerce.services import dr_time, lock_order, order_locked
from core.db import get_or_create_under_lock
from core.plans import plan_fingerprint
from core.types import JSONObject
from digitalriver.registry import UnusableEvent
from digitalriver.services.outbox import instruction_enqueue

from . import notifications
from .cancellations import units_released
from .kinds import POST_FULFILLMENT
from .ledger import ledger_recount
from .models import DrFulfillment, FulfillmentOrder, FulfillmentOrderLine, Shipment, ShipmentItem
from .services import (
    DISTRIBUTED,
    ORCHESTRATED,
    line_units_settle,
    managed_lines_follow_drs_fulfillments,
    order_lines_sum_counters,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

SELF_FULFILLED = (Sku.FulfillmentModel.THIRD_PARTY, Sku.FulfillmentModel.DIGITAL)
# How long the tracking an agent records may be (the form and the API refuse longer); what DR
# sends is stored whatever its length.
TRACKING_LIMITS = {"tracking_company": 100, "tracking_number": 100, "tracking_url": 500}


class ShipmentRefused(Exception):
    """The rules forbid recording this shipment; the message says why, with the counts."""


class Tracking(TypedDict):
    """A shipment's tracking, as the keyword arguments of ShipmentPlan and Shipment take it."""

    tracking_company: str
    tracking_number: str
    tracking_url: str


# --- what DR reports -----------------------------------------------------------------------------


def warehouse_shipment_mirror(*, data: JSONObject) -> Shipment:
    """fulfillment_order.shipped (a Shipment): record it and capture the shipped units' payment.

    A shipment that names no unit of the order (no items, quantity 0, items the order does not have)
    is refused whole: nothing is recorded or captured, and the event is kept as failed with why.
    """
    with order_locked(dr_order_id=str(data["fulfillmentOrderUpstreamId"])) as order:
        existing = Shipment.objects.filter(dr_shipment_id=str(data["id"])).order_by()[:1]
        if existing:
            return existing[0]
        lines = list(order.lines.order_by())  # in any order: each is found by its DR item id
        shipped = _shipped_units(lines, data)
        if not shipped:
            raise UnusableEvent(
                f"shipment {data['id']} names no shipped unit of order {order.dr_order_id} "
                f"(items: {json.dumps(data.get('items'))[:500]})"
            )
        fulfillment_order_lines = _fulfillment_order_lines_of(order)
        shipment = Shipment.objects.create(
            order=order,
            fulfillment_order=_fulfillment_order_named(data, fulfillment_order_lines.values()),
            dr_shipment_id=str(data["id"]),
            source=Shipment.Source.DR,
            tracking_company=data.get("trackingCompany") or "",
            tracking_number=data.get("trackingNumber") or "",
            tracking_url=data.get("trackingUrl") or "",
            shipped_at=dr_time(data.get("createdTime")) or order.updated_at,
            raw=data,
        )
        captures = []
        items = ShipmentItem.objects.bulk_create(
            ShipmentItem(
                shipment=shipment, order_line=line, dr_shipment_item_id=str(item.get("id") or ""), quantity=quantity
            )
            for item, line, quantity in shipped
        )
        for item, line, quantity in shipped:
            line.shipped = min(line.quantity, line.shipped + quantity)  # written with the sums below
            shipped_from = fulfillment_order_lines.get(str(item.get("fulfillmentOrderItemId") or ""))
            if shipped_from is not None:
                _ship_from_fulfillment_order_line(shipped_from, quantity, shipment)
            if line.fulfillment_model == DISTRIBUTED:
                captures.append({"itemId": line.dr_item_id, "quantity": quantity, "shipmentItemId": str(item["id"])})
        order_lines_sum_counters(
            order,
            lines=lines,
            unsaved={line.pk: ["shipped"] for _, line, _ in shipped},
            fulfillment_order_lines=fulfillment_order_lines.values(),
        )
        notifications.notify_shipped(shipment=shipment, items=items)
        if captures:
            instruction_enqueue(
                kind=POST_FULFILLMENT,
                subject=order_subject(order.dr_order_id),
                payload=_capture_body(order, shipment, captures),
            )
    return shipment


def _shipped_units(order_lines: list[OrderLine], data: JSONObject) -> list[tuple[JSONObject, OrderLine, int]]:
    """(DR's item, our order line, units) for each item of the shipment that names a line of the
    order and at least one unit."""
    lines = {line.dr_item_id: line for line in order_lines}
    shipped = []
    for item in data.get("items") or []:
        line = lines.get(str(item.get("fulfillmentOrderItemUpstreamId")))
        try:
            quantity = int(item.get("quantity") or 0)
        except (TypeError, ValueError):
            quantity = 0
        if line is not None and quantity > 0:
            shipped.append((item, line, quantity))
    return shipped


def _fulfillment_order_lines_of(order: Order) -> dict[str, FulfillmentOrderLine]:
    """The order's fulfillment-order lines by DR item id, read with their lock and their fulfillment
    order in one query (lines of one fulfillment order share one instance of it): those a shipment
    ships from, and all that the order lines' sums count."""
    lines = list(
        FulfillmentOrderLine.objects.select_for_update(of=("self",))
        .select_related("fulfillment_order")
        .filter(fulfillment_order__order=order)
        .order_by()
    )
    fulfillment_orders: dict[int, FulfillmentOrder] = {}
    for line in lines:
        line.fulfillment_order = fulfillment_orders.setdefault(line.fulfillment_order_id, line.fulfillment_order)
    return {line.dr_item_id: line for line in lines}


def _fulfillment_order_named(data: JSONObject, lines: Iterable[FulfillmentOrderLine]) -> FulfillmentOrder | None:
    """The shipment's fulfillment order (``fulfillmentOrderId``), found among those of the lines it
    shipped from, or read."""
    dr_id = str(data.get("fulfillmentOrderId") or "")
    for line in lines:
        if line.fulfillment_order.dr_fulfillment_order_id == dr_id:
            return line.fulfillment_order
    return FulfillmentOrder.objects.filter(dr_fulfillment_order_id=dr_id).first() if dr_id else None


def _ship_from_fulfillment_order_line(line: FulfillmentOrderLine, quantity: int, shipment: Shipment) -> None:
    """Shipped units leave the line's pending (then backordered) count. DR sends no new snapshot of
    the fulfillment order when it ships, and an older one arriving late must not put them back.
    ``line`` is read with its lock and its fulfillment order."""
    from_pending = min(line.pending, quantity)
    line.pending -= from_pending
    line.backordered -= min(line.backordered, quantity - from_pending)
    line.shipped = min(line.quantity, line.shipped + quantity)
    line.save(update_fields=["pending", "backordered", "shipped"])
    fulfillment_order = line.fulfillment_order
    if fulfillment_order.dr_updated_at is None or fulfillment_order.dr_updated_at < shipment.shipped_at:
        fulfillment_order.dr_updated_at = shipment.shipped_at
        fulfillment_order.save(update_fields=["dr_updated_at"])


def _capture_body(order: Order, shipment: Shipment, items: list[JSONObject]) -> JSONObject:
    body = {
        "orderId": order.dr_order_id,
        "shipmentId": shipment.dr_shipment_id,
        "trackingCompany": shipment.tracking_company,
        "trackingNumber": shipment.tracking_number,
        "trackingUrl": shipment.tracking_url,
        "items": items,
    }
    return {key: value for key, value in body.items() if value not in (None, "")}


def dr_fulfillment_mirror(*, data: JSONObject) -> DrFulfillment:
    """fulfillment.created: keep DR's record; for orchestrated lines it is the capture and the tracking."""
    with order_locked(dr_order_id=str(data["orderId"])) as order:
        record, created = get_or_create_under_lock(
            DrFulfillment.objects.all(),
            dr_fulfillment_id=str(data["id"]),
            defaults={
                "order": order,
                "dr_shipment_id": str(data.get("shipmentId") or ""),
                "tracking_company": data.get("trackingCompany") or "",
                "tracking_number": data.get("trackingNumber") or "",
                "tracking_url": data.get("trackingUrl") or "",
                "items": data.get("items") or [],
                "dr_created_at": dr_time(data.get("createdTime")),
                "raw": {key: value for key, value in data.items() if key != "orderDetails"},
            },
        )
        if created:
            _apply_drs_own_fulfillment(order, record)
        ledger_recount(order=order)
    return record


def _apply_drs_own_fulfillment(order: Order, record: DrFulfillment) -> None:
    lines = {line.dr_item_id: line for line in order.lines.select_for_update().filter(fulfillment_model=ORCHESTRATED)}
    shipped, cancelled = [], []
    for item in record.items:
        line = lines.get(str(item.get("itemId")))
        if line is None:
            continue
        captured, released = line_units_settle(
            line, int(item.get("quantity") or 0), int(item.get("cancelQuantity") or 0)
        )
        if released:
            units_released(order_line=line, quantity=released)
            cancelled.append((line, released))
        if captured:
            shipped.append((line, captured))
    if cancelled:
        notifications.notify_cancelled(order=order, released=cancelled, source=f"dr:{record.dr_fulfillment_id}")
    shipment_id = record.dr_shipment_id or record.dr_fulfillment_id
    if shipped and not Shipment.objects.filter(dr_shipment_id=shipment_id).exists():
        shipment = Shipment.objects.create(
            order=order,
            dr_shipment_id=shipment_id,
            source=Shipment.Source.DR_FULFILLMENT,
            tracking_company=record.tracking_company,
            tracking_number=record.tracking_number,
            tracking_url=record.tracking_url,
            shipped_at=record.dr_created_at or order.updated_at,
            raw=record.raw,
        )
        for line, quantity in shipped:
            ShipmentItem.objects.create(shipment=shipment, order_line=line, quantity=quantity)
            line.shipped = min(line.quantity, line.shipped + quantity)
            line.save(update_fields=["shipped"])
        managed_lines_follow_drs_fulfillments(order)
        order_lines_sum_counters(order)
        notifications.notify_shipped(shipment=shipment)


# --- shipments customer service records (third-party and digital lines) ---------------------------


def shippable_units(*, order: Order, line: OrderLine) -> tuple[int, str]:
    """How many units of a line can be recorded as shipped now, and if none, why."""
    if line.fulfillment_model not in SELF_FULFILLED:
        return 0, f"it is fulfilled through DR ({line.fulfillment_model or 'unknown model'})"
    if order.state != Order.State.ACCEPTED:
        return 0, f"the order is {order.get_state_display().lower()}, not accepted"
    most = max(line.quantity - line.shipped - line.cancelled - line.cancel_requested, 0)
    return most, "" if most else "nothing is left to ship"


@dataclass(frozen=True)
class ShipmentStep:
    line: OrderLine
    quantity: int
    what: str
    dr_call: str
    money: Decimal = Decimal(0)  # what DR captures for these units, tax included
    effect: str = ""  # "Capture 21.59 USD for 1 x Desk lamp; the customer is emailed that it shipped"


@dataclass(frozen=True)
class ShipmentPlan:
    """What recording a shipment would do now, or why it cannot: computed without writing."""

    order: Order
    tracking_company: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    steps: list[ShipmentStep] = field(default_factory=list)
    refusal: str = ""

    @property
    def money(self) -> Decimal:
        """What DR captures for the whole shipment, tax included."""
        return sum((step.money for step in self.steps), Decimal(0))

    @property
    def fingerprint(self) -> str:
        """Names what would be recorded, so a confirmation page can tell whether it still holds."""
        units = sorted((step.line.dr_item_id, step.quantity) for step in self.steps)
        return plan_fingerprint([units, self.tracking_company, self.tracking_number, self.tracking_url])


def shipment_plan(
    *,
    order: Order,
    items: list[tuple[str, int]],
    tracking_company: str = "",
    tracking_number: str = "",
    tracking_url: str = "",
) -> ShipmentPlan:
    """Which units would be recorded as shipped and captured, or the refusal with counts and names."""
    tracking: Tracking = {
        "tracking_company": tracking_company,
        "tracking_number": tracking_number,
        "tracking_url": tracking_url,
    }
    if not items:
        return ShipmentPlan(order=order, refusal="say which items shipped", **tracking)
    if order.dispute_lock:
        return ShipmentPlan(order=order, refusal=order.dispute_lock, **tracking)
    lines = {line.dr_item_id: line for line in order.lines.all()}
    steps, refusals = [], []
    try:
        totals = quantities_by_item(items, error=ShipmentRefused)
    except ShipmentRefused as exc:
        return ShipmentPlan(order=order, refusal=str(exc), **tracking)
    if order.state != Order.State.ACCEPTED:
        refusal = f"order {order.dr_order_id} is {order.get_state_display().lower()}, not accepted"
        return ShipmentPlan(order=order, refusal=refusal, **tracking)
    for item_id, quantity in totals.items():
        line = lines.get(str(item_id))
        if line is None:
            return ShipmentPlan(
                order=order, refusal=f"item {item_id} is not a line of order {order.dr_order_id}", **tracking
            )
        if line.fulfillment_model not in SELF_FULFILLED:
            refusals.append(f"{line.label} is fulfilled through DR ({line.fulfillment_model or 'unknown model'})")
            continue
        most, _ = shippable_units(order=order, line=line)
        if quantity > most:
            refusals.append(f"{line.label}: asked to ship {quantity}, {most} can ship")
            continue
        steps.append(_shipment_step(line, quantity, tracking_company, tracking_number))
    if refusals:
        refusal = "Cannot record this shipment: " + "; ".join(refusals) + "."
        return ShipmentPlan(order=order, refusal=refusal, **tracking)
    return ShipmentPlan(order=order, steps=steps, **tracking)


def _shipment_step(line: OrderLine, quantity: int, tracking_company: str, tracking_number: str) -> ShipmentStep:
    tracked = (
        f"tracked as {tracking_company or 'the carrier'} {tracking_number}" if tracking_number else "without tracking"
    )
    money = line.price_of(quantity)
    it = "it" if quantity == 1 else "they"
    return ShipmentStep(
        line,
        quantity,
        f"Record that {units_of(quantity, line.label)} shipped, {tracked}",
        f"POST /fulfillments with quantity {quantity}: DR captures the payment of these units; "
        "the customer is emailed that they shipped.",
        money,
        f"Capture {money} {line.order.currency} for {quantity} \N{MULTIPLICATION SIGN} {line.label}; "
        f"the customer is emailed that {it} shipped",
    )


def shipment_execute(*, plan: ShipmentPlan, by: User | None = None) -> Shipment:
    """Record the planned shipment and queue the capture of its units, or raise ShipmentRefused.

    The plan is made again under the order's lock, so units shipped or cancelled since it was shown
    are never recorded twice.
    """
    if plan.refusal:
        raise ShipmentRefused(plan.refusal)
    tracking: Tracking = {
        "tracking_company": plan.tracking_company,
        "tracking_number": plan.tracking_number,
        "tracking_url": plan.tracking_url,
    }
    with transaction.atomic():
        order = lock_order(order=plan.order)
        now = shipment_plan(
            order=order, items=[(step.line.dr_item_id, step.quantity) for step in plan.steps], **tracking
        )
        if now.refusal:
            raise ShipmentRefused(now.refusal)
        shipment = Shipment.objects.create(order=order, source=Shipment.Source.RECORDED, recorded_by=by, **tracking)
        lines = {line.pk: line for line in order.lines.filter(pk__in=[step.line.pk for step in now.steps])}
        for step in now.steps:
            line = lines[step.line.pk]
            ShipmentItem.objects.create(shipment=shipment, order_line=line, quantity=step.quantity)
            line.shipped += step.quantity
            line.save(update_fields=["shipped"])
        notifications.notify_shipped(shipment=shipment)
        instruction_enqueue(
            kind=POST_FULFILLMENT,
            subject=order_subject(order.dr_order_id),
            payload=_capture_body(
                order, shipment, [{"itemId": step.line.dr_item_id, "quantity": step.quantity} for step in now.steps]
            ),
        )
    return shipment


def shipment_record(
    *,
    order: Order,
    items: list[tuple[str, int]],
    tracking_company: str = "",
    tracking_number: str = "",
    tracking_url: str = "",
    by: User | None = None,
) -> Shipment:
    """Our logistics partner shipped (or a download was delivered): record it and capture the payment."""
    plan = shipment_plan(
        order=order,
        items=items,
        tracking_company=tracking_company,
        tracking_number=tracking_number,
        tracking_url=tracking_url,
    )
    return shipment_execute(plan=plan, by=by)

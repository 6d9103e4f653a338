"""Reads behind `/api/orders/…`: each returns everything its serializer touches in a fixed number of
queries, however many lines, shipments or charges an order has."""

from __future__ import annotations

from django.db.models import F, Prefetch, QuerySet

from commerce.models import Charge, Order

from .models import FulfillmentOrder, FulfillmentOrderLine, Shipment, ShipmentItem


def orders_list(
    *, state: str | None = None, upstream_id: str | None = None, email: str | None = None
) -> QuerySet[Order]:
    """Orders newest first (by DR's creation time; an order not yet fetched in full comes last)."""
    orders = Order.objects.order_by(F("dr_created_at").desc(nulls_last=True), "-id")
    if state:
        orders = orders.filter(state=state)
    if upstream_id:
        orders = orders.filter(upstream_id=upstream_id)
    if email:
        # Addresses are matched the way mail servers treat them in practice: case does not matter.
        orders = orders.filter(email__iexact=email)
    return orders


def order_detail_get(*, dr_order_id: str) -> Order | None:
    """One order with its lines, fulfillment orders, shipments and charges, or None."""
    return (
        Order.objects.filter(dr_order_id=dr_order_id)
        .prefetch_related(
            "lines",
            Prefetch(
                "fulfillment_orders",
                queryset=FulfillmentOrder.objects.prefetch_related(
                    Prefetch("lines", queryset=FulfillmentOrderLine.objects.select_related("order_line"))
                ),
            ),
            Prefetch(
                "shipments",
                queryset=Shipment.objects.select_related("fulfillment_order").prefetch_related(
                    Prefetch("items", queryset=ShipmentItem.objects.select_related("order_line").order_by("id"))
                ),
            ),
            Prefetch("charges", queryset=Charge.objects.prefetch_related("operations")),
        )
        .first()
    )

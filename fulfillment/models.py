"""Fulfillment orders, shipments and DR's fulfillment records, with the counters DR reports.

DR's fulfillment-order counters are running totals; what we send is always the difference between
such a total and what we already instructed, so a repeated or late event sends nothing twice.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from commerce.models import Order, OrderLine


class FulfillmentOrder(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fulfillment_orders")
    dr_fulfillment_order_id = models.CharField("DR fulfillment order id", max_length=64, unique=True)
    state = models.CharField(max_length=20, blank=True)
    created_by_us = models.BooleanField(
        default=False, help_text="Distributed model: we created it. Orchestrated: DR did."
    )
    dr_updated_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self):
        return f"Fulfillment order {self.dr_fulfillment_order_id}"


class FulfillmentOrderLine(models.Model):
    fulfillment_order = models.ForeignKey(FulfillmentOrder, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="fulfillment_order_lines")
    dr_item_id = models.CharField("DR fulfillment order item id", max_length=64, unique=True)
    inventory_item_id = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField()
    pending = models.PositiveIntegerField(default=0)
    backordered = models.PositiveIntegerField(default=0)
    shipped = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    returned = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=20, blank=True)
    available_time = models.DateTimeField(null=True, blank=True, help_text="When backordered units are expected.")
    cancel_instructed = models.PositiveIntegerField(
        default=0, help_text="Cancelled units whose payment we already asked DR to release."
    )

    class Meta:
        ordering = ["fulfillment_order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cancel_instructed__lte=models.F("cancelled")), name="fo_line_cancel_instructed_le_cancelled"
            )
        ]

    def __str__(self):
        return f"{self.inventory_item_id} x {self.quantity}"


class Shipment(models.Model):
    class Source(models.TextChoices):
        DR = "dr", "Reported by DR (fulfillment_order.shipped)"
        RECORDED = "recorded", "Recorded by us (third party or digital)"
        DR_FULFILLMENT = "dr_fulfillment", "DR's fulfillment (orchestrated)"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    fulfillment_order = models.ForeignKey(
        FulfillmentOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="shipments"
    )
    dr_shipment_id = models.CharField("DR shipment id", max_length=100, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.DR)
    tracking_company = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    shipped_at = models.DateTimeField(default=timezone.now)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["order", "shipped_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dr_shipment_id"], condition=~Q(dr_shipment_id=""), name="shipment_unique_dr_id"
            )
        ]

    def __str__(self):
        return f"Shipment {self.dr_shipment_id or self.pk}"


class ShipmentItem(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="shipment_items")
    dr_shipment_item_id = models.CharField(max_length=100, blank=True)
    quantity = models.PositiveIntegerField()

    def __str__(self):
        return f"{self.order_line.dr_sku_id} x {self.quantity}"


class DrFulfillment(models.Model):
    """A fulfillment DR recorded (fulfillment.created): ours after POST /fulfillments, or DR's own
    capture or cancellation of orchestrated lines, which is where their tracking comes from."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="dr_fulfillments")
    dr_fulfillment_id = models.CharField("DR fulfillment id", max_length=100, unique=True)
    dr_shipment_id = models.CharField(max_length=100, blank=True)
    tracking_company = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    items = models.JSONField(default=list, blank=True)
    dr_created_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["order", "dr_created_at", "id"]

    def __str__(self):
        return self.dr_fulfillment_id

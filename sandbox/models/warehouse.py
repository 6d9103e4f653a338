from django.db import models
from django.utils import timezone

from ..timefmt import dr_time


class FulfillmentOrder(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        SHIPPED = "shipped"
        CANCELLED = "cancelled"

    dr_id = models.CharField(max_length=32, unique=True)
    upstream_id = models.CharField(max_length=100, db_index=True)
    order = models.ForeignKey(
        "sandbox.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="fulfillment_orders"
    )
    managed = models.BooleanField(
        default=False, help_text="Created by the sandbox for orchestrated lines; DR captures for it."
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    data = models.JSONField(default=dict, help_text="The request's other fields (shipTo, currency, ...).")
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    def refresh_state(self) -> None:
        items = list(self.items.all())
        if all(item.cancelled == item.quantity for item in items):
            self.state = self.State.CANCELLED
        elif all(item.pending + item.backordered == 0 for item in items):
            self.state = self.State.SHIPPED
        else:
            self.state = self.State.PENDING
        self.updated_time = timezone.now()

    def as_dr(self) -> dict:
        # No updatedTime: the spec's GlobalFulfillmentOrder has none (a client orders snapshots by
        # the event's createdTime).
        return {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "upstreamId": self.upstream_id,
            **self.data,
            "state": self.state,
            "items": [item.as_dr() for item in self.items.all()],
            "liveMode": False,
        }


class FulfillmentOrderItem(models.Model):
    fulfillment_order = models.ForeignKey(FulfillmentOrder, on_delete=models.CASCADE, related_name="items")
    dr_id = models.CharField(max_length=32, unique=True)
    upstream_id = models.CharField(max_length=100, blank=True)
    inventory_item_id = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField()
    pending = models.PositiveIntegerField(default=0)
    backordered = models.PositiveIntegerField(default=0)
    shipped = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    returned = models.PositiveIntegerField(default=0)
    available_time = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, help_text="Other request fields (total, tax, metadata).")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    quantity=models.F("pending")
                    + models.F("backordered")
                    + models.F("shipped")
                    + models.F("cancelled")
                    + models.F("returned")
                ),
                name="sandbox_fo_item_counters_sum",
            )
        ]

    def __str__(self) -> str:
        return self.dr_id

    @property
    def open_quantity(self) -> int:
        return self.pending + self.backordered

    @property
    def state(self) -> str:
        if self.pending:
            return "pending"
        if self.backordered:
            return "backordered"
        if self.shipped:
            return "shipped"
        if self.returned:
            return "returned"
        return "cancelled"

    def as_dr(self) -> dict:
        body = {
            "id": self.dr_id,
            "upstreamId": self.upstream_id,
            "inventoryItemId": self.inventory_item_id,
            **self.data,
            "quantity": self.quantity,
            "pending": self.pending,
            "backordered": self.backordered,
            "shipped": self.shipped,
            "cancelled": self.cancelled,
            "returned": self.returned,
            "state": self.state,
        }
        if self.backordered:
            body["availableTime"] = dr_time(self.available_time)
        return body


class Shipment(models.Model):
    dr_id = models.CharField(max_length=64, unique=True)
    fulfillment_order = models.ForeignKey(FulfillmentOrder, on_delete=models.CASCADE, related_name="shipments")
    tracking_company = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    tracking_url = models.CharField(max_length=500, blank=True)
    created_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self) -> dict:
        return {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "fulfillmentOrderId": self.fulfillment_order.dr_id,
            "fulfillmentOrderUpstreamId": self.fulfillment_order.upstream_id,
            "trackingCompany": self.tracking_company,
            "trackingNumber": self.tracking_number,
            "trackingUrl": self.tracking_url,
            "items": [item.as_dr() for item in self.items.select_related("fulfillment_order_item")],
            "liveMode": False,
        }


class ShipmentItem(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items")
    dr_id = models.CharField(max_length=64, unique=True)
    fulfillment_order_item = models.ForeignKey(FulfillmentOrderItem, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self) -> dict:
        line = self.fulfillment_order_item
        return {
            "id": self.dr_id,
            "fulfillmentOrderItemId": line.dr_id,
            "fulfillmentOrderItemUpstreamId": line.upstream_id,
            "inventoryItemId": line.inventory_item_id,
            "quantity": self.quantity,
        }


class FulfillmentCancellation(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    dr_id = models.CharField(max_length=64, unique=True)
    fulfillment_order = models.ForeignKey(FulfillmentOrder, on_delete=models.CASCADE, related_name="cancellations")
    upstream_id = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self) -> dict:
        return {
            # No updatedTime: the spec's GlobalFulfillmentCancellationResponse has none.
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "fulfillmentOrderId": self.fulfillment_order.dr_id,
            "upstreamId": self.upstream_id,
            "reason": self.reason,
            "state": self.state,
            "items": [item.as_dr() for item in self.items.select_related("fulfillment_order_item")],
            # DR spells this one key in lower case on this resource only.
            "livemode": False,
        }


class CancellationItem(models.Model):
    cancellation = models.ForeignKey(FulfillmentCancellation, on_delete=models.CASCADE, related_name="items")
    fulfillment_order_item = models.ForeignKey(FulfillmentOrderItem, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField()
    quantity_accepted = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=20, default="pending")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.fulfillment_order_item.dr_id} x{self.quantity}"

    def as_dr(self) -> dict:
        line = self.fulfillment_order_item
        return {
            "fulfillmentOrderItemId": line.dr_id,
            "fulfillmentOrderItemUpstreamId": line.upstream_id,
            "quantity": self.quantity,
            "quantityAccepted": self.quantity_accepted,
            "state": self.state,
        }

"""Fulfillment orders, shipments and DR's fulfillment records, with the counters DR reports.

DR's fulfillment-order counters are running totals; what we send is always the difference between
such a total and what we already instructed, so a repeated or late event sends nothing twice.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition
from django_fsm_log.decorators import fsm_log_description

from commerce.models import Order, OrderLine
from core.models import StoredEmail

# A tracking URL is shown as a link only when it is a web address: a carrier's "javascript:" would
# run in the agent's browser with the admin's cookies.
TRACKABLE_SCHEMES = ("https://", "http://")


class FulfillmentOrder(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fulfillment_orders")
    dr_fulfillment_order_id = models.CharField("DR fulfillment order id", max_length=None, unique=True)
    state = models.CharField(max_length=None, blank=True)
    created_by_us = models.BooleanField(
        default=False, help_text="Distributed model: we created it. Orchestrated: DR did."
    )
    dr_updated_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        # By the column: ordering by "order" would join the orders into every query.
        ordering = ["-order_id", "id"]

    def __str__(self) -> str:
        return f"Fulfillment order {self.dr_fulfillment_order_id}"


class FulfillmentOrderLine(models.Model):
    fulfillment_order = models.ForeignKey(FulfillmentOrder, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="fulfillment_order_lines")
    dr_item_id = models.CharField("DR fulfillment order item id", max_length=None, unique=True)
    inventory_item_id = models.CharField(max_length=None)
    quantity = models.PositiveIntegerField()
    pending = models.PositiveIntegerField(default=0)
    backordered = models.PositiveIntegerField(default=0)
    shipped = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    returned = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=None, blank=True)
    available_time = models.DateTimeField(null=True, blank=True, help_text="When backordered units are expected.")
    cancel_instructed = models.PositiveIntegerField(
        default=0, help_text="Cancelled units whose payment we already asked DR to release."
    )

    class Meta:
        # By the column: ordering by "fulfillment_order" would join two tables into every query.
        ordering = ["fulfillment_order_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(cancel_instructed__lte=models.F("cancelled")), name="fo_line_cancel_instructed_le_cancelled"
            )
        ]

    def __str__(self) -> str:
        return f"{self.inventory_item_id} x {self.quantity}"


class Shipment(models.Model):
    class Source(models.TextChoices):
        DR = "dr", "Shipped by our warehouse, reported by DR"
        RECORDED = "recorded", "Recorded by us (third party or digital)"
        DR_FULFILLMENT = "dr_fulfillment", "DR's fulfillment (orchestrated)"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    fulfillment_order = models.ForeignKey(
        FulfillmentOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="shipments"
    )
    dr_shipment_id = models.CharField("DR shipment id", max_length=None, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.DR)
    tracking_company = models.CharField(max_length=None, blank=True)
    tracking_number = models.CharField(max_length=None, blank=True)
    tracking_url = models.CharField(max_length=None, blank=True)
    shipped_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who recorded a third-party or digital shipment.",
    )
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        # By the column: ordering by "order" would join the orders into every query.
        ordering = ["-order_id", "shipped_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dr_shipment_id"], condition=~Q(dr_shipment_id=""), name="shipment_unique_dr_id"
            )
        ]

    def __str__(self) -> str:
        return f"Shipment {self.dr_shipment_id or self.pk}"


class ShipmentItem(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="items")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="shipment_items")
    dr_shipment_item_id = models.CharField(max_length=None, blank=True)
    quantity = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.order_line.dr_sku_id} x {self.quantity}"


class DrFulfillment(models.Model):
    """A fulfillment DR recorded (fulfillment.created): ours after POST /fulfillments, or DR's own
    capture or cancellation of orchestrated lines, which is where their tracking comes from."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="dr_fulfillments")
    dr_fulfillment_id = models.CharField("DR fulfillment id", max_length=None, unique=True)
    dr_shipment_id = models.CharField(max_length=None, blank=True)
    tracking_company = models.CharField(max_length=None, blank=True)
    tracking_number = models.CharField(max_length=None, blank=True)
    tracking_url = models.CharField(max_length=None, blank=True)
    items = models.JSONField(default=list, blank=True)
    dr_created_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        # By the column: ordering by "order" would join the orders into every query.
        ordering = ["-order_id", "dr_created_at", "id"]
        verbose_name = "DR fulfillment"

    def __str__(self) -> str:
        return self.dr_fulfillment_id


class CancellationRequest(FSMModelMixin, models.Model):
    """Customer service asked to cancel some units; followed until their payment is released."""

    class Route(models.TextChoices):
        FULFILLMENT_CANCELLATION = "fulfillment_cancellation", "Asked the warehouse (POST /fulfillment-cancellations)"
        FULFILLMENT = "fulfillment", "Released the payment directly (POST /fulfillments)"

    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"
        SUBMITTED = "submitted", "Waiting for the warehouse"
        ACCEPTED = "accepted", "Accepted"
        PARTIALLY_ACCEPTED = "partially_accepted", "Partly accepted"
        REJECTED = "rejected", "Rejected"
        RELEASED = "released", "Payment released"
        FAILED = "failed", "Failed at DR"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="cancellation_requests")
    fulfillment_order = models.ForeignKey(
        FulfillmentOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="cancellation_requests"
    )
    route = models.CharField(max_length=30, choices=Route.choices)
    state = FSMField(default=State.REQUESTED, choices=State.choices, protected=True, db_index=True)
    reason = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    instruction = models.ForeignKey(
        "digitalriver.Instruction", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dr_cancellation_id = models.CharField(max_length=None, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dr_cancellation_id"], condition=~Q(dr_cancellation_id=""), name="cancellation_unique_dr_id"
            )
        ]

    def __str__(self) -> str:
        return f"Cancellation of {self.order.dr_order_id} ({self.get_state_display()})"

    @fsm_log_description
    @transition(field=state, source=State.REQUESTED, target=State.SUBMITTED)
    def mark_submitted(self, *, dr_cancellation_id: str, description: str | None = None) -> None:
        self.dr_cancellation_id = dr_cancellation_id

    @fsm_log_description
    @transition(
        field=state,
        source=[State.REQUESTED, State.SUBMITTED],
        target=RETURN_VALUE(State.ACCEPTED, State.PARTIALLY_ACCEPTED, State.REJECTED),
    )
    def mark_answered(
        self, *, requested: int, accepted: int, dr_cancellation_id: str = "", description: str | None = None
    ) -> str:
        self.dr_cancellation_id = self.dr_cancellation_id or dr_cancellation_id
        if accepted == 0:
            return self.State.REJECTED
        return self.State.ACCEPTED if accepted >= requested else self.State.PARTIALLY_ACCEPTED

    @fsm_log_description
    @transition(
        field=state,
        source=[State.REQUESTED, State.ACCEPTED, State.PARTIALLY_ACCEPTED],
        target=State.RELEASED,
    )
    def mark_released(self, description: str | None = None) -> None:
        return None

    @fsm_log_description
    @transition(field=state, source=[State.REQUESTED, State.SUBMITTED], target=State.FAILED)
    def mark_failed(self, description: str | None = None) -> None:
        return None


class CancellationLine(models.Model):
    request = models.ForeignKey(CancellationRequest, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="cancellation_lines")
    fulfillment_order_line = models.ForeignKey(
        FulfillmentOrderLine, on_delete=models.SET_NULL, null=True, blank=True, related_name="cancellation_lines"
    )
    quantity = models.PositiveIntegerField()
    quantity_accepted = models.PositiveIntegerField(null=True, blank=True)
    quantity_released = models.PositiveIntegerField(default=0, help_text="Accepted units whose payment is released.")

    def __str__(self) -> str:
        return f"{self.order_line.dr_sku_id} x {self.quantity}"


class Return(FSMModelMixin, models.Model):
    """Goods coming back: a DR-coordinated return (``/fulfillment-returns``, one per fulfillment
    order; the warehouse receives it) or a third-party/digital one (``/returns``; we record receipt).
    A ``warehouse`` return is one nobody asked for, such as a parcel the customer refused."""

    class Api(models.TextChoices):
        FULFILLMENT_RETURNS = "fulfillment_returns", "Through DR's warehouse"
        RETURNS = "returns", "Through our own partner"

    class Type(models.TextChoices):
        CLIENT = "client", "Asked by the customer"
        WAREHOUSE = "warehouse", "Raised by the warehouse (refused or unclaimed parcel)"

    class State(models.TextChoices):
        REQUESTED = "requested", "Asked, not yet at DR"
        CREATED = "created", "Created at DR"
        PENDING = "pending", "Approved: waiting for the goods"
        ACCEPTED = "accepted", "Received"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Refused by DR"

    OPEN_STATES = (State.REQUESTED, State.CREATED, State.PENDING)
    # The order along which DR moves a return: an older event never moves it back.
    PROGRESS = (State.REQUESTED, State.CREATED, State.PENDING, State.ACCEPTED)

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="returns")
    fulfillment_order = models.ForeignKey(
        FulfillmentOrder, on_delete=models.SET_NULL, null=True, blank=True, related_name="returns"
    )
    api = models.CharField(max_length=30, choices=Api.choices)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.CLIENT)
    dr_return_id = models.CharField("DR return id", max_length=None, blank=True)
    state = FSMField(default=State.REQUESTED, choices=State.choices, protected=True, db_index=True)
    reason = models.CharField(max_length=None, blank=True)
    location = models.JSONField(default=dict, blank=True, help_text="Where the customer sends the goods.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    instruction = models.ForeignKey(
        "digitalriver.Instruction", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    failure_reason = models.TextField(blank=True)
    raw = models.JSONField("DR's return as last seen", default=dict, blank=True)
    dr_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["dr_return_id"], condition=~Q(dr_return_id=""), name="return_unique_dr_id")
        ]

    def __str__(self) -> str:
        return f"Return of {self.order.dr_order_id} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @fsm_log_description
    @transition(field=state, source="*", target=RETURN_VALUE(*State.values))
    def follow_dr(self, *, state: str, description: str | None = None) -> str:
        """DR moved the return; the service has already refused any move backwards."""
        return state

    @fsm_log_description
    @transition(field=state, source=State.REQUESTED, target=State.FAILED)
    def mark_failed(self, *, reason: str, description: str | None = None) -> None:
        self.failure_reason = reason


class ReturnLine(models.Model):
    """Units of one order line in a return, and how many came back."""

    return_request = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="return_lines")
    fulfillment_order_line = models.ForeignKey(
        FulfillmentOrderLine, on_delete=models.SET_NULL, null=True, blank=True, related_name="return_lines"
    )
    dr_item_id = models.CharField("DR return item id", max_length=None, blank=True)
    quantity = models.PositiveIntegerField()
    quantity_accepted = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=None, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity_accepted__lte=F("quantity")), name="return_line_accepted_le_quantity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_line.label} x {self.quantity}"


class Notification(StoredEmail):
    """An email the flow sent (or is sending): one per event, however often DR delivers the event."""

    class Kind(models.TextChoices):
        SHIPPED = "shipped", "Shipped, with tracking"
        BACKORDERED = "backordered", "Backordered, with the expected date"
        CANCELLED = "cancelled", "Cancelled"
        CAPTURE_FAILED = "capture_failed", "Capture failed (to operations)"
        RETURN_APPROVED = "return_approved", "Return approved, with the address"
        REFUND_COMPLETED = "refund_completed", "Refund completed"
        REFUND_NEEDS_BANK_DETAILS = "refund_needs_bank_details", "Refund needs bank details"
        DOCUMENT_LINK = "document_link", "A link to an invoice or credit memo"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    key = models.CharField(max_length=None, unique=True, help_text="What the email is about; sent once per key.")

    class Meta:
        ordering = ["order", "created_at", "id"]
        indexes = [models.Index(fields=["sent_at", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to}"

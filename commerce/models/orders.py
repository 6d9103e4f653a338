"""The local mirror of DR orders: DR's fields kept as DR sent them, and the per-line counters DR
does not keep (it has no fulfilled or cancelled quantity per item), which we keep ourselves."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import reduce
from operator import or_
from typing import Any

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import RETURN_VALUE, FSMField, FSMModelMixin, transition
from django_fsm_log.decorators import fsm_log_description

from catalog.models import Sku

MONEY: dict[str, Any] = {"max_digits": 14, "decimal_places": 2, "default": 0}


@dataclass(frozen=True)
class AttentionFlag:
    """A reason an order needs a person: the field that raises it, its name, and how loud it is."""

    field: str
    label: str
    severity: str  # "error": money did not move as asked; "warning": someone should read it
    meaning: str
    what_to_do: str = ""


# The one list of order flags: the page, the lists, the API, the filters and the dashboard read it.
ATTENTION_FLAGS = (
    AttentionFlag(
        "capture_failed",
        "Capture failed",
        "error",
        "DR could not capture a payment for shipped goods.",
        "DR retries a failed capture for up to 30 days. Stop the shipment if it has not left, and contact"
        " the customer about their payment method.",
    ),
    AttentionFlag(
        "authorization_lapsed",
        "Payment authorization lapsed",
        "error",
        "DR could not authorize the payment again (a long backorder outlived the authorization).",
        "Cancel what is still open and contact the customer: they must order again for those units.",
    ),
    AttentionFlag(
        "cancellation_rejected",
        "Cancellation rejected",
        "error",
        "The fulfiller refused a cancellation, or DR had already captured the units.",
        "The goods will ship: tell the customer, and offer a return once they arrive.",
    ),
    AttentionFlag(
        "refund_failed",
        "Refund failed",
        "error",
        "DR could not pay a refund back.",
        "Read the reason, then retry the refund or contact the customer for another way to pay it.",
    ),
    AttentionFlag(
        "dispute_open",
        "Dispute open",
        "error",
        "The customer disputed the payment with their bank.",
        "Cancel, ship, return and refund are locked until DR resolves the dispute.",
    ),
    AttentionFlag(
        "refund_waiting",
        "Refund waiting for bank details",
        "warning",
        "The customer must give bank details before DR can pay the refund.",
        "Make sure the customer has DR's email asking for them; the request expires.",
    ),
    AttentionFlag(
        "backordered",
        "Backordered",
        "warning",
        "Some units are backordered.",
        "Tell the customer when they are expected, or cancel them if the customer prefers.",
    ),
    AttentionFlag(
        "unknown_sku",
        "Unknown SKU",
        "warning",
        "A line's SKU is not in our catalog.",
        "Add the SKU to the catalog so its fulfillment model is known.",
    ),
)
FLAGS_BY_FIELD = {flag.field: flag for flag in ATTENTION_FLAGS}
NEEDS_ATTENTION = reduce(or_, (Q(**{flag.field: True}) for flag in ATTENTION_FLAGS))


def units_of(quantity: int, name: str) -> str:
    """Goods in the words an agent uses: "1 unit of Desk lamp", "2 units of Desk lamp"."""
    return f"{quantity} unit{'' if quantity == 1 else 's'} of {name}"


def quantities_by_item(items: list[tuple[str, int]], *, error: type[Exception]) -> dict[str, int]:
    """One total per DR item id, so an item named twice in a request is checked against its open
    units once; ``error`` is raised for a quantity that is not a whole number of at least 1."""
    totals: dict[str, int] = defaultdict(int)
    for item_id, quantity in items:
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise error(f"item {item_id}: the quantity must be a whole number of at least 1")
        totals[str(item_id)] += quantity
    return dict(totals)


def order_subject(dr_order_id: str) -> str:
    """What every instruction, call and timeline entry about an order is filed under."""
    return f"order:{dr_order_id}"


class OrderQuerySet(models.QuerySet):
    def needing_attention(self) -> "OrderQuerySet":
        """Orders with any flag raised."""
        return self.filter(NEEDS_ATTENTION)

    def not_needing_attention(self) -> "OrderQuerySet":
        return self.exclude(NEEDS_ATTENTION)


class Order(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", "Pending payment"
        IN_REVIEW = "in_review", "In review"
        ACCEPTED = "accepted", "Accepted"
        FULFILLED = "fulfilled", "Fulfilled"
        COMPLETE = "complete", "Complete"
        BLOCKED = "blocked", "Blocked"
        CANCELLED = "cancelled", "Cancelled"
        RETURNED = "returned", "Returned"
        DISPUTE = "dispute", "In dispute"

    dr_order_id = models.CharField("DR order id", max_length=None, unique=True)
    upstream_id = models.CharField(max_length=None, blank=True, db_index=True)
    checkout_id = models.CharField(max_length=None, blank=True)
    state = FSMField(default=State.PENDING_PAYMENT, choices=State.choices, protected=True, db_index=True)
    state_changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When DR says the order reached its current state."
    )
    fraud_state = models.CharField(max_length=None, blank=True)
    currency = models.CharField(max_length=None)
    # What DR sends, as it sends it: an address that cannot be mailed is still the customer's record.
    email = models.CharField(max_length=None, blank=True, db_index=True)
    customer_name = models.CharField(max_length=None, blank=True, db_index=True)
    locale = models.CharField(max_length=None, blank=True)
    ship_to = models.JSONField(default=dict, blank=True)
    bill_to = models.JSONField(default=dict, blank=True)
    shipping_choice = models.JSONField(default=dict, blank=True)
    subtotal = models.DecimalField(**MONEY)
    total_tax = models.DecimalField(**MONEY)
    total_shipping = models.DecimalField(**MONEY)
    total_amount = models.DecimalField(**MONEY)
    captured_amount = models.DecimalField(**MONEY)
    cancelled_amount = models.DecimalField(**MONEY)
    refunded_amount = models.DecimalField(**MONEY)
    available_to_refund_amount = models.DecimalField(**MONEY)
    dr_created_at = models.DateTimeField("created at DR", null=True, blank=True, db_index=True)
    dr_updated_at = models.DateTimeField("updated at DR", null=True, blank=True)
    raw = models.JSONField("DR's order as last fetched", default=dict, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)

    # Flags for a person: each says why the order needs one. Each mirrors whether the order has an
    # open AttentionItem of that kind (commerce.attention keeps them together), so lists and the
    # dashboard filter on an indexed column.
    capture_failed = models.BooleanField(default=False, db_index=True)
    authorization_lapsed = models.BooleanField(default=False, db_index=True)
    cancellation_rejected = models.BooleanField(default=False, db_index=True)
    refund_failed = models.BooleanField(default=False, db_index=True)
    dispute_open = models.BooleanField(default=False, db_index=True)
    refund_waiting = models.BooleanField("refund waiting for bank details", default=False, db_index=True)
    backordered = models.BooleanField(default=False, db_index=True)
    unknown_sku = models.BooleanField("unknown SKU", default=False, db_index=True)

    payment_method = models.CharField(
        max_length=None, blank=True, help_text="The payment method as people name it: brand and last four digits."
    )

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-dr_created_at", "-id"]
        permissions = [
            ("cancel_order_lines", "Can cancel order lines"),
            ("record_shipment", "Can record a shipment of third-party and digital lines"),
            ("start_return", "Can start a return and record it received"),
            ("refund_order", "Can refund an order"),
            ("acknowledge_attention", "Can acknowledge an attention item with a note"),
        ]

    def __str__(self) -> str:
        return f"Order {self.dr_order_id}"

    @property
    def raised_flags(self) -> list[AttentionFlag]:
        return [flag for flag in ATTENTION_FLAGS if getattr(self, flag.field)]

    @property
    def needs_attention(self) -> bool:
        return bool(self.raised_flags)

    @property
    def dispute_lock(self) -> str:
        """Why nothing may move on the order now, or "": DR refuses fulfillments, refunds and returns
        while the order is in dispute (order-management/returns-and-refunds-1/disputes-and-chargebacks.md)."""
        if self.dispute_open or self.state == self.State.DISPUTE:
            return (
                f"Order {self.dr_order_id} is in dispute with the customer's bank: cancel, ship, return and"
                " refund are locked until DR resolves the dispute."
            )
        return ""

    @fsm_log_description
    @transition(field=state, source="*", target=RETURN_VALUE(*State.values))
    def follow_dr(self, *, state: str, at: datetime | None, description: str | None = None) -> str:
        """DR moved the order; the service has already refused any move backwards."""
        self.state_changed_at = at
        return state


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    dr_item_id = models.CharField("DR item id", max_length=None, unique=True)
    sku = models.ForeignKey("catalog.Sku", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    dr_sku_id = models.CharField("DR SKU id", max_length=None)
    name = models.CharField(max_length=None, blank=True)
    fulfillment_model = models.CharField(max_length=20, blank=True, help_text="Taken from the SKU; empty if unknown.")
    quantity = models.PositiveIntegerField()
    amount = models.DecimalField(**MONEY)
    tax_amount = models.DecimalField(**MONEY)
    tax_rate = models.DecimalField(max_digits=7, decimal_places=5, default=0)
    dr_state = models.CharField(max_length=None, blank=True)

    pending = models.PositiveIntegerField(default=0)
    backordered = models.PositiveIntegerField(default=0)
    shipped = models.PositiveIntegerField(default=0)
    fulfilled = models.PositiveIntegerField(default=0, help_text="Units whose capture DR accepted.")
    captured = models.PositiveIntegerField(default=0, help_text="Fulfilled units whose capture DR reported complete.")
    capture_failed = models.PositiveIntegerField(
        default=0, help_text="Fulfilled units whose capture DR reported failed."
    )
    cancel_requested = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0, help_text="Units whose payment DR released.")
    return_requested = models.PositiveIntegerField(default=0, help_text="Units in a return not yet settled.")
    returned = models.PositiveIntegerField(default=0, help_text="Units accepted back by the fulfiller or by us.")
    captured_amount = models.DecimalField(
        **MONEY, help_text="This line's share of the captures DR reported complete, matched by fulfillment."
    )
    refunded_amount = models.DecimalField(**MONEY, help_text="This line's share of the refunds DR completed.")

    class Meta:
        # By the column: ordering by "order" would join the orders into every query.
        ordering = ["-order_id", "id"]
        indexes = [models.Index(fields=["dr_sku_id"], name="orderline_dr_sku_id")]  # the order search by SKU
        constraints = [
            models.CheckConstraint(
                condition=Q(fulfilled__lte=F("quantity") - F("cancelled")), name="line_fulfilled_plus_cancelled_le_qty"
            ),
            models.CheckConstraint(condition=Q(shipped__lte=F("quantity")), name="line_shipped_le_quantity"),
            models.CheckConstraint(
                condition=Q(cancel_requested__lte=F("quantity")), name="line_cancel_requested_le_quantity"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(condition=Q(returned__lte=F("fulfilled")), name="line_returned_le_fulfilled"),
            models.CheckConstraint(condition=Q(captured__lte=F("fulfilled")), name="line_captured_le_fulfilled"),
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=F("captured_amount")), name="line_refunded_le_captured"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dr_sku_id} x {self.quantity}"

    @property
    def label(self) -> str:
        """What the customer bought, as the page and the emails name it."""
        return self.name or self.dr_sku_id

    @property
    def fulfilled_by(self) -> str:
        """The fulfillment model as people name it: "Third party (our logistics partner)"."""
        labels = dict(Sku.FulfillmentModel.choices)
        return str(labels.get(self.fulfillment_model, self.fulfillment_model or "Unknown (not in our catalog)"))

    def price_of(self, units: int) -> Decimal:
        """What ``units`` of the line cost the customer, tax included, to the cent (half up, as DR
        rounds refunds): what cancelling them releases, shipping them captures, refunding them pays."""
        return ((self.amount + self.tax_amount) * units / self.quantity).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )

    @property
    def open_quantity(self) -> int:
        """Units neither captured nor released yet."""
        return self.quantity - self.fulfilled - self.cancelled


class Charge(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="charges")
    dr_charge_id = models.CharField("DR charge id", max_length=None, unique=True)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=None)
    state = models.CharField(max_length=None)
    captured = models.BooleanField(default=False)
    refunded = models.BooleanField(default=False)
    dr_updated_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        # By the column: ordering by "order" would join the orders into every query.
        ordering = ["-order_id", "id"]

    def __str__(self) -> str:
        return f"{self.dr_charge_id} {self.amount} {self.currency} ({self.state})"


class ChargeOperation(models.Model):
    """A capture, cancel or refund of a charge, as DR reports it."""

    class Kind(models.TextChoices):
        CAPTURE = "capture", "Capture"
        CANCEL = "cancel", "Cancel"
        REFUND = "refund", "Refund"

    charge = models.ForeignKey(Charge, on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    dr_id = models.CharField(max_length=None)
    amount = models.DecimalField(**MONEY)
    state = models.CharField(max_length=None)
    failure_code = models.CharField(max_length=None, blank=True)
    failure_message = models.TextField(blank=True)
    fulfillment_id = models.CharField(max_length=None, blank=True)
    dr_created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # By the column: ordering by "charge" would join two tables into every query.
        ordering = ["charge_id", "dr_created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["charge", "kind", "dr_id"], name="charge_operation_unique")]
        indexes = [models.Index(fields=["kind", "dr_created_at"])]  # the dashboard's captures per hour

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.state})"

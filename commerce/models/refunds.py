"""Money given back: refunds (ours and DR's own), chargebacks, and DR's documents of an order."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from django_fsm_log.decorators import fsm_log_description

from .orders import MONEY, Order, OrderLine


class Refund(FSMModelMixin, models.Model):
    """One refund at DR (``POST /refunds``), asked by us or made by DR itself (a third-party return
    fully received, a chargeback). Its money counts as refunded only once DR says ``refund.complete``.
    """

    class Kind(models.TextChoices):
        AMOUNT = "amount", "An amount of the order"
        PERCENT = "percent", "A percentage of the order"
        UNITS = "units", "Units of some lines"
        SHIPPING = "shipping", "The shipping"
        TAX = "tax", "The tax in full"
        DUTY = "duty", "The duty"
        IMPORTER_TAX = "importer_tax", "The importer tax"
        FEES = "fees", "Fees of some lines"

    class State(models.TextChoices):
        REQUESTED = "requested", "Asked, not yet at DR"
        PENDING = "pending", "Pending at DR"
        PENDING_INFORMATION = "pending_information", "Waiting for the customer's bank details"
        SUCCEEDED = "succeeded", "Refunded"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (no bank details given)"
        REFUSED = "refused", "Refused by DR"

    OPEN_STATES = (State.REQUESTED, State.PENDING, State.PENDING_INFORMATION)
    # A refund DR may still pay: its amount is no longer available to refund.
    HOLDING_STATES = (*OPEN_STATES, State.SUCCEEDED)

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    reference = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        help_text="Our id, sent in the refund's metadata to find it after a lost answer.",
    )
    dr_refund_id = models.CharField("DR refund id", max_length=None, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    currency = models.CharField(max_length=None)
    amount = models.DecimalField(**MONEY, help_text="What was asked (DR's amount once it answers).")
    percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    refunded_amount = models.DecimalField(**MONEY, help_text="What DR paid back: set by refund.complete only.")
    reason = models.CharField(max_length=None, blank=True)
    state = FSMField(default=State.REQUESTED, choices=State.choices, protected=True, db_index=True)
    failure_reason = models.TextField(blank=True)
    token_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When the customer's link to give bank details expires."
    )
    initiated_by_dr = models.BooleanField(default=False, help_text="DR refunded by itself (a received return).")
    for_return = models.CharField(
        max_length=None, blank=True, help_text="The DR return whose accepted units this refund pays back."
    )
    retry_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    instruction = models.ForeignKey(
        "digitalriver.Instruction", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    request = models.JSONField(default=dict, blank=True, help_text="The body sent to POST /refunds.")
    raw = models.JSONField("DR's refund as last seen", default=dict, blank=True)
    dr_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["dr_refund_id"], condition=~Q(dr_refund_id=""), name="refund_unique_dr_id"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} {self.currency} of {self.order.dr_order_id} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @fsm_log_description
    @transition(field=state, source=[State.REQUESTED, State.PENDING, State.PENDING_INFORMATION], target=State.PENDING)
    def mark_pending(self, description: str | None = None) -> None:
        return None

    @fsm_log_description
    @transition(
        field=state,
        source=[State.REQUESTED, State.PENDING, State.PENDING_INFORMATION],
        target=State.PENDING_INFORMATION,
    )
    def mark_pending_information(self, description: str | None = None) -> None:
        return None

    @fsm_log_description
    @transition(field=state, source=[State.REQUESTED, State.PENDING, State.PENDING_INFORMATION], target=State.SUCCEEDED)
    def mark_succeeded(self, description: str | None = None) -> None:
        return None

    @fsm_log_description
    @transition(field=state, source=[State.REQUESTED, State.PENDING, State.PENDING_INFORMATION], target=State.FAILED)
    def mark_failed(self, description: str | None = None) -> None:
        return None

    @fsm_log_description
    @transition(field=state, source=[State.REQUESTED, State.PENDING, State.PENDING_INFORMATION], target=State.EXPIRED)
    def mark_expired(self, description: str | None = None) -> None:
        return None

    @fsm_log_description
    @transition(field=state, source=State.REQUESTED, target=State.REFUSED)
    def mark_refused(self, description: str | None = None) -> None:
        return None


class RefundLine(models.Model):
    """Units of one order line that a refund pays back (a refund of units, or of a return)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="refund_lines")
    quantity = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(**MONEY, help_text="What this line gets back (DR's figure once it answers).")

    def __str__(self) -> str:
        return f"{self.quantity} x {self.order_line.label}: {self.amount}"


class Chargeback(models.Model):
    """Money the customer's bank took back after a dispute (``order.chargeback``)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="chargebacks")
    dr_id = models.CharField(
        max_length=None, unique=True, help_text="DR's sales transaction id, or the event's when it names none."
    )
    kind = models.CharField(max_length=None, blank=True, help_text="fraud_chargeback or non_fraud_chargeback.")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=None, blank=True)
    dr_created_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["order", "dr_created_at", "id"]

    def __str__(self) -> str:
        return f"Chargeback {self.amount} {self.currency} on {self.order.dr_order_id}"


class Document(models.Model):
    """An invoice or credit memo DR made for an order: a PDF at DR, downloaded through us."""

    class Purpose(models.TextChoices):
        INVOICE = "customer_invoice", "Invoice"
        CREDIT_MEMO = "customer_credit_memo", "Credit memo"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="documents")
    dr_file_id = models.CharField("DR file id", max_length=None, unique=True)
    dr_id = models.CharField("DR invoice id", max_length=None, blank=True)
    purpose = models.CharField(max_length=30, choices=Purpose.choices)
    url = models.CharField(max_length=None, blank=True, help_text="DR's URL (needs our key: never shown to customers).")
    dr_created_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order", "recorded_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.dr_file_id}"

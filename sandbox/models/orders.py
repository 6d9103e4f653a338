from decimal import Decimal

from django.db import models
from django.utils import timezone

from ..timefmt import cents, dr_time, money
from .reversals import ACTIVE_REFUND_STATES

# The sandbox's one warehouse, shown as every order's ship-from address.
SHIP_FROM = {
    "address": {
        "line1": "10380 Bren Road W",
        "line2": "",
        "city": "Minnetonka",
        "postalCode": "55343",
        "state": "MN",
        "country": "US",
    }
}


class Order(models.Model):
    class State(models.TextChoices):
        PENDING_PAYMENT = "pending_payment"
        IN_REVIEW = "in_review"
        ACCEPTED = "accepted"
        BLOCKED = "blocked"
        FULFILLED = "fulfilled"
        COMPLETE = "complete"
        CANCELLED = "cancelled"
        RETURNED = "returned"
        DISPUTE = "dispute"

    dr_id = models.CharField(max_length=32, unique=True)
    upstream_id = models.CharField(max_length=100, blank=True, db_index=True)
    checkout_id = models.CharField(max_length=64, blank=True)
    email = models.CharField(max_length=254, blank=True, db_index=True)
    locale = models.CharField(max_length=16, default="en_US")
    currency = models.CharField(max_length=3, default="USD")
    state = models.CharField(max_length=20, choices=State.choices, db_index=True)
    fraud_state = models.CharField(max_length=20, blank=True)
    ship_to = models.JSONField(default=dict)
    bill_to = models.JSONField(default=dict)
    shipping_choice = models.JSONField(default=dict)
    subtotal = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    total_tax = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    total_shipping = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    total_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    captured_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    cancelled_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    chargeback_amount = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0"), help_text="Money the bank took back (chargebacks)."
    )
    state_before_dispute = models.CharField(max_length=20, blank=True)
    state_transitions = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict, blank=True)
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    @property
    def refunds_held(self) -> Decimal:
        """Pending and completed refunds (issuing-refunds.md#available-to-refund-amount)."""
        return sum(
            (refund.amount for refund in self.refunds.all() if refund.state in ACTIVE_REFUND_STATES), Decimal("0")
        )

    @property
    def available_to_refund(self) -> Decimal:
        return max(Decimal("0"), self.captured_amount - self.refunds_held - self.chargeback_amount)

    def as_dr(self, *, expand: bool = False, with_payment: bool = True) -> dict:
        items = list(self.items.all())
        body = {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "updatedTime": dr_time(self.updated_time),
            "currency": self.currency,
            "email": self.email,
            "locale": self.locale,
            "shipTo": self.ship_to,
            "shipFrom": SHIP_FROM,
            "billTo": self.bill_to,
            "shippingChoice": self.shipping_choice,
            "subtotal": money(self.subtotal),
            "totalTax": money(self.total_tax),
            "totalFees": 0.0,
            "totalDuty": 0.0,
            "totalDiscount": 0.0,
            "totalShipping": money(self.total_shipping),
            "totalAmount": money(self.total_amount),
            "capturedAmount": money(self.captured_amount),
            "cancelledAmount": money(self.cancelled_amount),
            "refundedAmount": money(self.refunded_amount),
            "availableToRefundAmount": money(self.available_to_refund),
            "items": [item.as_dr(expand=expand) for item in items],
            "state": self.state,
            "stateTransitions": self.state_transitions,
            **({"fraudState": self.fraud_state} if self.fraud_state else {}),
            "sellingEntity": {"id": "DR_INC-ENTITY", "name": "Digital River Inc."},
            "metadata": self.metadata,
            "liveMode": False,
        }
        for key, purpose in (("invoicePDFs", "customer_invoice"), ("creditMemoPDFs", "customer_credit_memo")):
            files = [file for file in self.files.all() if file.purpose == purpose]
            if files:
                # Only once a file exists (accessing-invoices-and-credit-memos.md).
                body[key] = [{"id": file.dr_id, "url": file.url, "liveMode": False} for file in reversed(files)]
        if self.upstream_id:
            body["upstreamId"] = self.upstream_id
        if self.checkout_id:
            body["checkoutId"] = self.checkout_id
        if with_payment:
            body["payment"] = {
                "sources": [source.as_dr() for source in self.sources.all()],
                "charges": [charge.as_dr() for charge in self.charges.all()],
            }
        return body


class OrderItem(models.Model):
    class Model(models.TextChoices):
        DISTRIBUTED = "distributed"
        ORCHESTRATED = "orchestrated"
        DIGITAL = "digital"

    class State(models.TextChoices):
        CREATED = "created"
        PAID = "paid"
        FULFILLED = "fulfilled"
        CANCELLED = "cancelled"
        BLOCKED = "blocked"
        RETURNED = "returned"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    dr_id = models.CharField(max_length=32, unique=True)
    sku_id = models.CharField(max_length=100)
    product_details = models.JSONField(default=dict)
    fulfillment_model = models.CharField(max_length=20, choices=Model.choices)
    quantity = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=4)
    tax_amount = models.DecimalField(max_digits=12, decimal_places=2)
    state = models.CharField(max_length=20, choices=State.choices, default=State.CREATED)
    # DR shows no per-item counters; the sandbox needs them to answer the 409 codes of /fulfillments.
    fulfilled_quantity = models.PositiveIntegerField(default=0)
    cancelled_quantity = models.PositiveIntegerField(default=0)
    # Units received back by a fulfillment return (the line's state becomes `returned` when all are).
    returned_quantity = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fulfilled_quantity__lte=models.F("quantity") - models.F("cancelled_quantity")),
                name="sandbox_item_counters_within_quantity",
            )
        ]

    def __str__(self) -> str:
        return self.dr_id

    @property
    def open_quantity(self) -> int:
        return self.quantity - self.fulfilled_quantity - self.cancelled_quantity

    def share(self, settled_before: int, units: int) -> Decimal:
        """The line total (amount + tax) of `units` units after `settled_before`, by cumulative rounding."""
        line_total = self.amount + self.tax_amount

        def allocated(count: int) -> Decimal:
            return cents(line_total * count / self.quantity)

        return allocated(settled_before + units) - allocated(settled_before)

    @property
    def available_to_refund(self) -> Decimal:
        """The captured share of the line (amount + tax) less its product refunds, pending or done."""
        held = sum(
            (
                part.amount
                for part in self.refund_items.all()
                if not part.type and part.refund.state in ACTIVE_REFUND_STATES
            ),
            Decimal("0"),
        )
        return max(Decimal("0"), self.share(0, self.fulfilled_quantity) - held)

    def as_dr(self, *, expand: bool = False) -> dict:
        # The spec's ProductDetails; `physical` only when the order is read with expand=true.
        details = {key: value for key, value in self.product_details.items() if key in PRODUCT_DETAILS}
        if expand and "physical" in self.product_details:
            details["physical"] = self.product_details["physical"]
        return {
            "id": self.dr_id,
            "skuId": self.sku_id,
            "productDetails": details,
            "amount": money(self.amount),
            "quantity": self.quantity,
            "tax": {"rate": float(self.tax_rate), "amount": money(self.tax_amount)},
            "state": self.state,
            "availableToRefundAmount": money(self.available_to_refund),
            "metadata": {},
        }


PRODUCT_DETAILS = frozenset(
    {"id", "skuGroupId", "name", "description", "url", "countryOfOrigin", "image", "weight", "weightUnit", "partNumber"}
)


class Source(models.Model):
    dr_id = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="sources")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    data = models.JSONField(default=dict)
    created_time = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self) -> dict:
        return {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "currency": self.order.currency,
            "amount": money(self.amount),
            "state": "chargeable",
            "reusable": False,
            "liveMode": False,
            **self.data,
        }


class Charge(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        CAPTURABLE = "capturable"
        PROCESSING = "processing"
        COMPLETE = "complete"
        CANCELLED = "cancelled"
        FAILED = "failed"

    dr_id = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="charges")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="charges")
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    shipping_settled = models.BooleanField(
        default=False, help_text="Shipping is captured with the first capture, or cancelled when nothing is."
    )
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.dr_id

    def total(self, kind: str, state: str = "complete") -> "Decimal":
        return sum((op.amount for op in self.operations.all() if op.kind == kind and op.state == state), Decimal("0"))

    def as_dr(self) -> dict:
        operations = list(self.operations.all())

        def listing(kind: str) -> list[dict]:
            return [op.as_dr() for op in operations if op.kind == kind]

        return {
            # No updatedTime: the spec's Charge has none, nor do the charges shown on DR's pages.
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "currency": self.currency,
            "amount": money(self.amount),
            "state": self.state,
            "orderId": self.order.dr_id,
            "sourceId": self.source.dr_id,
            "paymentSessionId": f"pms_{self.order.dr_id}",
            "captured": any(op.kind == "capture" and op.state == "complete" for op in operations),
            "refunded": any(op.kind == "refund" and op.state == "complete" for op in operations),
            "captures": listing("capture"),
            "cancels": listing("cancel"),
            "refunds": listing("refund"),
            "type": "customer_initiated",
            "liveMode": False,
        }


class ChargeOperation(models.Model):
    """One capture, cancel or refund of a charge."""

    class Kind(models.TextChoices):
        CAPTURE = "capture"
        CANCEL = "cancel"
        REFUND = "refund"

    charge = models.ForeignKey(Charge, on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    dr_id = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    state = models.CharField(max_length=20, default="complete")
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=255, blank=True)
    fulfillment_id = models.CharField(max_length=64, blank=True)
    created_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self) -> dict:
        body = {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "updatedTime": dr_time(self.created_time),
            "amount": money(self.amount),
            "state": self.state,
        }
        if self.fulfillment_id and self.kind == self.Kind.CAPTURE:
            # Documented on captures only (order-management/informing-digital-river-of-a-fulfillment.md).
            body["fulfillmentId"] = self.fulfillment_id
        if self.failure_code:
            body["failureCode"] = self.failure_code
            body["failureMessage"] = self.failure_message
        return body


class Fulfillment(models.Model):
    """A `POST /fulfillments` as accepted (by the client, or by the sandbox for orchestrated lines)."""

    dr_id = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fulfillments")
    data = models.JSONField(default=dict)
    created_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self) -> dict:
        return {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "orderId": self.order.dr_id,
            **self.data,
            "liveMode": False,
        }

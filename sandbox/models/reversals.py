"""Reversals and documents: fulfillment returns, returns, refunds, files and file links.

Each `as_dr` names only what DR's spec (`.gitbook/assets/2021-12-13.json`) or its pages show: the
spec's GlobalFulfillmentReturnResponse, CreateReturnsResponse / ReturnsResponse, OrderRefund,
FileObject and FileLink.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from ..timefmt import dr_time, money

#: Refunds and chargebacks that hold money back from `availableToRefundAmount`.
ACTIVE_REFUND_STATES = ("pending", "pending_information", "succeeded")


def file_content_url(file_id: str) -> str:
    """The secret-key URL of a file's content, as DR writes it (`…/files/{id}/content`)."""
    return f"{settings.DR_API_BASE_URL.rstrip('/')}/files/{file_id}/content"


class FulfillmentReturn(models.Model):
    class State(models.TextChoices):
        CREATED = "created"
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    class Type(models.TextChoices):
        CLIENT = "client"
        WAREHOUSE = "warehouse"

    dr_id = models.CharField(max_length=64, unique=True)
    fulfillment_order = models.ForeignKey(
        "sandbox.FulfillmentOrder", on_delete=models.CASCADE, related_name="fulfillment_returns"
    )
    upstream_id = models.CharField(max_length=100, blank=True, db_index=True)
    reason = models.CharField(max_length=500, blank=True)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.CLIENT)
    state = models.CharField(max_length=20, choices=State.choices, default=State.CREATED, db_index=True)
    location = models.JSONField(default=dict, blank=True)
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self) -> dict:
        # The spec's GlobalFulfillmentReturnResponse: no updatedTime, no metadata, no item ids, and
        # `livemode` in lower case (as on fulfillment cancellations).
        body = {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "fulfillmentOrderId": self.fulfillment_order.dr_id,
            "upstreamId": self.upstream_id,
            "items": [item.as_dr() for item in self.items.select_related("fulfillment_order_item")],
            "reason": self.reason,
            "state": self.state,
            "type": self.type,
            "livemode": False,
        }
        if self.location:
            body["location"] = self.location
        return body


class FulfillmentReturnItem(models.Model):
    fulfillment_return = models.ForeignKey(FulfillmentReturn, on_delete=models.CASCADE, related_name="items")
    fulfillment_order_item = models.ForeignKey(
        "sandbox.FulfillmentOrderItem", on_delete=models.CASCADE, related_name="return_items"
    )
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
            "inventoryItemId": line.inventory_item_id,
            "quantity": self.quantity,
            "quantityAccepted": self.quantity_accepted,
            "state": self.state,
        }


class Return(models.Model):
    """A third-party or digital return (`/returns`)."""

    class State(models.TextChoices):
        CREATED = "created"
        ACCEPTED = "accepted"

    dr_id = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey("sandbox.Order", on_delete=models.CASCADE, related_name="returns")
    reason = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.CREATED, db_index=True)
    location = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    def as_dr(self, *, created: bool = False) -> dict:
        # The 201 is the spec's CreateReturnsResponse: no updatedTime (nor on DR's example of it).
        body = {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            **({} if created else {"updatedTime": dr_time(self.updated_time)}),
            "orderId": self.order.dr_id,
            "currency": self.order.currency,
            "items": [item.as_dr() for item in self.items.select_related("order_item")],
            "reason": self.reason,
            "state": self.state,
            "liveMode": False,
            "metadata": self.metadata,
            "refundIds": list(self.refunds.values_list("dr_id", flat=True)),
        }
        if self.location:
            body["location"] = self.location
        return body


class ReturnItem(models.Model):
    return_request = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey("sandbox.OrderItem", on_delete=models.CASCADE, related_name="return_items")
    quantity = models.PositiveIntegerField()
    quantity_accepted = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    state = models.CharField(max_length=20, default="created")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.order_item.dr_id} x{self.quantity}"

    def as_dr(self) -> dict:
        return {
            "itemId": self.order_item.dr_id,
            "skuId": self.order_item.sku_id,
            "amount": money(self.amount),
            "quantity": self.quantity,
            "quantityAccepted": self.quantity_accepted,
            "state": self.state,
        }


class Refund(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        PENDING_INFORMATION = "pending_information"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        EXPIRED = "expired"

    dr_id = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey("sandbox.Order", on_delete=models.CASCADE, related_name="refunds")
    return_request = models.ForeignKey(Return, null=True, blank=True, on_delete=models.SET_NULL, related_name="refunds")
    charge_operation = models.OneToOneField(
        "sandbox.ChargeOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="refund"
    )
    currency = models.CharField(max_length=3)
    type = models.CharField(max_length=20, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    reason = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_index=True)
    token = models.CharField(max_length=64, blank=True)
    token_expires_time = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(
        max_length=30, default="succeed", help_text="What the bank will do: succeed, fail or information_then_fail."
    )
    settle_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When the delivery loop takes the next step."
    )
    created_time = models.DateTimeField(default=timezone.now)
    updated_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    @property
    def open(self) -> bool:
        return self.state in (self.State.PENDING, self.State.PENDING_INFORMATION)

    def as_dr(self) -> dict:
        # The spec's OrderRefund has no updatedTime. `charges` as DR's pages show once the bank answered.
        body: dict = {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "orderId": self.order.dr_id,
            "currency": self.currency,
            **({"type": self.type} if self.type else {}),
            "amount": money(self.amount),
            "refundedAmount": money(self.refunded_amount),
            "items": [item.as_dr(refunded=self.state == self.State.SUCCEEDED) for item in self.items.all()],
            **({"reason": self.reason} if self.reason else {}),
            **({"failureReason": self.failure_reason} if self.failure_reason else {}),
            "state": self.state,
            "liveMode": False,
            "metadata": self.metadata,
        }
        if self.state == self.State.PENDING_INFORMATION and self.token:
            body["tokenInformation"] = {"token": self.token, "expiresTime": dr_time(self.token_expires_time)}
        operation = self.charge_operation
        if operation is not None and self.state != self.State.PENDING:
            charge = operation.charge
            body["charges"] = [
                {
                    "id": charge.dr_id,
                    "captured": True,
                    "refunded": True,
                    "refunds": [
                        {
                            "createdTime": dr_time(operation.created_time),
                            "amount": money(operation.amount),
                            "state": operation.state,
                        }
                    ],
                    "sourceId": charge.source.dr_id,
                }
            ]
        return body


class RefundItem(models.Model):
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="items")
    order_item = models.ForeignKey("sandbox.OrderItem", on_delete=models.CASCADE, related_name="refund_items")
    type = models.CharField(max_length=20, blank=True)
    quantity = models.PositiveIntegerField(null=True, blank=True)
    percent = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.order_item.dr_id} {self.amount}"

    def as_dr(self, *, refunded: bool = False) -> dict:
        return {
            **({"type": self.type} if self.type else {}),
            "itemId": self.order_item.dr_id,
            "skuId": self.order_item.sku_id,
            **({"quantity": self.quantity} if self.quantity is not None else {}),
            "amount": money(self.amount),
            **({"percent": float(self.percent)} if self.percent is not None else {}),
            "refundedAmount": money(self.amount if refunded else Decimal("0")),
        }


class File(models.Model):
    class Purpose(models.TextChoices):
        INVOICE = "customer_invoice"
        CREDIT_MEMO = "customer_credit_memo"

    dr_id = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey("sandbox.Order", on_delete=models.CASCADE, related_name="files")
    refund = models.OneToOneField(Refund, null=True, blank=True, on_delete=models.SET_NULL, related_name="file")
    purpose = models.CharField(max_length=30, choices=Purpose.choices)
    file_name = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    content = models.BinaryField()
    created_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.dr_id

    @property
    def url(self) -> str:
        return file_content_url(self.dr_id)

    def as_dr(self) -> dict:
        links = list(self.links.all())
        body: dict = {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "fileName": self.file_name,
            "purpose": self.purpose,
            "title": self.title,
            "size": len(bytes(self.content)),
            "type": "pdf",
            "url": self.url,
            "liveMode": False,
        }
        if links:
            # "If no links have been generated, then links[] does not exist" (files.md#links).
            body["links"] = [link.as_dr() for link in links]
        return body


class FileLink(models.Model):
    dr_id = models.CharField(max_length=64, unique=True)
    file = models.ForeignKey(File, on_delete=models.CASCADE, related_name="links")
    expires_time = models.DateTimeField()
    url = models.CharField(max_length=500, help_text="The public URL, built from the host that created it.")
    metadata = models.JSONField(default=dict, blank=True)
    created_time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.dr_id

    @property
    def expired(self) -> bool:
        return self.expires_time <= timezone.now()

    def as_dr(self) -> dict:
        body = {
            "id": self.dr_id,
            "createdTime": dr_time(self.created_time),
            "expired": self.expired,
            "expiresTime": dr_time(self.expires_time),
            "fileId": self.file.dr_id,
            "url": self.url,
            "liveMode": False,
        }
        if self.metadata:
            body["metadata"] = self.metadata
        return body

"""`/refunds`: what DR checks, how much each request is worth, and the bank's later answer.

Sources: order-management/returns-and-refunds-1/refunds/issuing-refunds.md and
handling-refunds-for-asynchronous-payment-methods.md; test cards in developer-resources/testing-scenarios.md.

A refund is `pending` when created (`refund.pending`); the bank answers later, from the delivery loop
(`refunds_settle_due`, never inside the request) or from the page's buttons: `succeeded`
(`refund.complete`, `order.charge.refund.complete`, `order.refunded`, a credit memo) or `failed`
(`refund.failed`, `order.charge.refund.failed`; the amount is available to refund again).
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..errors import ApiError, Errors, invalid, not_found
from ..ids import prefixed_id, uuid_id
from ..models import ChargeOperation, Order, OrderItem, Refund, RefundItem, Return
from ..timefmt import cents
from ..types import JSONObject
from .cards import REFUND_FAILS, REFUND_PENDING_THEN_FAILS, card_outcome
from .documents import credit_memo_issue
from .events import event_emit
from .lifecycle import emit_order, order_move
from .network import network_settings

REFUND_FIELDS = frozenset(
    {"orderId", "invoiceId", "currency", "amount", "percent", "type", "items", "reason", "metadata"}
)
ITEM_FIELDS = frozenset({"itemId", "skuId", "quantity", "amount", "percent", "type"})
ORDER_TYPES = ("shipping", "duty", "tax", "importer_tax")
ITEM_TYPES = ("shipping", "fees", "duty")
TOO_MUCH = "The requested refund amount is greater than the available amount."
IN_DISPUTE = "A refund cannot be performed while there is a dispute on the order."
#: The customer gives bank details within 30 days (handling-refunds-for-asynchronous-payment-methods.md).
TOKEN_LIFETIME = timedelta(days=30)
FAILURE_REASON = "The issuing bank declined the refund (DR test card)."


class RefundError(ValueError):
    """A page action on a refund that is no longer open."""


@dataclass
class Part:
    """One `items[]` entry of a refund request, resolved to the order's line."""

    item: OrderItem
    type: str = ""
    quantity: int | None = None
    percent: Decimal | None = None
    amount: Decimal | None = None
    parameter: str = "items[0]"


def too_much() -> ApiError:
    return invalid("amountRequested", TOO_MUCH)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _check_share(errors: Errors, source: JSONObject, prefix: str) -> None:
    for key in ("amount", "percent"):
        if source.get(key) is None:
            continue
        value = _decimal(source[key])
        if value is None or value <= 0:
            errors.invalid(f"{prefix}{key}", f"'{key}' must be a positive number.")
        elif key == "percent" and not Decimal("0.01") <= value <= Decimal("100"):
            errors.invalid(f"{prefix}percent", "'percent' must be between 0.01 and 100.")


def refund_create(*, body: JSONObject) -> Refund:
    """Validate a client's `POST /refunds` and issue it."""
    errors = Errors()
    for key in body:
        if key not in REFUND_FIELDS:
            errors.add("unknown_parameter", key, f"'{key}' is not a known parameter.")
    order_id: Any = body.get("orderId")
    if not order_id:
        errors.missing("orderId")
    elif not isinstance(order_id, str):
        errors.invalid("orderId", "'orderId' must be a string.")
    if not body.get("currency"):
        errors.missing("currency")
    given = [key for key in ("amount", "percent", "items") if body.get(key) is not None]
    if not given:
        errors.missing("amount")
    elif len(given) > 1:
        errors.invalid(given[1], "Give exactly one of 'amount', 'percent' or 'items'.")
    _check_share(errors, body, "")
    kind = body.get("type")
    if kind is not None and kind not in ORDER_TYPES:
        errors.invalid("type", f"'type' must be one of {', '.join(ORDER_TYPES)}.")
    if kind and body.get("items") is not None:
        errors.invalid("type", "An order-level 'type' cannot go with 'items'; give items[].type.")
    if isinstance(body.get("reason"), str) and len(body["reason"]) > 64:
        errors.invalid("reason", "'reason' may have at most 64 characters.")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        errors.invalid("metadata", "'metadata' must be an object.")
    items: Any = body.get("items")
    if items is not None and (not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items)):
        errors.invalid("items", "'items' must be a non-empty list of objects.")
        items = []
    for index, item in enumerate(items or []):
        prefix = f"items[{index}]."
        for key in item:
            if key not in ITEM_FIELDS:
                errors.add("unknown_parameter", f"{prefix}{key}", f"'{key}' is not a known parameter.")
        if not item.get("itemId") and not item.get("skuId"):
            errors.missing(f"{prefix}itemId")
        quantity = item.get("quantity")
        if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1):
            errors.invalid(f"{prefix}quantity", "'quantity' must be a positive integer.")
        if (item.get("amount") is None) == (item.get("percent") is None):
            errors.invalid(f"{prefix}amount", "Give exactly one of 'amount' or 'percent' for each item.")
        _check_share(errors, item, prefix)
        if item.get("type") is not None and item["type"] not in ITEM_TYPES:
            errors.invalid(f"{prefix}type", f"'type' must be one of {', '.join(ITEM_TYPES)}.")
    if kind == "tax" and body.get("percent") is not None and _decimal(body["percent"]) != Decimal("100"):
        # issuing-refunds.md#refunding-taxes, DR's own error.
        errors.invalid("percentRequested", "Only full tax refunds are supported.")
    errors.raise_if_any()
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(dr_id=order_id).first()
        if order is None:
            raise not_found("orderId", order_id)
        if order.state == Order.State.DISPUTE:
            raise invalid("order", IN_DISPUTE)
        if body["currency"] != order.currency:
            raise invalid("currency", f"Currency {body['currency']} is not supported.")
        parts = []
        lines = list(order.items.all())
        for index, raw in enumerate(items or []):
            line = (
                next((line for line in lines if line.dr_id == raw.get("itemId")), None) if raw.get("itemId") else None
            )
            if line is None and not raw.get("itemId"):
                line = next((line for line in lines if line.sku_id == raw.get("skuId")), None)
            if line is None:
                raise not_found(f"items[{index}].itemId", str(raw.get("itemId") or raw.get("skuId")))
            if raw.get("quantity") is not None and raw["quantity"] > line.quantity:
                raise invalid(f"items[{index}].quantity", f"Item '{line.dr_id}' has only {line.quantity} units.")
            parts.append(
                Part(
                    item=line,
                    type=raw.get("type") or "",
                    quantity=raw.get("quantity"),
                    percent=_decimal(raw.get("percent")),
                    amount=_decimal(raw.get("amount")),
                    parameter=f"items[{index}]",
                )
            )
        return refund_issue(
            order=order,
            kind=kind or "",
            amount=_decimal(body.get("amount")),
            percent=_decimal(body.get("percent")),
            parts=parts,
            reason=body.get("reason") or "",
            metadata=body.get("metadata") or {},
        )


# --- what a request is worth ----------------------------------------------------------------------


def _shipping_captured(order: Order) -> Decimal:
    charge = order.charges.first()
    if charge is None or not charge.shipping_settled or not order.captured_amount:
        return Decimal("0")
    return order.total_shipping + Decimal(str(order.shipping_choice.get("taxAmount", 0)))


def _held(order: Order, kind: str) -> Decimal:
    """Pending and completed refunds of one type (order level, and items of that type)."""
    total = Decimal("0")
    for refund in order.refunds.all():
        if not (refund.open or refund.state == Refund.State.SUCCEEDED):
            continue
        if refund.type == kind:
            total += refund.amount
        total += sum((part.amount for part in refund.items.all() if kind and part.type == kind), Decimal("0"))
    return total


def _order_level(order: Order, kind: str, amount: Decimal | None, percent: Decimal | None) -> Decimal:
    available = order.available_to_refund
    if kind == "shipping":
        base = _shipping_captured(order) - _held(order, "shipping")
    elif kind == "tax":
        captured_tax = sum(
            (cents(i.tax_amount * i.fulfilled_quantity / i.quantity) for i in order.items.all()), Decimal("0")
        )
        shipping_tax = (
            Decimal(str(order.shipping_choice.get("taxAmount", 0))) if _shipping_captured(order) else Decimal("0")
        )
        base = captured_tax + shipping_tax - _held(order, "tax")
        if amount is not None and amount < base:
            raise invalid("amountRequested", "Only full tax refunds are supported.")
    elif kind in ("duty", "importer_tax"):
        base = Decimal("0")  # sandbox orders carry no duty or importer tax
    else:
        base = available
    base = min(base, available)
    asked = amount if amount is not None else cents(base * (percent or Decimal("0")) / 100)
    if asked <= 0 or asked > base:
        raise too_much()
    return asked


def _item_level(order: Order, part: Part) -> Decimal:
    item = part.item
    quantity = part.quantity if part.quantity is not None else item.fulfilled_quantity
    if part.type == "shipping":
        share = item.amount / order.subtotal if order.subtotal else Decimal("0")
        base = cents(_shipping_captured(order) * share * quantity / item.quantity)
        ceiling = base
    elif part.type:
        base = ceiling = Decimal("0")  # no fees or duties on sandbox orders
    else:
        base = item.share(0, quantity)
        ceiling = item.available_to_refund
    asked = part.amount if part.amount is not None else cents(base * (part.percent or Decimal("0")) / 100)
    if asked <= 0 or asked > ceiling:
        raise too_much()
    return asked


# --- issuing and settling ---------------------------------------------------------------------------


def refund_issue(
    *,
    order: Order,
    kind: str = "",
    amount: Decimal | None = None,
    percent: Decimal | None = None,
    parts: list[Part] | None = None,
    reason: str = "",
    metadata: JSONObject | None = None,
    return_request: Return | None = None,
) -> Refund:
    """Create a pending refund (order row locked): `refund.pending` and `order.charge.refund.pending`."""
    parts = parts or []
    amounts = [_item_level(order, part) for part in parts]
    total = sum(amounts, Decimal("0")) if parts else _order_level(order, kind, amount, percent)
    if total > order.available_to_refund or total <= 0:
        raise too_much()
    charge = order.charges.first()
    assert charge is not None, "every sandbox order is placed with its charge"
    now = timezone.now()
    operation = ChargeOperation.objects.create(
        charge=charge,
        kind=ChargeOperation.Kind.REFUND,
        dr_id=uuid_id(),
        amount=total,
        state="pending",
        created_time=now,
    )
    refund = Refund.objects.create(
        dr_id=prefixed_id("re"),
        order=order,
        return_request=return_request,
        charge_operation=operation,
        currency=order.currency,
        type=kind,
        amount=total,
        reason=reason,
        metadata=metadata or {},
        outcome=card_outcome(order),
        settle_at=now + timedelta(seconds=network_settings().refund_delay_seconds),
        created_time=now,
        updated_time=now,
    )
    for part, part_amount in zip(parts, amounts, strict=True):
        RefundItem.objects.create(
            refund=refund,
            order_item=part.item,
            type=part.type,
            quantity=part.quantity,
            percent=part.percent,
            amount=part_amount,
        )
    _emit(refund, "refund.pending", {})
    event_emit(type="order.charge.refund.pending", obj=charge.as_dr(), order_id=order.dr_id)
    return refund


def _emit(refund: Refund, event_type: str, previous: JSONObject) -> None:
    refund = Refund.objects.get(pk=refund.pk)
    event_emit(type=event_type, obj=refund.as_dr(), previous=previous, order_id=refund.order.dr_id)


def refunds_settle_due(now: datetime | None = None) -> int:
    """The bank's answers that are due (called by the delivery loop); returns how many moved."""
    now = now or timezone.now()
    due = list(
        Refund.objects.filter(
            state__in=(Refund.State.PENDING, Refund.State.PENDING_INFORMATION), settle_at__lte=now
        ).values_list("dr_id", flat=True)
    )
    moved = 0
    for refund_id in due:
        with transaction.atomic():
            refund = _locked(refund_id)
            if refund is None or refund.settle_at is None or refund.settle_at > now:
                continue
            _step(refund)
            moved += 1
    return moved


def _step(refund: Refund) -> None:
    if refund.outcome == REFUND_PENDING_THEN_FAILS and refund.state == Refund.State.PENDING:
        refund.state = Refund.State.PENDING_INFORMATION
        refund.token = secrets.token_hex(16)
        refund.token_expires_time = timezone.now() + TOKEN_LIFETIME
        refund.settle_at = timezone.now() + timedelta(seconds=network_settings().refund_delay_seconds)
        refund.updated_time = timezone.now()
        refund.save()
        _emit(refund, "refund.pending_information", {"state": "pending"})
    elif refund.outcome in (REFUND_FAILS, REFUND_PENDING_THEN_FAILS):
        _fail(refund, FAILURE_REASON)
    else:
        _complete(refund)


def _locked(refund_id: str) -> Refund | None:
    refund = Refund.objects.select_for_update().filter(dr_id=refund_id).first()
    if refund is None or not refund.open:
        return None
    # The order's row first, as every other writer of the order takes it.
    Order.objects.select_for_update().filter(pk=refund.order_id).first()
    return Refund.objects.select_for_update().get(pk=refund.pk)


def _complete(refund: Refund) -> None:
    previous = {"state": refund.state, "refundedAmount": float(refund.refunded_amount)}
    now = timezone.now()
    refund.state = Refund.State.SUCCEEDED
    refund.refunded_amount = refund.amount
    refund.settle_at = None
    refund.updated_time = now
    refund.save()
    operation = refund.charge_operation
    if operation is not None:
        operation.state = "complete"
        operation.save(update_fields=["state"])
    order = Order.objects.get(pk=refund.order_id)
    before = {"refundedAmount": float(order.refunded_amount)}
    order.refunded_amount += refund.amount
    order.updated_time = now
    order.save()
    _emit(refund, "refund.complete", previous)
    if operation is not None:
        event_emit(type="order.charge.refund.complete", obj=operation.charge.as_dr(), order_id=order.dr_id)
    fully = order.refunded_amount + order.chargeback_amount >= order.captured_amount
    if fully and order.state in (Order.State.FULFILLED, Order.State.COMPLETE):
        # "is fully returned or partially returned and its remaining items are cancelled or
        # refunded" -> returned, with order.refunded (orders/the-order-lifecycle.md).
        order_move(order=order, state=Order.State.RETURNED)
    else:
        emit_order(order, "order.refunded", before)
    credit_memo_issue(refund=refund)


def _fail(refund: Refund, reason: str) -> None:
    previous = {"state": refund.state}
    refund.state = Refund.State.FAILED
    refund.failure_reason = reason
    refund.settle_at = None
    refund.updated_time = timezone.now()
    refund.save()
    operation = refund.charge_operation
    if operation is not None:
        operation.state = "failed"
        operation.failure_code = "refund-failed"
        operation.failure_message = reason
        operation.save()
    _emit(refund, "refund.failed", previous)
    if operation is not None:
        event_emit(type="order.charge.refund.failed", obj=operation.charge.as_dr(), order_id=refund.order.dr_id)


def refund_complete(*, refund_id: str) -> Refund:
    """The page's "the bank paid it"."""
    with transaction.atomic():
        refund = _locked(refund_id)
        if refund is None:
            raise RefundError(f"no open refund {refund_id}")
        _complete(refund)
        return refund


def refund_fail(*, refund_id: str, reason: str = "") -> Refund:
    """The page's "the bank refused it"."""
    with transaction.atomic():
        refund = _locked(refund_id)
        if refund is None:
            raise RefundError(f"no open refund {refund_id}")
        _fail(refund, reason or "Refused by the bank (sandbox page).")
        return refund

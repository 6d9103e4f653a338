"""Writes to the order mirror: upsert from DR's order, charges and their operations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog.models import Sku
from core.db import Slot, get_or_create_under_lock, insert_unless_exists, locked_row, row_compiled
from core.types import JSONObject
from digitalriver.client import calls_about, get_client

from .attention import attention_clear, attention_follow_locked
from .models import Charge, ChargeOperation, Order, OrderLine, order_subject

# DR's main path; an order never goes back along it. Side states (blocked, cancelled, returned,
# dispute) are ordered by DR's stateTransitions timestamps instead.
MAIN_PATH = ["pending_payment", "in_review", "accepted", "fulfilled", "complete"]


def money(value: Any) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(Decimal("0.01"))


def dr_time(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def lock_order(*, order: Order | None = None, dr_order_id: str | None = None) -> Order:
    """Take the order's row lock before touching any other row of the order, and return it fresh.

    Every transaction that writes an order's rows (the mirror, its lines, charges, fulfillment
    orders, shipments, cancellation requests) takes this lock first, as the order mirror does: two
    handlers of the same order then wait for each other instead of locking rows in opposite orders
    and deadlocking on PostgreSQL (DR delivers an order's events concurrently). Raises
    Order.DoesNotExist when there is no such order.
    """
    if order is not None:
        return row_compiled(Order, "lock", _order_locked_by_pk, values={"pk": order.pk})
    return row_compiled(Order, "lock by DR id", _order_locked_by_dr_id, values={"dr_order_id": dr_order_id})


def _order_locked_by_pk() -> QuerySet[Order]:
    return Order.objects.select_for_update().filter(pk=Slot("pk", Order, "id"))


def _order_locked_by_dr_id() -> QuerySet[Order]:
    return Order.objects.select_for_update().filter(dr_order_id=Slot("dr_order_id", Order, "dr_order_id"))


def order_fetch(*, dr_order_id: str) -> Order:
    """GET the order from DR and mirror it (the way to learn of an order, and to re-sync one)."""
    with calls_about(order_subject(dr_order_id)):
        data = get_client().get(f"/orders/{dr_order_id}")
    return order_upsert(data=data)


@contextmanager
def order_locked(*, dr_order_id: str) -> Iterator[Order]:
    """A transaction holding the order's lock (``lock_order``), for a handler of one of the order's
    events. An order nothing has told us of yet is fetched from DR first, outside any transaction:
    no call to DR is made while a lock is held. One read of the order when it is known."""
    with transaction.atomic():
        try:
            known = lock_order(dr_order_id=dr_order_id)
        except Order.DoesNotExist:
            known = None
        if known is not None:
            yield known
            return
    order_fetch(dr_order_id=dr_order_id)
    with transaction.atomic():
        yield lock_order(dr_order_id=dr_order_id)


def order_get_or_fetch(*, dr_order_id: str) -> Order:
    """The mirrored order, fetched from DR first if nothing about it has reached us yet."""
    order = Order.objects.filter(dr_order_id=dr_order_id).first()
    return order if order is not None else order_fetch(dr_order_id=dr_order_id)


def order_upsert(*, data: JSONObject) -> Order:
    """Mirror DR's order. An older snapshot than the one we hold changes nothing."""
    return order_upsert_telling(data=data).order


class OrderUpserted(NamedTuple):
    order: Order
    #: Nothing of the order existed before this transaction (no lines, charges, returns, refunds or
    #: attention items): a caller need not count or look for any.
    new: bool
    #: Whether the order was in dispute before this snapshot, read under the order's lock.
    dispute_was_open: bool
    #: The lines written when the order is new (all it has); None when it is not.
    new_lines: list[OrderLine] | None


# savepoint=False: most callers hold a transaction already; a savepoint would cost two round trips
# per call on the busiest path (issue 14), and a failure rolls back to the caller's savepoint anyway.
@transaction.atomic(savepoint=False)
def order_upsert_telling(*, data: JSONObject) -> OrderUpserted:
    """``order_upsert``, and what a caller would otherwise read again: whether the order is new,
    whether a dispute was open before, and a new order's lines."""
    dr_order_id = str(data["id"])
    updated_at = dr_time(data.get("updatedTime"))
    order = locked_row(Order.objects.all(), dr_order_id=dr_order_id)
    new = False
    if order is None:
        # Written whole in one INSERT; a concurrent handler of another of the order's events that
        # inserted it first makes this one wait for its commit, then read it with its lock.
        order = Order(dr_order_id=dr_order_id)
        _copy_fields(order, data, updated_at)
        new = insert_unless_exists(order, unique_field="dr_order_id")
        if not new:
            order = Order.objects.select_for_update().get(dr_order_id=dr_order_id)
    # The state, not only the attention flag: an agent who acknowledges the dispute lowers the flag
    # while DR still holds the order in dispute (tests/integration/test_dispute_acknowledged.py).
    dispute_was_open = order.dispute_open or order.state == Order.State.DISPUTE
    if not new:
        if order.dr_updated_at and updated_at and updated_at < order.dr_updated_at:
            return OrderUpserted(order, False, dispute_was_open, None)
        _copy_fields(order, data, updated_at)
    state_before = order.state
    _follow_state(order, data)
    if not new:
        order.save()
    elif order.state != state_before:  # the rest went in with the INSERT
        order.save(update_fields=["state", "state_changed_at", "updated_at"])
    new_lines = _upsert_lines(order, data.get("items") or [], new_order=new)
    for charge in (data.get("payment") or {}).get("charges") or []:
        charge_upsert(order=order, data=charge, new_order=new)
    _attention_follows_state(order)
    from .documents import documents_backfill  # (documents.py reads this module)

    documents_backfill(order=order, data=data)
    return OrderUpserted(order, new, dispute_was_open, new_lines if new else None)


# What an order's end makes moot: nothing more will be captured or shipped.
SETTLED_BY_CANCELLATION = ("capture_failed", "authorization_lapsed", "cancellation_rejected", "backordered")


def _attention_follows_state(order: Order) -> None:
    """A dispute is open exactly while DR says the order is in dispute
    (order-management/returns-and-refunds-1/disputes-and-chargebacks.md: ``order.dispute`` moves the
    order into ``dispute``, ``order.dispute.resolved`` out of it); a cancelled order clears what
    only mattered while goods could still ship."""
    attention_follow_locked(
        order=order,
        kind="dispute_open",
        raised=order.state == Order.State.DISPUTE,
        reason="The customer disputed the payment with their bank.",
        because="DR resolved the dispute.",
    )
    if order.state == Order.State.CANCELLED:
        for kind in SETTLED_BY_CANCELLATION:
            if getattr(order, kind):
                attention_clear(order=order, kind=kind, because="The order was cancelled.")


def payment_method_name(data: JSONObject) -> str:
    """ "Visa •••• 1111" from the order's payment sources, as an agent reads it on a card."""
    for source in (data.get("payment") or {}).get("sources") or []:
        card = source.get("creditCard") or {}
        if card:
            brand = str(card.get("brand") or "Card")
            last_four = str(card.get("lastFourDigits") or "")
            return f"{brand} •••• {last_four}" if last_four else brand
        kind = str(source.get("type") or "")
        if kind:
            return kind.replace("_", " ").replace("Pay", " Pay").strip().capitalize()
    return ""


def _copy_fields(order: Order, data: JSONObject, updated_at: datetime | None) -> None:
    ship_to = data.get("shipTo") or {}
    order.upstream_id = str(data.get("upstreamId") or "")
    order.checkout_id = str(data.get("checkoutId") or "")
    order.fraud_state = data.get("fraudState") or ""
    order.currency = data.get("currency") or order.currency
    order.email = data.get("email") or ship_to.get("email") or ""
    order.customer_name = ship_to.get("name") or (data.get("billTo") or {}).get("name") or ""
    order.locale = data.get("locale") or ""
    order.ship_to = ship_to
    order.bill_to = data.get("billTo") or {}
    order.shipping_choice = data.get("shippingChoice") or {}
    for field, key in (
        ("subtotal", "subtotal"),
        ("total_tax", "totalTax"),
        ("total_shipping", "totalShipping"),
        ("total_amount", "totalAmount"),
        ("captured_amount", "capturedAmount"),
        ("cancelled_amount", "cancelledAmount"),
        ("refunded_amount", "refundedAmount"),
        ("available_to_refund_amount", "availableToRefundAmount"),
    ):
        setattr(order, field, money(data.get(key)))
    order.dr_created_at = dr_time(data.get("createdTime")) or order.dr_created_at
    order.dr_updated_at = updated_at or order.dr_updated_at
    order.payment_method = payment_method_name(data) or order.payment_method
    order.raw = _without_client_secrets(data)
    order.fetched_at = timezone.now()


def _without_client_secrets(value: Any) -> Any:
    """DR's order carries payment client secrets (sources, the payment session): never keep them."""
    if isinstance(value, dict):
        return {k: _without_client_secrets(v) for k, v in value.items() if k.lower() != "clientsecret"}
    if isinstance(value, list):
        return [_without_client_secrets(item) for item in value]
    return value


def _transition_time(data: JSONObject, state: str) -> datetime | None:
    transitions = data.get("stateTransitions") or {}
    camel = state.split("_")[0] + "".join(part.title() for part in state.split("_")[1:])
    return dr_time(transitions.get(camel) or transitions.get(state))


def _follow_state(order: Order, data: JSONObject) -> None:
    new_state = data.get("state")
    if new_state not in Order.State.values or new_state == order.state:
        return
    at = _transition_time(data, new_state) or dr_time(data.get("updatedTime"))
    if order.state == Order.State.DISPUTE:
        # Resolving a dispute puts back the state before it, whose stateTransitions time is the old
        # one (DR's order.dispute.resolved in disputes-and-chargebacks.md): the change is as of now.
        at = dr_time(data.get("updatedTime")) or at
    if order.state_changed_at and at and at < order.state_changed_at:
        return
    on_main_path = new_state in MAIN_PATH and order.state in MAIN_PATH
    if on_main_path and MAIN_PATH.index(new_state) < MAIN_PATH.index(order.state):
        return
    order.follow_dr(state=new_state, at=at, description="reported by DR")


def _upsert_lines(order: Order, items: list[JSONObject], *, new_order: bool) -> list[OrderLine]:
    """Mirror the order's lines; returns those it inserted."""
    existing = {} if new_order else {line.dr_item_id: line for line in order.lines.all()}
    skus: dict[str | None, Sku] = {
        sku.sku_id: sku for sku in Sku.objects.filter(sku_id__in=[item.get("skuId") for item in items])
    }
    unknown = False
    new_lines: list[OrderLine] = []
    for item in items:
        line = existing.get(str(item["id"])) or OrderLine(order=order, dr_item_id=str(item["id"]))
        sku = skus.get(item.get("skuId"))
        unknown |= sku is None
        line.dr_sku_id = item.get("skuId") or ""
        line.sku = sku
        if not line.fulfillment_model and sku is not None:
            # The model an order line is fulfilled by is the SKU's when we first saw the line.
            line.fulfillment_model = sku.fulfillment_model
        line.name = (item.get("productDetails") or {}).get("name") or (sku.name if sku else "")
        line.quantity = int(item.get("quantity") or 0)
        line.amount = money(item.get("amount"))
        tax = item.get("tax") or {}
        line.tax_amount = money(tax.get("amount"))
        line.tax_rate = Decimal(str(tax.get("rate") or 0))
        line.dr_state = item.get("state") or ""
        if line.pk is None:
            new_lines.append(line)
        else:
            line.save()
    # One INSERT for a new order's lines (both databases return their ids); the order's lock is held.
    OrderLine.objects.bulk_create(new_lines)
    missing = sorted({str(item.get("skuId")) for item in items if item.get("skuId") not in skus})
    attention_follow_locked(
        order=order,
        kind="unknown_sku",
        raised=unknown,
        reason=f"Not in our catalog: {', '.join(missing)}.",
        because="Every line's SKU is in the catalog now.",
    )
    return new_lines


@transaction.atomic(savepoint=False)
def charge_upsert(*, order: Order, data: JSONObject, new_order: bool = False) -> Charge:
    """Mirror a charge and its captures, cancels and refunds; an older snapshot changes nothing.
    ``new_order``: the order was inserted in this transaction, so none of its charges exists yet."""
    updated_at = dr_time(data.get("updatedTime"))
    values = {
        "amount": money(data.get("amount")),
        "state": data.get("state") or "",
        "captured": bool(data.get("captured")),
        "refunded": bool(data.get("refunded")),
        "raw": data,
    }
    defaults = {"order": order, "currency": data.get("currency") or "", "dr_updated_at": updated_at, **values}
    if new_order:
        charge, created = Charge.objects.create(dr_charge_id=data["id"], **defaults), True
    else:
        # A charge is created only under its order's lock (order_upsert holds it; so do the charge events).
        charge, created = get_or_create_under_lock(Charge.objects.all(), dr_charge_id=data["id"], defaults=defaults)
    if not created:  # a new charge was written whole
        if charge.dr_updated_at and updated_at and updated_at < charge.dr_updated_at:
            return charge
        for field, value in values.items():
            setattr(charge, field, value)
        charge.currency = data.get("currency") or charge.currency
        charge.dr_updated_at = updated_at or charge.dr_updated_at
        charge.save()
    for kind, key in (
        (ChargeOperation.Kind.CAPTURE, "captures"),
        (ChargeOperation.Kind.CANCEL, "cancels"),
        (ChargeOperation.Kind.REFUND, "refunds"),
    ):
        for operation in data.get(key) or []:
            ChargeOperation.objects.update_or_create(
                charge=charge,
                kind=kind,
                dr_id=str(operation.get("id")),
                defaults={
                    "amount": money(operation.get("amount")),
                    "state": operation.get("state") or "",
                    "failure_code": operation.get("failureCode") or "",
                    "failure_message": operation.get("failureMessage") or "",
                    "fulfillment_id": operation.get("fulfillmentId") or "",
                    "dr_created_at": dr_time(operation.get("createdTime")),
                },
            )
    if not created or any(data.get(key) for key in ("captures", "cancels", "refunds")):
        _order_amounts_follow_charges(order)  # a new charge with no operations moves no amount
    return charge


def _order_amounts_follow_charges(order: Order) -> None:
    """The order's running amounts from its charges' completed operations, so the page does not
    say "captured 0.00" between a charge event and DR's next order event. They only grow: DR's own
    figures, when an order event brings them, may include what our charges do not show yet."""
    totals = {
        row["kind"]: row["total"]
        for row in ChargeOperation.objects.filter(charge__order=order, state="complete")
        .values("kind")
        .annotate(total=Sum("amount"))
    }
    changed = []
    for field, kind in (
        ("captured_amount", ChargeOperation.Kind.CAPTURE),
        ("cancelled_amount", ChargeOperation.Kind.CANCEL),
        ("refunded_amount", ChargeOperation.Kind.REFUND),
    ):
        total = totals.get(kind) or Decimal("0")
        if total > getattr(order, field):
            setattr(order, field, total)
            changed.append(field)
    if changed:
        order.save(update_fields=[*changed, "updated_at"])

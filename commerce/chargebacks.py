"""Chargebacks: money the customer's bank took back after a dispute (``order.chargeback``).

DR's page order-management/returns-and-refunds-1/disputes-and-chargebacks.md says: "When Digital
River processes and completes a chargeback, we create a sales transaction with a type of
fraud_chargeback or non_fraud_chargeback and send you both a sales_transaction.created and
order.chargeback event", and that the order's availableToRefundAmount "is either reduced or drops
to 0". No page shows the event's payload, so both readings are handled:

- ``data.object`` is the **order** (as in every other ``order.*`` event): it is mirrored, and the
  chargeback is recorded under the event's id with the amount the order says DR took back (the
  drop of ``availableToRefundAmount``, from ``previousAttributes`` or from our mirror);
- ``data.object`` is the **sales transaction** ``{id, type, amount, currency, orderId, …}``
  (the spec's SalesTransaction schema): recorded under its id, with its amount.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from core.types import JSONObject

from .models import Chargeback, Order
from .services import dr_time, money, order_locked, order_upsert

CHARGEBACK_TYPES = ("fraud_chargeback", "non_fraud_chargeback")


def is_sales_transaction(data: JSONObject) -> bool:
    """A sales transaction names its order in ``orderId``; an order has items and a payment."""
    if data.get("type") in CHARGEBACK_TYPES:
        return True
    return bool(data.get("orderId")) and not ({"items", "payment", "state"} & data.keys())


def chargeback_record(
    *, event_id: str, data: JSONObject, previous: JSONObject | None = None, at: datetime | None = None
) -> Chargeback:
    """Record the chargeback an ``order.chargeback`` event reports, once however often it comes."""
    if is_sales_transaction(data):
        return _from_sales_transaction(event_id=event_id, data=data, at=at)
    return _from_order(event_id=event_id, data=data, previous=previous or {}, at=at)


def _from_sales_transaction(*, event_id: str, data: JSONObject, at: datetime | None) -> Chargeback:
    dr_order_id = str(data["orderId"])
    with order_locked(dr_order_id=dr_order_id) as order:
        chargeback, _ = Chargeback.objects.get_or_create(
            dr_id=str(data.get("id") or event_id),
            defaults={
                "order": order,
                "kind": str(data.get("type") or ""),
                # A sales transaction that takes money back may carry a negative amount.
                "amount": abs(money(data.get("amount"))),
                "currency": str(data.get("currency") or order.currency),
                "dr_created_at": dr_time(data.get("createdTime")) or at,
                "raw": data,
            },
        )
    return chargeback


@transaction.atomic
def _from_order(*, event_id: str, data: JSONObject, previous: JSONObject, at: datetime | None) -> Chargeback:
    # The order's lock first (order_upsert takes the same row), then what our mirror said before.
    mirror = Order.objects.select_for_update().filter(dr_order_id=str(data["id"])).first()
    before = _before(mirror, data, previous)
    order = order_upsert(data=data)
    after = money(data.get("availableToRefundAmount"))
    taken = max(Decimal("0"), before - after) if before is not None else Decimal("0")
    chargeback, _ = Chargeback.objects.get_or_create(
        dr_id=event_id,
        defaults={
            "order": order,
            "amount": taken,
            "currency": order.currency,
            "dr_created_at": at,
            "raw": {"availableToRefundAmount": str(after), "before": str(before) if before is not None else None},
        },
    )
    return chargeback


def _before(mirror: Order | None, data: JSONObject, previous: JSONObject) -> Decimal | None:
    """What was available to refund before the chargeback: DR's previousAttributes when the event
    has them, else our mirror, unless the event's order is older than our mirror (out of order:
    the difference would mean nothing). A duplicate finds the mirror already updated: no drop."""
    if previous.get("availableToRefundAmount") is not None:
        return money(previous["availableToRefundAmount"])
    if mirror is None:
        return None
    updated = dr_time(data.get("updatedTime"))
    if mirror.dr_updated_at and updated and updated < mirror.dr_updated_at:
        return None
    return mirror.available_to_refund_amount


def chargeback_sentence(chargeback: Chargeback) -> str:
    """ "Chargeback: 25.00 USD taken back by the customer's bank", as the page and timeline say it."""
    why = {"fraud_chargeback": " (reported as fraud)", "non_fraud_chargeback": " (not reported as fraud)"}
    kind = why.get(chargeback.kind, "")
    if chargeback.amount:
        return f"Chargeback: {chargeback.amount} {chargeback.currency} taken back by the customer's bank{kind}"
    return f"Chargeback: the customer's bank took money back{kind}; DR's event did not say how much"

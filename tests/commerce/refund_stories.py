"""A captured order to refund: DR's order fixture, fulfilled and captured in full (70.17 USD: two
Distributed widgets and one Managed widget at 21.59 each with tax, and 5.40 of shipping with its tax)."""

from django.db import transaction
from django.db.models import F

from commerce.models import Order, OrderLine, Refund
from commerce.services import lock_order, order_upsert
from fulfillment.ledger import ledger_recount
from tests.conftest import fixture

ORDER = "231388420336"
WIDGETS = "143040030336"  # 2 Distributed widgets, 21.59 each with tax
MANAGED = "143040040336"  # 1 Managed widget, 21.59 with tax


def captured_order(*, captured: str = "70.17", **changes) -> Order:
    data = fixture("order.json")
    data.update(
        state="fulfilled",
        capturedAmount=float(captured),
        availableToRefundAmount=float(captured),
        updatedTime="2026-11-20T12:00:00Z",
    )
    charge = data["payment"]["charges"][0]
    charge.update(captured=True, state="complete")
    if float(captured):
        charge["captures"] = [
            {"id": "cap-1", "createdTime": "2026-11-20T12:00:00Z", "amount": float(captured), "state": "complete"}
        ]
    data.update(changes)
    order = order_upsert(data=data)
    if float(captured):
        OrderLine.objects.filter(order=order).update(fulfilled=F("quantity"), shipped=F("quantity"))
    with transaction.atomic():
        ledger_recount(order=lock_order(order=order))
    return Order.objects.get(pk=order.pk)


def refund_event(name: str, refund: Refund, **changes) -> dict:
    """The object of one of DR's documented refund events, as DR would send it about ``refund``."""
    data = fixture(name)["data"]["object"]
    data.update(metadata={"refundReference": str(refund.reference)}, **changes)
    return data

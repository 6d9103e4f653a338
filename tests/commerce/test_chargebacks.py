"""order.chargeback: DR's page (order-management/returns-and-refunds-1/disputes-and-chargebacks.md)
says DR creates a sales transaction of type fraud_chargeback / non_fraud_chargeback and sends
order.chargeback, and that the order's availableToRefundAmount drops, but shows no payload. Both
readings are handled: the event's object is the order, or it is the sales transaction."""

from decimal import Decimal

import pytest
import responses

from commerce.chargebacks import chargeback_sentence
from commerce.models import Chargeback, Order
from tests.conftest import dr_order
from tests.documents_support import DR

pytestmark = pytest.mark.django_db

SALES_TRANSACTION = {
    # The spec's SalesTransaction (id, createdTime, currency, amount, type, orderId, …).
    "id": "0206802584_000010_3700005504",
    "createdTime": "2026-11-25T09:00:00Z",
    "currency": "USD",
    "amount": 25.0,
    "type": "non_fraud_chargeback",
    "orderId": "231388420336",
    "liveMode": False,
}


@pytest.fixture
def captured_order(accepted_order, deliver):
    """The order fully captured: 70.17 available to refund."""
    deliver(
        "order.fulfilled",
        dr_order(
            state="fulfilled",
            updatedTime="2026-11-21T10:00:00.000Z",
            capturedAmount=70.17,
            availableToRefundAmount=70.17,
        ),
    )
    return Order.objects.get()


def chargeback_order(**changes) -> dict:
    values = {
        "state": "complete",
        "updatedTime": "2026-11-25T09:00:00.000Z",
        "capturedAmount": 70.17,
        "availableToRefundAmount": 45.17,
    }
    return dr_order(**{**values, **changes})


def test_reading_one_the_object_is_the_order(captured_order, deliver):
    """The order is mirrored and the drop of availableToRefundAmount is what the bank took back."""
    event = deliver("order.chargeback", chargeback_order())
    chargeback = Chargeback.objects.get()
    assert chargeback.dr_id == event.dr_event_id
    assert (chargeback.amount, chargeback.currency, chargeback.order) == (Decimal("25.00"), "USD", captured_order)
    order = Order.objects.get()
    assert order.available_to_refund_amount == Decimal("45.17") and order.state == Order.State.COMPLETE
    assert chargeback_sentence(chargeback) == "Chargeback: 25.00 USD taken back by the customer's bank"


def test_reading_one_recorded_once_when_delivered_twice(captured_order, post_event):
    from tests.conftest import make_event

    event = make_event("order.chargeback", chargeback_order())
    post_event(event)
    post_event(event)
    assert Chargeback.objects.get().amount == Decimal("25.00")


def test_reading_one_with_previous_attributes(accepted_order, post_event):
    """An envelope's data.previousAttributes says the amount before, whatever our mirror held."""
    from tests.conftest import make_event

    event = make_event("order.chargeback", chargeback_order())
    event["data"]["previousAttributes"] = {"availableToRefundAmount": 70.17}
    post_event(event)
    assert Chargeback.objects.get().amount == Decimal("25.00")


def test_reading_one_without_a_known_amount_still_records_it(captured_order, deliver):
    """A newer snapshot already mirrored: the event cannot say how much; it is recorded and said so."""
    deliver("order.complete", chargeback_order(updatedTime="2026-11-26T09:00:00.000Z"))
    deliver("order.chargeback", chargeback_order())
    chargeback = Chargeback.objects.get()
    assert chargeback.amount == Decimal("0")
    assert "did not say how much" in chargeback_sentence(chargeback)


def test_reading_two_the_object_is_the_sales_transaction(captured_order, deliver):
    for _ in range(2):
        deliver("order.chargeback", SALES_TRANSACTION)
    chargeback = Chargeback.objects.get()
    assert chargeback.dr_id == SALES_TRANSACTION["id"]
    assert (chargeback.kind, chargeback.amount, chargeback.order) == (
        "non_fraud_chargeback",
        Decimal("25.00"),
        captured_order,
    )
    assert chargeback_sentence(chargeback) == (
        "Chargeback: 25.00 USD taken back by the customer's bank (not reported as fraud)"
    )


def test_reading_two_a_negative_amount_is_money_taken_back(captured_order, deliver):
    deliver("order.chargeback", {**SALES_TRANSACTION, "amount": -25.0, "type": "fraud_chargeback"})
    chargeback = Chargeback.objects.get()
    assert chargeback.amount == Decimal("25.00") and chargeback.kind == "fraud_chargeback"


def test_reading_two_for_an_order_we_never_saw_fetches_it(catalog, deliver, dr_api):
    dr_api.add(responses.GET, f"{DR}/orders/231388420336", json=chargeback_order())
    deliver("order.chargeback", SALES_TRANSACTION)
    assert Chargeback.objects.get().order.dr_order_id == "231388420336"

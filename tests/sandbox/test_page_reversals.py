"""The sandbox page's reversal buttons: fulfillment returns, refused parcels, refunds, disputes, chargebacks."""

from decimal import Decimal

from django.db import transaction

from sandbox.models import Event, FulfillmentOrder, FulfillmentReturn, Order, Refund
from sandbox.services import refunds, warehouse
from sandbox.services.orders import Line, order_place

from .test_page import act, pushed  # noqa: F401  (the fixture)


def shipped(card=""):
    order = order_place(lines=[Line("orch-1", 3)], card=card or "4111111111111111")
    managed = FulfillmentOrder.objects.get(order=order, managed=True)
    line = managed.items.get()
    warehouse.warehouse_ship(fulfillment_order_id=managed.dr_id, items=[(line.dr_id, 3)])
    return order, managed, line


def test_the_page_shows_the_new_sections(admin_client, pushed):  # noqa: F811
    shipped()
    page = admin_client.get("/sandbox/").content.decode()
    for text in ("Fulfillment returns waiting for the warehouse", "Refunds waiting for the bank", "4000000000004111"):
        assert text in page
    assert "Parcel refused (warehouse return)" in page and "Open dispute" in page and "Chargeback" in page


def test_place_order_with_a_test_card(admin_client, pushed):  # noqa: F811
    act(admin_client, "place-order", lines="dist-1:1", card="4556602564240839")
    source = Order.objects.get().sources.get()
    assert source.data["creditCard"]["lastFourDigits"] == "0839"
    assert act(admin_client, "place-order", lines="dist-1:1", card="1234")[0].startswith("place-order: ")


def test_fulfillment_return_buttons(admin_client, pushed):  # noqa: F811
    from sandbox.services.returns import _create, _wanted_lines  # the API's path, without HTTP

    order, managed, line = shipped()
    with transaction.atomic():  # the rows are locked, as the API's path does (PostgreSQL insists)
        request = _create(managed, _wanted_lines(managed, [(line.dr_id, 2)]), upstream_id=order.dr_id, reason="r")
    assert "Fulfillment return approved" in act(admin_client, "approve-return", return_id=request.dr_id)[0]
    act(admin_client, "receive-return", return_id=request.dr_id, **{f"accept_{line.dr_id}": "1"})
    request.refresh_from_db()
    line.refresh_from_db()
    assert request.state == "accepted" and (line.shipped, line.returned) == (2, 1)
    assert act(admin_client, "reject-return", return_id=request.dr_id)[0].startswith("reject-return: ")
    act(admin_client, "refused-parcel", fulfillment_order_id=managed.dr_id, item_id=line.dr_id, quantity=2)
    warehouse_return = FulfillmentReturn.objects.get(type="warehouse")
    assert warehouse_return.state == "accepted"


def test_refund_dispute_and_chargeback_buttons(admin_client, pushed):  # noqa: F811
    order, _, _ = shipped()
    refund = refunds.refund_issue(order=Order.objects.get(pk=order.pk), kind="shipping", percent=Decimal("100"))
    act(admin_client, "complete-refund", refund_id=refund.dr_id)
    assert Refund.objects.get(pk=refund.pk).state == "succeeded"
    second = refunds.refund_issue(order=Order.objects.get(pk=order.pk), amount=Decimal("1.00"))
    act(admin_client, "fail-refund", refund_id=second.dr_id, reason="frozen account")
    assert Refund.objects.get(pk=second.pk).failure_reason == "frozen account"
    act(admin_client, "open-dispute", order_id=order.dr_id)
    assert Order.objects.get(pk=order.pk).state == "dispute"
    act(admin_client, "chargeback", order_id=order.dr_id, amount="10")
    act(admin_client, "resolve-dispute", order_id=order.dr_id)
    order.refresh_from_db()
    assert order.state == "complete" and str(order.chargeback_amount) == "10.00"
    seen = set(Event.objects.filter(order_id=order.dr_id).values_list("type", flat=True))
    assert {"order.dispute", "order.chargeback", "order.dispute.resolved", "refund.failed", "refund.complete"} <= seen
    assert act(admin_client, "chargeback", order_id=order.dr_id, amount="10000")[0].startswith("chargeback: ")

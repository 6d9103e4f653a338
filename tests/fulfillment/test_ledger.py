"""Each line's ledger counts only money that moved: captures are matched to their fulfillment
(``captures[].fulfillmentId``, DR's charge object), and the attention item a failed capture raised is
cleared by the capture that later succeeds."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from commerce.models import AttentionItem, Order, OrderLine
from fulfillment.ledger import ledger_recount
from fulfillment.services import fulfillment_accepted
from tests.conftest import fixture
from tests.fulfillment.order_stories import order_data, order_with_partner_gadgets

pytestmark = pytest.mark.django_db

ORDER = "231388420777"
GADGETS = f"{ORDER}-1"  # 3 partner gadgets: 19.99 + 1.60 tax for the three


def capture_2_gadgets() -> None:
    """Our POST /fulfillments for 2 gadgets, accepted by DR as fulfillment ful-1."""
    items = [{"itemId": GADGETS, "quantity": 2}]
    fulfillment_accepted(payload={"orderId": ORDER, "items": items}, result={"id": "ful-1", "items": items})


def charge(*captures: dict) -> dict:
    data = fixture("event_order_charge_capture_failed.json")["data"]["object"]
    return {**data, "id": f"chg-{ORDER}", "orderId": ORDER, "captures": list(captures)}


FAILED = {"id": "cap-1", "amount": 43.18, "state": "failed", "fulfillmentId": "ful-1", "failureCode": "declined"}
COMPLETE = {"id": "cap-2", "amount": 43.18, "state": "complete", "fulfillmentId": "ful-1"}


def gadgets() -> OrderLine:
    return OrderLine.objects.get(dr_item_id=GADGETS)


def test_a_failed_capture_leaves_the_units_fulfilled_but_not_captured(deliver):
    order_with_partner_gadgets(dr_order_id=ORDER)
    capture_2_gadgets()
    deliver("order.charge.capture.failed", charge(FAILED))

    line = gadgets()
    assert (line.fulfilled, line.captured, line.capture_failed) == (2, 0, 2)
    assert line.captured_amount == Decimal("0.00")
    order = Order.objects.get(dr_order_id=ORDER)
    assert order.capture_failed
    [item] = AttentionItem.objects.filter(order=order, kind="capture_failed", cleared_at__isnull=True)
    assert "declined" in item.reason


def test_the_capture_that_succeeds_later_counts_and_clears_the_attention_item(deliver):
    order_with_partner_gadgets(dr_order_id=ORDER)
    capture_2_gadgets()
    deliver("order.charge.capture.failed", charge(FAILED))
    deliver("order.charge.capture.complete", charge(FAILED, COMPLETE))

    line = gadgets()
    assert (line.captured, line.capture_failed, line.captured_amount) == (2, 0, Decimal("14.39"))
    order = Order.objects.get(dr_order_id=ORDER)
    assert not order.capture_failed
    [item] = AttentionItem.objects.filter(order=order, kind="capture_failed")
    assert item.cleared_at is not None and "captured" in item.cleared_because


def test_a_capture_reported_before_our_fulfillment_is_known_counts_once_it_is(deliver):
    """Out of order: DR's capture event can arrive before the answer to our POST /fulfillments."""
    order_with_partner_gadgets(dr_order_id=ORDER)
    deliver("order.charge.capture.complete", charge(COMPLETE))
    assert gadgets().captured == 0  # nothing fulfilled yet: nothing is claimed
    capture_2_gadgets()
    assert (gadgets().captured, gadgets().captured_amount) == (2, Decimal("14.39"))


def test_a_line_claims_what_its_units_cost_and_the_shipping_stays_on_the_order():
    order = order_with_partner_gadgets(dr_order_id=ORDER)
    widget = f"{ORDER}-0"
    items = [{"itemId": widget, "quantity": 1}, {"itemId": GADGETS, "quantity": 1}]
    fulfillment_accepted(payload={"orderId": ORDER, "items": items}, result={"id": "ful-2", "items": items})
    from commerce.services import charge_upsert

    charge_upsert(
        order=order, data=charge({"id": "cap-3", "amount": 43.19, "state": "complete", "fulfillmentId": "ful-2"})
    )
    ledger_recount(order=order)
    amounts = {line.dr_item_id: line.captured_amount for line in order.lines.all()}
    # 1 of 2 widgets at (39.98 + 3.20) / 2, 1 of 3 gadgets at (19.99 + 1.60) / 3; the rest is shipping.
    assert amounts == {widget: Decimal("21.59"), GADGETS: Decimal("7.20")}


def test_a_capture_worth_less_than_its_goods_is_shared_to_the_cent():
    order = order_with_partner_gadgets(dr_order_id=ORDER)
    widget = f"{ORDER}-0"
    items = [{"itemId": widget, "quantity": 1}, {"itemId": GADGETS, "quantity": 1}]
    fulfillment_accepted(payload={"orderId": ORDER, "items": items}, result={"id": "ful-2", "items": items})
    from commerce.services import charge_upsert

    charge_upsert(
        order=order, data=charge({"id": "cap-3", "amount": 10.01, "state": "complete", "fulfillmentId": "ful-2"})
    )
    ledger_recount(order=order)
    amounts = {line.dr_item_id: line.captured_amount for line in order.lines.all()}
    assert sum(amounts.values()) == Decimal("10.01")
    assert amounts[widget] > amounts[GADGETS] > 0


def test_captures_naming_no_fulfillment_buy_whole_units_only():
    """DR's older charge objects carry no fulfillmentId: the money is given to fulfilled units in
    line order, whole units only; what is left stays on the order, not on a line."""
    order = order_with_partner_gadgets(dr_order_id=ORDER)
    capture_2_gadgets()
    from commerce.services import charge_upsert

    charge_upsert(order=order, data=charge({"id": "cap-4", "amount": 10.00, "state": "complete"}))
    ledger_recount(order=order)
    line = gadgets()
    assert (line.captured, line.captured_amount) == (1, Decimal("7.20"))  # (19.99 + 1.60) / 3 a unit


def test_the_database_refuses_a_line_refunded_above_its_capture():
    order_data_ = order_data(dr_order_id=ORDER)
    from commerce.services import order_upsert

    order = order_upsert(data=order_data_)
    line = order.lines.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.filter(pk=line.pk).update(refunded_amount=Decimal("1.00"))


def test_the_database_refuses_more_returned_than_fulfilled():
    from commerce.services import order_upsert

    order = order_upsert(data=order_data(dr_order_id=ORDER))
    line = order.lines.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.filter(pk=line.pk).update(returned=1)

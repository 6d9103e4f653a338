"""Refund plans and their execution: what can still be refunded, what DR is asked (the body of
POST /refunds as DR's OpenAPI file and issuing-refunds.md document it), and the refusals in words."""

from decimal import Decimal

import pytest
import responses
from django.db import IntegrityError, transaction

from commerce.models import Order, OrderLine, Refund
from commerce.refunds import (
    CREATE_REFUND,
    InvalidRefund,
    RefundRefused,
    refund_available,
    refund_execute,
    refund_plan,
    refund_request,
)
from digitalriver.models import Instruction
from tests.commerce.refund_stories import MANAGED, ORDER, WIDGETS, captured_order

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]


@pytest.fixture
def order():
    return captured_order()


def test_what_can_still_be_refunded_comes_from_the_captures(order):
    available = refund_available(order=order)
    assert available.amount == Decimal("70.17")
    assert available.shipping == Decimal("5.40")
    assert (available.lines[WIDGETS].units, available.lines[WIDGETS].amount) == (2, Decimal("43.18"))
    assert (available.lines[MANAGED].units, available.lines[MANAGED].amount) == (1, Decimal("21.59"))


def test_dr_figure_is_taken_when_it_is_smaller(order):
    Order.objects.filter(pk=order.pk).update(raw={**order.raw, "availableToRefundAmount": 50.0})
    assert refund_available(order=Order.objects.get(pk=order.pk)).amount == Decimal("50.00")


def test_a_refund_of_an_amount_is_queued_with_our_reference_in_metadata(order):
    plan = refund_plan(order=order, reason="late delivery", amount=Decimal("12.50"))
    assert plan.refusal == ""
    assert plan.body == {"orderId": ORDER, "currency": "USD", "reason": "late delivery", "amount": 12.5}
    assert plan.headline == f"Refund 12.50 USD to Visa •••• 1111 on order {ORDER}"
    refund = refund_execute(plan=plan)
    assert (refund.state, refund.kind, refund.amount) == (Refund.State.REQUESTED, Refund.Kind.AMOUNT, Decimal("12.50"))
    instruction = Instruction.objects.get(kind=CREATE_REFUND)
    assert refund.instruction == instruction
    assert instruction.payload == {**plan.body, "metadata": {"refundReference": str(refund.reference)}}
    # Held until DR says otherwise: it is no longer available, but not refunded either.
    assert refund_available(order=order).amount == Decimal("57.67")
    assert Order.objects.get(pk=order.pk).refunded_amount == 0


def test_a_percentage_moves_that_share_of_what_is_left(order):
    plan = refund_plan(order=order, reason="goodwill", percent=Decimal("50"))
    assert plan.body["percent"] == 50 and "amount" not in plan.body
    assert plan.amount == Decimal("35.09")  # 70.17 x 50 %, rounded half up as DR's example (27.01 → 13.51)
    assert refund_execute(plan=plan).percent == Decimal("50")


def test_units_are_refunded_in_full_product_and_tax(order):
    plan = refund_plan(order=order, reason="broken", items=[(MANAGED, 1)])
    assert plan.body["items"] == [{"itemId": MANAGED, "quantity": 1, "percent": 100}]
    assert plan.amount == Decimal("21.59")
    assert plan.headline == "Refund 21.59 USD to Visa •••• 1111 for 1 \u00d7 Managed widget"
    refund = refund_execute(plan=plan)
    [line] = refund.lines.all()
    assert (line.order_line.dr_item_id, line.quantity, line.amount) == (MANAGED, 1, Decimal("21.59"))
    again = refund_plan(order=order, reason="broken", items=[(MANAGED, 1)])
    assert again.refusal == (
        "Cannot refund that many units. Managed widget: asked 1, 0 of 1 captured unit can still be refunded"
        " (1 already refunded or being refunded)."
    )


def test_more_units_than_captured_are_refused(order):
    plan = refund_plan(order=order, reason="broken", items=[(WIDGETS, 3)])
    assert "Distributed widget: asked 3, 2 of 2 captured units can still be refunded" in plan.refusal


def test_the_shipping_is_refunded_once(order):
    plan = refund_plan(order=order, reason="late", type="shipping")
    assert plan.body == {"orderId": ORDER, "currency": "USD", "reason": "late", "type": "shipping", "percent": 100}
    assert plan.amount == Decimal("5.40")
    refund_execute(plan=plan)
    assert "Nothing of the shipping" in refund_plan(order=order, reason="late", type="shipping").refusal


def test_over_the_available_amount_is_refused_before_any_call(order):
    with responses.RequestsMock() as dr:  # any call to DR would fail the test
        plan = refund_plan(order=order, reason="too much", amount=Decimal("80"))
        assert plan.refusal == f"Only 70.17 USD of order {ORDER} can still be refunded; you asked 80.00 USD."
        with pytest.raises(RefundRefused):
            refund_execute(plan=plan)
        assert len(dr.calls) == 0
    assert not Instruction.objects.exists() and not Refund.objects.exists()


def test_nothing_captured_is_refused():
    order = captured_order(captured="0")
    assert "Nothing of order" in refund_plan(order=order, reason="x", amount=Decimal("1")).refusal
    assert "captured yet" in refund_plan(order=order, reason="x", amount=Decimal("1")).refusal


def test_in_dispute_is_refused_with_the_lock(order):
    Order.objects.filter(pk=order.pk).update(dispute_open=True)
    order = Order.objects.get(pk=order.pk)
    assert refund_plan(order=order, reason="x", amount=Decimal("1")).refusal == order.dispute_lock


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"amount": Decimal("1"), "percent": Decimal("5")}, "percent"),
        ({}, "amount"),
        ({"amount": Decimal("-1")}, "amount"),
        ({"amount": Decimal("1.005")}, "amount"),
        ({"percent": Decimal("-3")}, "percent"),
        ({"items": [(MANAGED, 0)]}, "items"),
        ({"items": []}, "items"),
        ({"type": "everything"}, "type"),
    ],
)
def test_malformed_requests_name_the_field(order, arguments, field):
    with pytest.raises(InvalidRefund) as raised:
        refund_plan(order=order, reason="x", **arguments)
    assert raised.value.field == field


@pytest.mark.parametrize("percent", ["0", "100.5"])
def test_a_percentage_outside_drs_range_is_refused(order, percent):
    plan = refund_plan(order=order, reason="x", percent=Decimal(percent))
    assert plan.refusal == f"A refund percentage is between 0.01 and 100; you asked {percent}%."


def test_unknown_item_is_refused(order):
    assert refund_plan(order=order, reason="x", items=[("nope", 1)]).refusal == f"Order {ORDER} has no item nope."


def test_a_plan_that_changed_under_the_lock_is_not_executed(order):
    plan = refund_plan(order=order, reason="x", percent=Decimal("10"))
    refund_execute(plan=refund_plan(order=order, reason="other", amount=Decimal("5")))
    with pytest.raises(RefundRefused, match="changed since this refund was shown"):
        refund_execute(plan=plan)
    assert Refund.objects.count() == 1


def test_a_return_is_refunded_once(order):
    first = refund_request(order=order, items=[(WIDGETS, 1)], reason="returned", for_return="ret_1")
    again = refund_request(order=order, items=[(WIDGETS, 1)], reason="returned", for_return="ret_1")
    assert first is not None and again == first
    assert Refund.objects.filter(for_return="ret_1").count() == 1


def test_a_return_that_cannot_be_refunded_flags_the_order(order):
    Order.objects.filter(pk=order.pk).update(dispute_open=True)
    order = Order.objects.get(pk=order.pk)
    assert refund_request(order=order, items=[(WIDGETS, 1)], reason="returned", for_return="ret_2") is None
    order.refresh_from_db()
    assert order.refund_failed
    assert not Refund.objects.exists()


def test_the_database_refuses_a_line_refunded_above_its_capture(order):
    line = order.lines.get(dr_item_id=MANAGED)
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderLine.objects.filter(pk=line.pk).update(refunded_amount=line.captured_amount + Decimal("0.01"))

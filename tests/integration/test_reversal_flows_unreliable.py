"""The reversal flows again on a bad network: every new POST (``/fulfillment-returns``, ``/returns``,
``/returns/{id}``, ``/refunds``) loses its answer once after DR took it, and every event is delivered
twice, shuffled. Each ends with exactly one effect at DR (the sandbox's tables) and in our records."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.models import Sku
from commerce.models import Document, Order, Refund
from commerce.refunds import refund_request
from digitalriver.models import ApiCall
from fulfillment.models import Notification, Return
from sandbox.delivery import deliver_due
from sandbox.models import Delivery
from sandbox.models import FulfillmentReturn as SandboxFulfillmentReturn
from sandbox.models import Return as SandboxReturn
from sandbox.services.control import control_update
from sandbox.services.returns import fulfillment_return_approve, fulfillment_return_receive

from .reversal_support import (
    assert_money_agrees_with_dr,
    bank_answers_at_once,
    fresh,
    item_id,
    person,
    place,
    posts,
    refunds_at_dr,
    ship,
)

pytestmark = pytest.mark.django_db(transaction=True)


HELD_BACK_SECONDS = 30


@pytest.fixture
def bad_network(flow):
    """Every event twice, each batch shuffled, a third held back to arrive after later ones; the bank
    answers refunds at once. ``flow.settle`` also lets the clock run past the held-back events."""
    bank_answers_at_once()
    control_update({"duplicate_rate": 1.0, "reorder": True, "delay_rate": 0.3, "delay_seconds": HELD_BACK_SECONDS})
    settle_now = flow.settle

    def settle(rounds: int = 20) -> None:
        for _ in range(rounds):
            settle_now()
            if not Delivery.objects.filter(state=Delivery.State.PENDING).exists():
                return
            deliver_due(now=timezone.now() + timedelta(seconds=HELD_BACK_SECONDS + 1))
        raise AssertionError("the held-back events were never delivered")

    flow.settle = settle


@contextmanager
def answer_lost(path: str) -> Iterator[None]:
    """DR takes the calls made inside the block, then answers 503 (the sender cannot know it took
    them); the block must make exactly one ``POST <path>`` and it must have been lost."""
    before = posts(path)
    control_update({"error_rate": 1.0, "error_statuses": [503], "error_after_processing": 1.0})
    try:
        yield
    finally:
        control_update({"error_rate": 0.0, "error_after_processing": 0.0})
    [lost] = ApiCall.objects.filter(method="POST", path=path).order_by("-pk")[:1]
    assert posts(path) == before + 1 and lost.status == 503 and lost.error_code == "sandbox_503"


def test_a_warehouse_return_and_its_refund_each_happen_once_despite_lost_answers_and_replayed_events(flow, bad_network):
    flow.sku("dist-a")
    order = place(flow, ("dist-a", 2))
    ship(flow, order, "dist-a", 2)
    agent = person("agent", "Customer service")
    line = order.lines.get()

    with answer_lost("/fulfillment-returns"):
        response = agent.post(
            f"/api/orders/{order.dr_order_id}/returns/",
            {"items": [{"item_id": line.dr_item_id, "quantity": 1}]},
            format="json",
        )
        assert response.status_code == 202, response.content
    flow.settle()
    [at_warehouse] = SandboxFulfillmentReturn.objects.filter(fulfillment_order__upstream_id=order.dr_order_id)
    [ret] = Return.objects.filter(order=order)
    assert ret.dr_return_id == at_warehouse.dr_id and ret.state == Return.State.CREATED
    assert ret.instruction is not None and ret.instruction.state == "done"

    fulfillment_return_approve(return_id=at_warehouse.dr_id)
    flow.settle()
    fulfillment_return_receive(return_id=at_warehouse.dr_id)
    flow.settle()
    ret.refresh_from_db()
    assert ret.state == Return.State.ACCEPTED and ret.lines.get().quantity_accepted == 1
    assert Notification.objects.filter(order=order, kind=Notification.Kind.RETURN_APPROVED).count() == 1

    with answer_lost("/refunds"):
        refund = refund_request(
            order=fresh(order), items=[(line.dr_item_id, 1)], reason="Back", for_return=ret.dr_return_id
        )
    assert refund is not None
    flow.settle()

    assert posts("/fulfillment-returns") == 1 and posts("/refunds") == 1
    assert Return.objects.filter(order=order).count() == 1
    [at_bank] = refunds_at_dr(order)
    [ours] = Refund.objects.filter(order=order)
    assert (ours.pk, ours.dr_refund_id, ours.state) == (refund.pk, at_bank.dr_id, Refund.State.SUCCEEDED)
    line = order.lines.get()
    assert (line.returned, line.return_requested, line.refunded_amount) == (1, 0, ours.refunded_amount)
    assert ours.refunded_amount == ((line.amount + line.tax_amount) / 2).quantize(Decimal("0.01"))
    assert Document.objects.filter(order=order, purpose=Document.Purpose.CREDIT_MEMO).count() == 1
    assert Notification.objects.filter(order=order, kind=Notification.Kind.REFUND_COMPLETED).count() == 1
    assert not fresh(order).refund_failed
    assert_money_agrees_with_dr(order)


def test_a_partner_return_and_its_receipts_each_happen_once_despite_lost_answers_and_replayed_events(flow, bad_network):
    flow.sku("gadget", Sku.FulfillmentModel.THIRD_PARTY)
    order = place(flow, ("gadget", 3))
    agent = person("agent", "Customer service")
    gadget = item_id(order, "gadget")
    shipped = agent.post(
        f"/api/orders/{order.dr_order_id}/shipments/", {"items": [{"item_id": gadget, "quantity": 3}]}, format="json"
    )
    assert shipped.status_code == 202, shipped.content
    flow.settle()

    with answer_lost("/returns"):
        response = agent.post(
            f"/api/orders/{order.dr_order_id}/returns/", {"items": [{"item_id": gadget, "quantity": 2}]}, format="json"
        )
        assert response.status_code == 202, response.content
    flow.settle()
    [at_partner] = SandboxReturn.objects.filter(order__dr_id=order.dr_order_id)
    [ret] = Return.objects.filter(order=order)
    assert ret.dr_return_id == at_partner.dr_id and ret.state == Return.State.CREATED
    received = f"/api/orders/{order.dr_order_id}/returns/{ret.pk}/received/"
    parcel = {"items": [{"item_id": gadget, "quantity": 1}]}

    with answer_lost(f"/returns/{ret.dr_return_id}"):
        assert agent.post(received, parcel, format="json").status_code == 202
    flow.settle()
    ret.refresh_from_db()
    assert ret.lines.get().quantity_accepted == 1 == at_partner.items.get().quantity_accepted
    assert refunds_at_dr(order) == []

    with answer_lost(f"/returns/{ret.dr_return_id}"):
        assert agent.post(received, parcel, format="json").status_code == 202
    flow.settle()

    assert posts("/returns") == 1 and posts(f"/returns/{ret.dr_return_id}") == 2
    ret.refresh_from_db()
    at_partner.refresh_from_db()
    assert ret.state == Return.State.ACCEPTED and at_partner.state == "accepted"
    assert ret.lines.get().quantity_accepted == 2 == at_partner.items.get().quantity_accepted
    [at_bank] = refunds_at_dr(order)
    [ours] = Refund.objects.filter(order=order)
    assert ours.initiated_by_dr and ours.dr_refund_id == at_bank.dr_id and ours.state == Refund.State.SUCCEEDED
    line = order.lines.get()
    assert (line.returned, line.return_requested, line.refunded_amount) == (2, 0, ours.refunded_amount)
    assert Notification.objects.filter(order=order, kind=Notification.Kind.REFUND_COMPLETED).count() == 1
    assert_money_agrees_with_dr(order)


def test_a_refund_whose_answer_was_lost_is_recorded_once_before_and_after_drs_events(flow, bad_network):
    flow.sku("dist-a")
    order = place(flow, ("dist-a", 1))
    ship(flow, order, "dist-a", 1)
    lead = person("lead", "Refunds")

    with answer_lost("/refunds"):
        response = lead.post(
            f"/api/orders/{order.dr_order_id}/refunds/", {"reason": "x", "amount": "4.00"}, format="json"
        )
        assert response.status_code == 202, response.content
    flow.settle()

    [at_bank] = refunds_at_dr(order)
    [ours] = Refund.objects.filter(order=order)
    assert (ours.dr_refund_id, ours.state, ours.refunded_amount) == (
        at_bank.dr_id,
        Refund.State.SUCCEEDED,
        Decimal("4.00"),
    )
    assert ours.instruction is not None and ours.instruction.state == "done"
    assert fresh(order).refunded_amount == Decimal("4.00") and not fresh(order).refund_failed
    assert_money_agrees_with_dr(order)


def test_duplicated_shuffled_events_leave_an_order_and_its_lines_as_dr_has_them(flow, bad_network):
    """Several refunds in a row on the bad network: the order's figures and each line's are DR's."""
    flow.sku("dist-a")
    flow.sku("dist-b")
    order = place(flow, ("dist-a", 2), ("dist-b", 1))
    ship(flow, order, "dist-a", 2)
    ship(flow, order, "dist-b", 1)
    lead = person("lead", "Refunds")
    for body in (
        {"reason": "a", "items": [{"item_id": item_id(order, "dist-a"), "quantity": 1}]},
        {"reason": "b", "items": [{"item_id": item_id(order, "dist-b"), "quantity": 1}]},
        {"reason": "c", "type": "shipping"},
    ):
        assert lead.post(f"/api/orders/{order.dr_order_id}/refunds/", body, format="json").status_code == 202
    flow.settle()

    assert len(refunds_at_dr(order)) == 3 == Refund.objects.filter(order=order, state=Refund.State.SUCCEEDED).count()
    order = fresh(order)
    for line in order.lines.all():
        at_dr_line = sum(
            (
                item.amount
                for refund in refunds_at_dr(order)
                for item in refund.items.all()
                if item.order_item.dr_id == line.dr_item_id and not item.type
            ),
            Decimal("0"),
        )
        assert line.refunded_amount == at_dr_line, line.dr_sku_id
    assert order.state in (Order.State.COMPLETE, Order.State.FULFILLED)
    assert_money_agrees_with_dr(order)

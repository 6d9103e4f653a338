"""Captures DR refused during a dispute are sent again once it is resolved, even when an agent
acknowledged the dispute's attention item meanwhile: that lowers the order's flag while DR still
holds the order in dispute, so the order's state decides (commerce.services.order_upsert_telling)."""

import pytest

from commerce.attention import attention_acknowledge
from commerce.models import Order

from .reversal_support import fresh, place, ship

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refused_capture_is_sent_again_after_the_dispute_even_if_an_agent_acknowledged_it(flow):
    from digitalriver.models import Instruction
    from fulfillment.kinds import POST_FULFILLMENT
    from sandbox.services.disputes import dispute_open, dispute_resolve

    flow.sku("dist-a")
    order = place(flow, ("dist-a", 2))
    dispute_open(order_id=order.dr_order_id)
    flow.settle()
    ship(flow, order, "dist-a", 2)
    [refused] = Instruction.objects.filter(kind=POST_FULFILLMENT, state=Instruction.State.FAILED)
    assert refused.last_error_code == "order_not_submitted"

    order = fresh(order)
    assert order.state == Order.State.DISPUTE and order.dispute_open
    attention_acknowledge(order=order, kind="dispute_open", note="Spoke to the bank", by=None)
    assert fresh(order).state == Order.State.DISPUTE and not fresh(order).dispute_open

    dispute_resolve(order_id=order.dr_order_id)
    flow.settle()
    refused.refresh_from_db()
    assert refused.state == Instruction.State.DONE


def test_the_timeline_says_in_plain_words_that_dr_put_the_order_in_dispute_and_took_it_out(flow):
    from desk.timeline import order_timeline
    from sandbox.services.disputes import dispute_open, dispute_resolve

    flow.sku("dist-a")
    order = place(flow, ("dist-a", 1))
    dispute_open(order_id=order.dr_order_id)
    flow.settle()
    dispute_resolve(order_id=order.dr_order_id)
    flow.settle()

    moves = [entry for entry in order_timeline(order=fresh(order)) if entry.source == "state"]
    assert [entry.sentence for entry in reversed(moves)] == [
        "Order is now accepted (was pending payment)",
        "Order is now in dispute (was accepted)",
        "Order is now accepted (was in dispute)",
    ]
    assert {entry.detail for entry in moves} == {"reported by DR"}
    said = {entry.sentence for entry in order_timeline(order=fresh(order)) if entry.source == "event"}
    assert "DR said: order.dispute — the customer disputed the payment; captures, refunds and returns wait" in said
    assert "DR said: order.dispute.resolved — the dispute is over; held captures go again" in said

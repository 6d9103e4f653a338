"""Attention items are raised by an event, say why and since when, and are cleared by the event
that resolves them or by an agent's note; the order's flag follows its open item."""

import pytest
from django.contrib.auth.models import Group, User

from commerce.attention import AttentionError, attention_acknowledge, attention_raise
from commerce.models import AttentionItem, Order
from commerce.services import order_upsert
from fulfillment.cancellations import cancellation_plan
from tests.conftest import dr_order

pytestmark = pytest.mark.django_db


def test_an_agent_acknowledges_an_item_with_a_note_and_the_next_event_raises_it_again():
    order = order_upsert(data=dr_order())
    agent = User.objects.create_user("agent")
    attention_raise(order=order, kind="cancellation_rejected", reason="The warehouse had shipped it.")
    assert Order.objects.get(pk=order.pk).cancellation_rejected

    with pytest.raises(AttentionError, match="note"):
        attention_acknowledge(order=order, kind="cancellation_rejected", note="  ", by=agent)
    item = attention_acknowledge(order=order, kind="cancellation_rejected", note="Told the customer.", by=agent)

    assert item.cleared_by == agent and "Told the customer." in item.cleared_because
    assert not Order.objects.get(pk=order.pk).cancellation_rejected
    with pytest.raises(AttentionError, match="Nothing is open"):
        attention_acknowledge(order=order, kind="cancellation_rejected", note="again", by=agent)

    attention_raise(order=order, kind="cancellation_rejected", reason="Refused again.")
    assert AttentionItem.objects.filter(order=order, kind="cancellation_rejected").count() == 2
    assert Order.objects.get(pk=order.pk).cancellation_rejected


def test_raising_twice_keeps_one_open_item_with_both_reasons():
    order = order_upsert(data=dr_order())
    attention_raise(order=order, kind="capture_failed", reason="first")
    attention_raise(order=order, kind="capture_failed", reason="second")
    attention_raise(order=order, kind="capture_failed", reason="second")
    [item] = AttentionItem.objects.filter(order=order, kind="capture_failed")
    assert item.reason.splitlines() == ["first", "second"]


def test_a_dispute_is_open_while_dr_says_so_and_locks_cancelling(deliver):
    data = dr_order(state="accepted", updatedTime="2026-11-20T10:00:00Z")
    order = order_upsert(data=data)
    deliver(
        "order.dispute",
        {
            **data,
            "state": "dispute",
            "updatedTime": "2026-11-21T10:00:00Z",
            "stateTransitions": {"dispute": "2026-11-21T10:00:00Z"},
        },
    )
    order.refresh_from_db()
    assert order.dispute_open and order.state == "dispute"
    plan = cancellation_plan(order=order, cancel_all=True)
    assert "in dispute" in plan.refusal

    deliver(
        "order.dispute.resolved",
        {
            **data,
            "state": "accepted",
            "updatedTime": "2026-11-22T10:00:00Z",
            "stateTransitions": {"accepted": "2026-11-22T10:00:00Z"},
        },
    )
    order.refresh_from_db()
    assert not order.dispute_open
    [item] = AttentionItem.objects.filter(order=order, kind="dispute_open")
    assert item.cleared_because == "DR resolved the dispute."


def test_a_resolved_dispute_puts_back_the_state_dr_keeps_its_old_transition_time_for(deliver):
    """DR's own order.dispute.resolved (disputes-and-chargebacks.md) goes back to ``accepted`` with
    ``stateTransitions.accepted`` still the first acceptance's time, older than the dispute."""
    data = dr_order(state="accepted", updatedTime="2026-11-20T10:00:01Z")
    order_upsert(data=data)
    transitions = {**data["stateTransitions"], "dispute": "2026-11-21T10:00:00Z"}
    disputed = {**data, "state": "dispute", "updatedTime": "2026-11-21T10:00:00Z", "stateTransitions": transitions}
    deliver("order.dispute", disputed)
    deliver("order.dispute.resolved", {**disputed, "state": "accepted", "updatedTime": "2026-11-21T10:06:00Z"})
    order = Order.objects.get(dr_order_id=data["id"])
    assert order.state == "accepted" and not order.dispute_open and order.dispute_lock == ""


def test_a_late_dispute_event_does_not_reopen_a_resolved_dispute(deliver):
    data = dr_order(state="accepted", updatedTime="2026-11-20T10:00:00Z")
    order_upsert(data=data)
    resolved = {**data, "state": "accepted", "updatedTime": "2026-11-22T10:00:00Z"}
    disputed = {**data, "state": "dispute", "updatedTime": "2026-11-21T10:00:00Z"}
    deliver("order.dispute.resolved", resolved)
    deliver("order.dispute", disputed)
    assert not Order.objects.get(dr_order_id=data["id"]).dispute_open


def test_a_cancelled_order_clears_what_only_mattered_while_goods_could_ship():
    data = dr_order(state="accepted", updatedTime="2026-11-20T10:00:00Z")
    order = order_upsert(data=data)
    attention_raise(order=order, kind="capture_failed")
    attention_raise(order=order, kind="cancellation_rejected")
    order_upsert(data={**data, "state": "cancelled", "updatedTime": "2026-11-21T10:00:00Z"})
    order.refresh_from_db()
    assert not order.capture_failed and not order.cancellation_rejected
    cleared = AttentionItem.objects.filter(order=order, kind__in=["capture_failed", "cancellation_rejected"])
    assert set(cleared.values_list("cleared_because", flat=True)) == {"The order was cancelled."}


def test_the_payment_method_is_named_as_on_the_card():
    order = order_upsert(data=dr_order())
    assert order.payment_method == "Visa •••• 1111"


def test_the_order_page_shows_since_when_and_what_to_do_and_takes_a_note(client):
    order = order_upsert(data=dr_order())
    attention_raise(order=order, kind="refund_failed", reason="The bank refused: account closed.")
    agent = User.objects.create_user("agent", is_staff=True)
    agent.groups.add(Group.objects.get(name="Customer service"))
    client.force_login(agent)
    page = client.get(f"/admin/commerce/order/{order.pk}/change/").content.decode()
    assert "The bank refused: account closed." in page
    assert "retry the refund" in page and "since " in page

    answer = client.post(
        f"/admin/commerce/order/{order.pk}/acknowledge/", {"kind": "refund_failed", "note": "Paid by bank transfer."}
    )
    assert answer.status_code == 302
    order.refresh_from_db()
    assert not order.refund_failed
    assert "Paid by bank transfer." in AttentionItem.objects.get(order=order, kind="refund_failed").cleared_because

"""Returns of DR-coordinated lines followed through DR's events (fulfillment_return.*), and the rules
that refuse a return before anything is asked of DR.

DR's page: order-management/returns-and-refunds-1/returns/digital-river-coordinated-returns.md
(created → pending with the return address → accepted or rejected; ``type: warehouse`` for a refused
parcel nobody asked to return). Events are delivered to our inbox as DR would.
"""

import pytest

from commerce.models import Order
from digitalriver.models import Instruction
from fulfillment.kinds import CREATE_FULFILLMENT_RETURN
from fulfillment.models import Notification, Return
from fulfillment.returns import (
    InvalidReturn,
    ReturnRefused,
    return_execute,
    return_plan,
    return_refund_offer,
    returnable_units,
)
from tests.conftest import fixture
from tests.fulfillment.returns_at_dr import warehouse_shipped_one

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog", "no_dr")]

WIDGET = "143040030336"  # distributed, 2 ordered
MANAGED = "143040040336"  # orchestrated, nothing shipped


def widget(order):
    return order.lines.get(dr_item_id=WIDGET)


def dr_return(name="fulfillment_return.json", **changes):
    data = fixture(name)
    items = changes.pop("items", None)
    data.update(changes)
    if items is not None:
        data["items"] = [{**data["items"][0], **item} for item in items]
    return data


def start_return(order, units=1):
    [ret] = return_execute(plan=return_plan(order=order, items=[(WIDGET, units)], reason="Too small"))
    return ret


@pytest.fixture
def order(deliver):
    return warehouse_shipped_one(deliver)


def test_a_warehouse_return_goes_created_pending_accepted_and_the_ledger_follows(order, deliver):
    plan = return_plan(order=order, items=[(WIDGET, 1)], reason="Too small")
    assert plan.refusal == ""
    [step] = plan.steps
    assert step.what.startswith("Ask DR's warehouse to take back 1 unit of Distributed widget")
    assert "return address by email once the warehouse approves" in step.what
    assert not Return.objects.exists(), "a plan writes nothing"

    [ret] = return_execute(plan=plan)
    assert ret.state == Return.State.REQUESTED and ret.api == Return.Api.FULFILLMENT_RETURNS
    instruction = Instruction.objects.get(kind=CREATE_FULFILLMENT_RETURN)
    assert instruction.payload == {
        "fulfillmentOrderId": "700412580336",
        "upstreamId": "231388420336",
        "reason": "Too small",
        "items": [{"fulfillmentOrderItemId": "700412590336", "quantity": 1}],
    }
    assert (widget(order).return_requested, widget(order).returned) == (1, 0)

    # DR's return carries no id of ours: it is ours because it asks for exactly our units.
    deliver("fulfillment_return.created", dr_return())
    ret.refresh_from_db()
    assert (ret.state, ret.dr_return_id) == (Return.State.CREATED, "ret_5823594809")
    assert Return.objects.count() == 1

    deliver("fulfillment_return.pending", dr_return("fulfillment_return_pending.json"))
    deliver("fulfillment_return.pending", dr_return("fulfillment_return_pending.json"))  # a duplicate
    ret.refresh_from_db()
    assert ret.state == Return.State.PENDING
    assert ret.location["address"]["line1"] == "10380 Bren Rd W"
    [email] = Notification.objects.filter(kind=Notification.Kind.RETURN_APPROVED)
    assert email.to == "ada@example.com"
    assert "10380 Bren Rd W" in email.body and "1 x Distributed widget" in email.body
    assert return_refund_offer(ret=ret) == [], "nothing to refund before the goods are back"

    deliver(
        "fulfillment_return.accepted", dr_return(state="accepted", items=[{"quantityAccepted": 1, "state": "accepted"}])
    )
    ret.refresh_from_db()
    line = widget(order)
    assert ret.state == Return.State.ACCEPTED
    assert (line.returned, line.return_requested) == (1, 0)
    assert return_refund_offer(ret=ret) == [(WIDGET, 1)]
    assert returnable_units(order=order)[line.pk].quantity == 0


def test_a_refused_parcel_the_warehouse_returns_is_recorded_though_nobody_asked(order, deliver):
    refused = dr_return(id="ret_warehouse_1", type="warehouse", reason="refused by recipient")
    deliver("fulfillment_return.created", refused)
    deliver(
        "fulfillment_return.pending",
        {**refused, "state": "pending", "location": fixture("fulfillment_return_pending.json")["location"]},
    )
    ret = Return.objects.get()
    assert (ret.type, ret.state, ret.requested_by) == (Return.Type.WAREHOUSE, Return.State.PENDING, None)
    assert [(line.order_line.dr_item_id, line.quantity) for line in ret.lines.all()] == [(WIDGET, 1)]
    assert not Notification.objects.filter(kind=Notification.Kind.RETURN_APPROVED).exists(), (
        "the customer has nothing to send back: the parcel is already on its way to the warehouse"
    )
    deliver(
        "fulfillment_return.accepted",
        {
            **refused,
            "state": "accepted",
            "items": [{**refused["items"][0], "quantityAccepted": 1, "state": "accepted"}],
        },
    )
    assert widget(order).returned == 1


def test_a_rejected_return_frees_its_units_for_another(order, deliver):
    ret = start_return(order)
    deliver("fulfillment_return.created", dr_return())
    deliver("fulfillment_return.rejected", dr_return(state="rejected", items=[{"state": "rejected"}]))
    ret.refresh_from_db()
    line = widget(order)
    assert ret.state == Return.State.REJECTED
    assert (line.returned, line.return_requested) == (0, 0)
    assert returnable_units(order=order)[line.pk].quantity == 1


def test_accepted_before_pending_and_created_never_moves_back_and_sends_no_address(order, deliver):
    ret = start_return(order)
    accepted = dr_return(state="accepted", items=[{"quantityAccepted": 1, "state": "accepted"}])
    deliver("fulfillment_return.accepted", accepted)
    deliver("fulfillment_return.pending", dr_return("fulfillment_return_pending.json"))
    deliver("fulfillment_return.created", dr_return())
    deliver("fulfillment_return.accepted", accepted, event_id="another-delivery")
    ret.refresh_from_db()
    assert ret.state == Return.State.ACCEPTED
    assert ret.lines.get().quantity_accepted == 1
    assert widget(order).returned == 1
    assert Return.objects.count() == 1
    assert not Notification.objects.filter(kind=Notification.Kind.RETURN_APPROVED).exists()


def test_units_not_shipped_are_refused_with_the_count_and_the_line(order):
    plan = return_plan(order=order, items=[(MANAGED, 1), (WIDGET, 2)])
    assert "Managed widget: asked for 1, 0 of 1 can be returned now: nothing has shipped yet" in plan.refusal
    assert "Distributed widget: asked for 2, 1 of 2 can be returned now" in plan.refusal
    with pytest.raises(ReturnRefused):
        return_execute(plan=plan)
    assert not Instruction.objects.filter(kind=CREATE_FULFILLMENT_RETURN).exists()


def test_units_already_returned_or_in_an_open_return_are_refused(order, deliver):
    start_return(order)
    assert "already in a return that is still open" in return_plan(order=order, items=[(WIDGET, 1)]).refusal
    deliver(
        "fulfillment_return.accepted", dr_return(state="accepted", items=[{"quantityAccepted": 1, "state": "accepted"}])
    )
    assert "already returned (1 returned)" in return_plan(order=order, items=[(WIDGET, 1)]).refusal


def test_an_order_in_dispute_refuses_returns(order):
    Order.objects.filter(pk=order.pk).update(dispute_open=True)
    order.refresh_from_db()
    plan = return_plan(order=order, items=[(WIDGET, 1)])
    assert plan.refusal == order.dispute_lock
    with pytest.raises(ReturnRefused):
        return_execute(plan=plan)


def test_a_plan_made_stale_by_another_return_is_not_executed(order):
    plan = return_plan(order=order, items=[(WIDGET, 1)])
    start_return(order)
    with pytest.raises(ReturnRefused, match=r"already in a return|changed since"):
        return_execute(plan=plan)
    assert Return.objects.count() == 1


@pytest.mark.parametrize(
    ("items", "reason", "message"),
    [
        ([], "", "say which items"),
        ([("nope", 1)], "", "not a line of this order"),
        ([(WIDGET, 0)], "", "at least 1"),
        ([(WIDGET, 1)], "x" * 65, "at most 64 characters"),
    ],
)
def test_malformed_requests_raise(order, items, reason, message):
    with pytest.raises(InvalidReturn, match=message):
        return_plan(order=order, items=items, reason=reason)

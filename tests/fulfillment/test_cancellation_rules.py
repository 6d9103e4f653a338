"""The cancellation rules without the sandbox: what can be cancelled now and why not, which call to DR
each unit needs, and how DR's answers and releases close the requests. DR's documented payloads are
put straight through our services (the flow through the sandbox is in test_cancellations.py)."""

import pytest
from django.db.models import F

from commerce.models import Order
from commerce.services import order_upsert
from digitalriver.models import Instruction
from fulfillment.cancellations import (
    CancellationRefused,
    InvalidCancellation,
    cancellable_units,
    cancellation_answered,
    cancellation_failed,
    cancellation_is_ours,
    cancellation_known_at_dr,
    cancellation_plan,
    cancellation_submitted,
    order_cancel,
    units_released,
)
from fulfillment.kinds import POST_FULFILLMENT, REQUEST_CANCELLATION
from fulfillment.models import CancellationRequest
from fulfillment.services import fulfillment_order_upsert
from tests.conftest import fixture
from tests.fulfillment.order_stories import order_data, partner_gadget_sku

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]
State = CancellationRequest.State
ORDER = "231388420555"


@pytest.fixture
def partner_sku():
    return partner_gadget_sku()


def an_order(*, state="accepted", widgets=3, gadgets=0, lines=2) -> Order:
    """DR's order: ``widgets`` distributed widgets, the managed (orchestrated) unit, and, with
    ``gadgets``, that many third-party gadgets instead of the managed unit."""
    data = order_data(dr_order_id=ORDER, lines=lines, state=state)
    data["items"][0]["quantity"] = widgets
    if gadgets:
        data["items"][1].update(skuId="3p-1", quantity=gadgets, productDetails={"id": "3p-1", "name": "Partner gadget"})
    return order_upsert(data=data)


def at_the_warehouse(order: Order, *counters: dict, fulfillment_order_id="fo-1") -> None:
    """DR's fulfillment order of the widget line, one fulfillment-order line per ``counters``."""
    data = fixture("fulfillment_order.json")
    data.update(id=fulfillment_order_id, upstreamId=order.dr_order_id)
    widget = order.lines.get(dr_sku_id="dist-1")
    data["items"] = [
        {
            **fixture("fulfillment_order.json")["items"][0],
            "id": f"{fulfillment_order_id}-{number}",
            "upstreamId": widget.dr_item_id,
            **values,
        }
        for number, values in enumerate(counters)
    ]
    fulfillment_order_upsert(order=order, data=data, created_by_us=True)


def widget_of(order: Order):
    return order.lines.get(dr_sku_id="dist-1")


def fresh(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


# --- what can be cancelled now, and why not ---------------------------------------------------------


def test_accepted_warehouse_units_are_the_pending_and_backordered_ones_less_those_already_asked_for():
    order = an_order(widgets=4)
    at_the_warehouse(order, {"quantity": 4, "pending": 1, "backordered": 2, "shipped": 1})
    widget = widget_of(order)
    assert cancellable_units(order=order)[widget.pk].quantity == 3
    order_cancel(order=order, items=[(widget.dr_item_id, 2)])
    entry = cancellable_units(order=fresh(order))[widget.pk]
    assert (entry.quantity, entry.why_not) == (1, "")


def test_a_dr_coordinated_line_without_its_fulfillment_order_cannot_be_cancelled_yet():
    order = an_order()
    entry = cancellable_units(order=order)[widget_of(order).pk]
    assert (entry.quantity, entry.why_not) == (0, "its fulfillment order is not created yet; try again in a minute")


def test_before_acceptance_every_open_unit_is_released_directly_without_a_fulfillment_order():
    order = an_order(state="in_review", widgets=2)
    widget = widget_of(order)
    assert cancellable_units(order=order)[widget.pk].quantity == 2
    plan = cancellation_plan(order=order, items=[(widget.dr_item_id, 2)])
    assert plan.calls == [("POST /fulfillments", [(widget.dr_item_id, 2)])]
    [step] = plan.steps
    assert step.what == "Release the payment of 2 units of Distributed widget"
    assert step.dr_call.startswith("POST /fulfillments with cancelQuantity: the order is not accepted yet")


@pytest.mark.parametrize("state", ["cancelled", "complete", "returned"])
def test_nothing_on_a_closed_order_can_be_cancelled(state):
    order = an_order(widgets=2)
    at_the_warehouse(order, {"quantity": 2, "pending": 2})
    Order.objects.filter(pk=order.pk).update(state=state)
    entry = cancellable_units(order=fresh(order))[widget_of(order).pk]
    assert (entry.quantity, entry.why_not) == (0, f"the order is {state}")


@pytest.mark.parametrize(
    ("quantity", "shipped", "cancelled", "requested", "why_not"),
    [
        (1, 1, 0, 0, "the unit shipped or were cancelled; shipped units need a return"),
        (3, 2, 1, 0, "all 3 units shipped or were cancelled; shipped units need a return"),
        (2, 0, 1, 1, "1 unit is already being cancelled"),
        (3, 1, 0, 2, "2 units are already being cancelled"),
        (2, 0, 2, 0, "every unit is already cancelled or shipped"),
    ],
)
def test_why_nothing_is_open_says_what_became_of_the_units(
    partner_sku, quantity, shipped, cancelled, requested, why_not
):
    order = an_order(gadgets=quantity)
    gadget = order.lines.get(dr_sku_id="3p-1")
    order.lines.filter(pk=gadget.pk).update(shipped=shipped, cancelled=cancelled, cancel_requested=requested)
    entry = cancellable_units(order=order)[gadget.pk]
    assert (entry.quantity, entry.why_not) == (0, why_not)


def test_captured_units_count_as_shipped_even_before_the_shipment_is_recorded(partner_sku):
    order = an_order(gadgets=3)
    gadget = order.lines.get(dr_sku_id="3p-1")
    order.lines.filter(pk=gadget.pk).update(fulfilled=2)
    assert cancellable_units(order=order)[gadget.pk].quantity == 1
    with pytest.raises(CancellationRefused, match=r"asked for 2, 1 of 3 can be cancelled; 2 shipped \(a return"):
        order_cancel(order=order, items=[(gadget.dr_item_id, 2)])


# --- the calls a plan names ---------------------------------------------------------------------------


def test_units_asked_of_the_warehouse_are_spread_over_its_lines_in_order():
    order = an_order(widgets=4)
    at_the_warehouse(order, {"quantity": 2, "pending": 1, "shipped": 1}, {"quantity": 2, "backordered": 2})
    widget = widget_of(order)
    [request] = order_cancel(order=order, items=[(widget.dr_item_id, 3)], reason="changed mind")
    [instruction] = Instruction.objects.filter(kind=REQUEST_CANCELLATION)
    assert instruction.payload == {
        "fulfillmentOrderId": "fo-1",
        "upstreamId": ORDER,
        "items": [
            {"fulfillmentOrderItemId": "fo-1-0", "fulfillmentOrderItemUpstreamId": widget.dr_item_id, "quantity": 1},
            {"fulfillmentOrderItemId": "fo-1-1", "fulfillmentOrderItemUpstreamId": widget.dr_item_id, "quantity": 2},
        ],
        "reason": "changed mind",
    }
    assert request.route == CancellationRequest.Route.FULFILLMENT_CANCELLATION
    assert [(line.fulfillment_order_line.dr_item_id, line.quantity) for line in request.lines.order_by("pk")] == [
        ("fo-1-0", 1),
        ("fo-1-1", 2),
    ]
    assert widget_of(order).cancel_requested == 3


def test_a_request_without_a_reason_sends_none():
    order = an_order(widgets=1)
    at_the_warehouse(order, {"quantity": 1, "pending": 1})
    order_cancel(order=order, items=[(widget_of(order).dr_item_id, 1)])
    assert "reason" not in Instruction.objects.get(kind=REQUEST_CANCELLATION).payload


def test_a_whole_accepted_order_is_one_warehouse_request_and_one_direct_release(partner_sku):
    order = an_order(widgets=2, gadgets=2)
    at_the_warehouse(order, {"quantity": 2, "pending": 2})
    gadget = order.lines.get(dr_sku_id="3p-1")
    plan = cancellation_plan(order=order, cancel_all=True, reason="fraud")
    assert plan.calls == [
        ("POST /fulfillment-cancellations fo-1", [("fo-1-0", 2)]),
        ("POST /fulfillments", [(gadget.dr_item_id, 2)]),
    ]
    steps = {step.line.dr_sku_id: step for step in plan.steps}
    assert steps["dist-1"].what == "Ask the warehouse to cancel 2 units of Distributed widget"
    assert "we release the payment of the accepted units" in steps["dist-1"].dr_call
    assert steps["3p-1"].what == "Release the payment of 2 units of Partner gadget"
    assert "we fulfil this line ourselves" in steps["3p-1"].dr_call

    requests = order_cancel(order=order, cancel_all=True, reason="fraud")
    assert sorted(request.route for request in requests) == ["fulfillment", "fulfillment_cancellation"]
    [release] = Instruction.objects.filter(kind=POST_FULFILLMENT)
    assert release.payload == {"orderId": ORDER, "items": [{"itemId": gadget.dr_item_id, "cancelQuantity": 2}]}
    direct = CancellationRequest.objects.get(route=CancellationRequest.Route.FULFILLMENT)
    assert direct.instruction == release and direct.reason == "fraud"
    assert [(line.quantity, line.quantity_accepted) for line in direct.lines.all()] == [(2, 2)]
    assert (widget_of(order).cancel_requested, order.lines.get(pk=gadget.pk).cancel_requested) == (2, 2)


def test_an_orchestrated_step_says_dr_releases_the_payment_itself():
    order = an_order(widgets=1)
    managed = order.lines.get(dr_sku_id="orch-1")
    data = fixture("fulfillment_order.json")
    data.update(id="fo-dr", upstreamId=ORDER)
    data["items"] = [{"id": "fo-dr-0", "upstreamId": managed.dr_item_id, "quantity": 1, "pending": 1}]
    fulfillment_order_upsert(order=order, data=data)
    [step] = cancellation_plan(order=order, items=[(managed.dr_item_id, 1)]).steps
    assert step.dr_call.endswith("DR releases the payment itself (orchestrated line).")


def test_a_whole_order_with_a_line_that_cannot_be_cancelled_now_is_refused_with_the_reason():
    order = an_order(widgets=2)
    with pytest.raises(CancellationRefused) as refused:
        order_cancel(order=order, cancel_all=True)
    assert str(refused.value) == (
        "The whole order cannot be cancelled now: Distributed widget: its fulfillment order is not created yet; "
        "try again in a minute; Managed widget: its fulfillment order is not created yet; try again in a minute."
    )
    assert not CancellationRequest.objects.exists()


def test_a_whole_order_with_nothing_left_is_refused(partner_sku):
    order = an_order(gadgets=1)
    order.lines.update(cancelled=F("quantity"))
    with pytest.raises(CancellationRefused, match=f"Nothing is left to cancel on order {ORDER}."):
        order_cancel(order=fresh(order), cancel_all=True)


def test_a_whole_order_after_a_shipment_names_each_shipped_line_with_its_count(partner_sku):
    order = an_order(widgets=3, gadgets=2)
    order.lines.filter(dr_sku_id="dist-1").update(shipped=2)
    order.lines.filter(dr_sku_id="3p-1").update(fulfilled=1)
    with pytest.raises(CancellationRefused) as refused:
        order_cancel(order=order, cancel_all=True)
    assert str(refused.value).startswith(
        "The whole order cannot be cancelled: units already shipped on Distributed widget (2 shipped), "
        "Partner gadget (1 shipped). Cancel the open units line by line"
    )


def test_asking_for_more_than_is_open_names_every_line_over_its_count(partner_sku):
    order = an_order(widgets=2, gadgets=2)
    at_the_warehouse(order, {"quantity": 2, "pending": 2})
    widget, gadget = widget_of(order), order.lines.get(dr_sku_id="3p-1")
    order_cancel(order=order, items=[(gadget.dr_item_id, 2)])
    with pytest.raises(CancellationRefused) as refused:
        order_cancel(order=fresh(order), items=[(widget.dr_item_id, 3), (gadget.dr_item_id, 1)])
    assert str(refused.value) == (
        "Cannot cancel that many units. Distributed widget: asked for 3, 2 of 2 can be cancelled; "
        "Partner gadget: asked for 1, 0 of 2 can be cancelled: 2 units are already being cancelled."
    )


def test_an_item_named_twice_is_checked_once_against_its_open_units():
    order = an_order(widgets=2)
    at_the_warehouse(order, {"quantity": 2, "pending": 2})
    widget = widget_of(order)
    with pytest.raises(CancellationRefused, match="asked for 3, 2 of 2"):
        order_cancel(order=order, items=[(widget.dr_item_id, 2), (widget.dr_item_id, 1)])
    with pytest.raises(InvalidCancellation, match="item 999 is not a line of this order"):
        order_cancel(order=order, items=[("999", 1)])


# --- DR's answers -------------------------------------------------------------------------------------


def asked(order: Order, units: int = 2, widgets: int = 3) -> CancellationRequest:
    at_the_warehouse(order, {"quantity": widgets, "pending": widgets})
    [request] = order_cancel(order=order, items=[(widget_of(order).dr_item_id, units)], reason="changed mind")
    return request


def drs_request(request: CancellationRequest, *, state="pending", accepted=None, dr_id="fc-1", units=None) -> dict:
    """DR's fulfillment cancellation (tests/fixtures/dr/fulfillment_cancellation.json) for our request."""
    data = fixture("fulfillment_cancellation.json")
    items = []
    for line in request.lines.select_related("fulfillment_order_line"):
        item = {"fulfillmentOrderItemId": line.fulfillment_order_line.dr_item_id, "quantity": units or line.quantity}
        if accepted is not None:
            item["quantityAccepted"] = accepted
        items.append(item)
    data.update(id=dr_id, upstreamId=ORDER, fulfillmentOrderId="fo-1", state=state, items=items)
    return data


def test_dr_creating_the_request_is_matched_by_its_units_and_keeps_drs_id():
    order = an_order()
    request = asked(order)
    cancellation_answered(data=drs_request(request, dr_id="fc-other", units=1))  # not ours: other units
    assert CancellationRequest.objects.get(pk=request.pk).state == State.REQUESTED
    cancellation_answered(data=drs_request(request))
    request = CancellationRequest.objects.get(pk=request.pk)
    assert (request.state, request.dr_cancellation_id) == (State.SUBMITTED, "fc-1")
    assert cancellation_known_at_dr(instruction=request.instruction) == {"id": "fc-1"}


def test_our_post_answered_with_drs_request_submits_it_and_an_answer_in_it_is_applied():
    order = an_order()
    request = asked(order)
    assert cancellation_known_at_dr(instruction=request.instruction) is None
    cancellation_submitted(instruction=request.instruction, result={"id": "fc-1", "state": "pending"})
    request = CancellationRequest.objects.get(pk=request.pk)
    assert (request.state, request.dr_cancellation_id) == (State.SUBMITTED, "fc-1")
    cancellation_submitted(instruction=request.instruction, result=drs_request(request, state="accepted", accepted=2))
    assert CancellationRequest.objects.get(pk=request.pk).state == State.ACCEPTED
    assert widget_of(order).cancel_requested == 2  # still counted until the payment is released


def test_a_partly_accepted_request_gives_back_the_refused_units_and_flags_the_order():
    order = an_order()
    request = asked(order)
    cancellation_answered(data=drs_request(request, state="accepted", accepted=1))
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == State.PARTIALLY_ACCEPTED
    assert request.lines.get().quantity_accepted == 1
    assert widget_of(order).cancel_requested == 1
    assert fresh(order).cancellation_rejected
    cancellation_answered(data=drs_request(request, state="rejected", accepted=0))  # late and different
    assert CancellationRequest.objects.get(pk=request.pk).state == State.PARTIALLY_ACCEPTED
    assert widget_of(order).cancel_requested == 1


def test_a_rejected_request_gives_every_unit_back():
    order = an_order()
    request = asked(order)
    cancellation_answered(data=drs_request(request, state="rejected", accepted=0))
    assert CancellationRequest.objects.get(pk=request.pk).state == State.REJECTED
    assert widget_of(order).cancel_requested == 0
    assert fresh(order).cancellation_rejected
    assert cancellable_units(order=fresh(order))[widget_of(order).pk].quantity == 3


def test_an_accepted_request_is_released_when_the_payment_of_its_units_is():
    order = an_order()
    request = asked(order)
    cancellation_answered(data=drs_request(request, state="accepted", accepted=2))
    assert not fresh(order).cancellation_rejected
    widget = widget_of(order)
    units_released(order_line=widget, quantity=1)
    assert CancellationRequest.objects.get(pk=request.pk).state == State.ACCEPTED
    assert widget_of(order).cancel_requested == 1
    units_released(order_line=widget_of(order), quantity=1)
    assert CancellationRequest.objects.get(pk=request.pk).state == State.RELEASED
    assert widget_of(order).cancel_requested == 0


def test_a_release_goes_to_the_oldest_answered_request_first():
    order = an_order(widgets=4)
    at_the_warehouse(order, {"quantity": 4, "pending": 4})
    widget = widget_of(order)
    [first] = order_cancel(order=order, items=[(widget.dr_item_id, 1)])
    [second] = order_cancel(order=fresh(order), items=[(widget.dr_item_id, 2)])
    cancellation_answered(data=drs_request(second, state="accepted", accepted=2, dr_id="fc-2"))
    units_released(order_line=widget_of(order), quantity=2)
    assert CancellationRequest.objects.get(pk=second.pk).state == State.RELEASED
    assert CancellationRequest.objects.get(pk=first.pk).state == State.REQUESTED
    assert first.lines.get().quantity_released == 0
    assert widget_of(order).cancel_requested == 1


def test_units_the_warehouse_cancelled_on_its_own_close_no_request_of_ours():
    order = an_order()
    request = asked(order)
    cancellation_answered(data=drs_request(request, state="accepted", accepted=2))
    units_released(order_line=widget_of(order), quantity=3)  # two of ours, one the warehouse's own
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == State.RELEASED and request.lines.get().quantity_released == 2
    assert widget_of(order).cancel_requested == 0


def test_a_direct_release_closes_its_own_request(partner_sku):
    order = an_order(gadgets=2)
    gadget = order.lines.get(dr_sku_id="3p-1")
    [request] = order_cancel(order=order, items=[(gadget.dr_item_id, 2)])
    units_released(order_line=gadget, quantity=2, instruction_id=request.instruction_id)
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == State.RELEASED and request.lines.get().quantity_released == 2
    assert order.lines.get(pk=gadget.pk).cancel_requested == 0


def test_a_refused_request_gives_the_units_back_once_and_flags_the_order():
    order = an_order()
    request = asked(order)
    instruction = request.instruction
    instruction.last_error = "DR refused: quantity too large"
    cancellation_failed(instruction=instruction)
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == State.FAILED
    assert widget_of(order).cancel_requested == 0
    assert fresh(order).cancellation_rejected
    cancellation_failed(instruction=instruction)  # once only
    assert widget_of(order).cancel_requested == 0


def test_drs_request_is_ours_only_with_exactly_our_units_at_our_fulfillment_order():
    order = an_order()
    request = asked(order)
    instruction = request.instruction
    ours = drs_request(request)
    assert cancellation_is_ours(instruction=instruction, data=ours)
    assert not cancellation_is_ours(instruction=instruction, data={**ours, "fulfillmentOrderId": "fo-other"})
    assert not cancellation_is_ours(instruction=instruction, data={**ours, "id": ""})
    assert not cancellation_is_ours(instruction=instruction, data=drs_request(request, units=1))
    [other] = order_cancel(order=fresh(order), items=[(widget_of(order).dr_item_id, 1)])
    cancellation_answered(data=drs_request(other, dr_id="fc-9"))
    assert not cancellation_is_ours(instruction=instruction, data={**ours, "id": "fc-9"})

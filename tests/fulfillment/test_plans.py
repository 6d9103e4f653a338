"""A service answers a plan before it acts: the plan writes nothing, names the calls to DR or the
refusal, and executing it does exactly what was shown, or refuses when the order changed."""

import pytest
from django.contrib.messages import get_messages

from commerce.models import Order
from digitalriver.models import Instruction
from fulfillment.cancellations import CancellationRefused, cancellation_execute, cancellation_plan, order_cancel
from fulfillment.kinds import REQUEST_CANCELLATION
from fulfillment.models import CancellationRequest, Shipment
from fulfillment.shipments import ShipmentRefused, shipment_execute, shipment_plan
from tests.fulfillment.order_stories import customer_service, order_with_partner_gadgets, story

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]


def written() -> tuple[int, int, list[int]]:
    """Everything a cancellation or a shipment would write."""
    lines = list(Order.objects.get().lines.order_by("pk").values_list("cancel_requested", flat=True))
    return CancellationRequest.objects.count() + Shipment.objects.count(), Instruction.objects.count(), lines


def test_a_cancellation_plan_names_the_call_to_the_warehouse_and_writes_nothing(django_capture_on_commit_callbacks):
    order = story()
    widget = order.lines.get(dr_sku_id="dist-1")
    before = written()
    with django_capture_on_commit_callbacks() as jobs:
        plan = cancellation_plan(order=order, items=[(widget.dr_item_id, 1)], reason="changed mind")
    assert written() == before and jobs == []
    assert not plan.refusal
    [step] = plan.steps
    assert (step.line, step.quantity) == (widget, 1)
    assert step.what == "Ask the warehouse to cancel 1 unit of Distributed widget"
    fulfillment_order = widget.fulfillment_order_lines.get().fulfillment_order
    fo_line = widget.fulfillment_order_lines.get()
    assert plan.calls == [
        (f"POST /fulfillment-cancellations {fulfillment_order.dr_fulfillment_order_id}", [(fo_line.dr_item_id, 1)])
    ]


def test_a_refused_plan_says_why_with_counts_and_executing_it_writes_nothing():
    order = story()
    widget = order.lines.get(dr_sku_id="dist-1")
    before = written()
    plan = cancellation_plan(order=order, items=[(widget.dr_item_id, 2)])
    assert plan.refusal.startswith("Cannot cancel that many units. Distributed widget: asked for 2, 1 of 2")
    assert plan.steps == [] and plan.calls == []
    with pytest.raises(CancellationRefused, match="asked for 2"):
        cancellation_execute(plan=plan)
    assert written() == before


def test_executing_a_plan_the_order_has_outgrown_refuses_and_queues_nothing_more():
    order = story()
    widget = order.lines.get(dr_sku_id="dist-1")
    shown = cancellation_plan(order=order, items=[(widget.dr_item_id, 1)], reason="first agent")
    order_cancel(order=order, items=[(widget.dr_item_id, 1)], reason="second agent was quicker")
    before = written()
    with pytest.raises(CancellationRefused, match="already being cancelled"):
        cancellation_execute(plan=shown)
    assert written() == before
    assert Instruction.objects.filter(kind=REQUEST_CANCELLATION).count() == 1


def test_executing_a_plan_queues_exactly_the_calls_it_named():
    order = story()
    widget = order.lines.get(dr_sku_id="dist-1")
    plan = cancellation_plan(order=order, items=[(widget.dr_item_id, 1)], reason="changed mind")
    [request] = cancellation_execute(plan=plan)
    [instruction] = Instruction.objects.filter(kind=REQUEST_CANCELLATION)
    queued = [(item["fulfillmentOrderItemId"], item["quantity"]) for item in instruction.payload["items"]]
    assert plan.calls == [(f"POST /fulfillment-cancellations {instruction.payload['fulfillmentOrderId']}", queued)]
    assert request.instruction == instruction and request.reason == "changed mind"


def test_the_cancel_confirmation_shows_the_new_plan_when_the_order_changed_before_confirming(client, django_user_model):
    order = story()
    client.force_login(customer_service(django_user_model))
    widget = order.lines.get(dr_sku_id="dist-1")
    url = f"/admin/commerce/order/{order.pk}/cancel/"
    chosen = {f"line_{widget.pk}": "1", "reason": "changed mind"}
    review = client.post(url, chosen)
    shown = review.context["plan_fingerprint"]
    assert f'name="plan" value="{shown}"' in review.content.decode()

    stale = {**chosen, "reason": "changed mind", "confirm": "1", "plan": "0" * 16}
    again = client.post(url, stale)
    assert again.status_code == 200 and again.context["plan"]  # the confirmation again, not a redirect
    assert "The order changed since you looked" in " ".join(str(m) for m in get_messages(again.wsgi_request))
    assert not CancellationRequest.objects.exists()

    done = client.post(url, {**chosen, "confirm": "1", "plan": shown})
    assert done.status_code == 302
    assert CancellationRequest.objects.count() == 1


def test_a_shipment_plan_writes_nothing_and_refuses_lines_dr_ships():
    order = story()
    widget = order.lines.get(dr_sku_id="dist-1")
    before = written()
    plan = shipment_plan(order=order, items=[(widget.dr_item_id, 1)], tracking_number="JD1")
    assert written() == before
    assert plan.refusal == "Cannot record this shipment: Distributed widget is fulfilled through DR (distributed)."
    with pytest.raises(ShipmentRefused, match="fulfilled through DR"):
        shipment_execute(plan=plan)
    assert written() == before


def test_a_line_split_over_two_fulfillment_orders_asks_each_only_for_units_not_yet_asked(deliver, no_dr):
    from tests.conftest import fixture, fulfillment_order

    deliver("order.accepted", fixture("order.json"))
    first = fulfillment_order(quantity=1, pending=1)
    second = fulfillment_order(quantity=1, pending=1)
    second["id"], second["items"][0]["id"] = "700412580999", "700412590999"
    deliver("fulfillment_order.pending", first)
    deliver("fulfillment_order.pending", second)
    order = Order.objects.get()
    widget = order.lines.get(dr_sku_id="dist-1")

    order_cancel(order=order, items=[(widget.dr_item_id, 1)])
    order_cancel(order=order, items=[(widget.dr_item_id, 1)])  # before the warehouse answered the first

    asked = [
        (
            instruction.payload["fulfillmentOrderId"],
            [(i["fulfillmentOrderItemId"], i["quantity"]) for i in instruction.payload["items"]],
        )
        for instruction in Instruction.objects.filter(kind=REQUEST_CANCELLATION).order_by("pk")
    ]
    assert asked == [("700412580336", [("700412590336", 1)]), ("700412580999", [("700412590999", 1)])]
    with pytest.raises(CancellationRefused):
        order_cancel(order=order, items=[(widget.dr_item_id, 1)])  # both units are being cancelled


def test_units_whose_release_dr_has_not_answered_yet_cannot_be_recorded_as_shipped():
    """Two of three partner gadgets are being cancelled (the release is queued, DR has not answered):
    only the third can be recorded as shipped, or DR would be asked to capture and release one unit."""
    order = order_with_partner_gadgets(dr_order_id="231388420777")
    gadget = order.lines.get(dr_sku_id="3p-1")
    order_cancel(order=order, items=[(gadget.dr_item_id, 2)], reason="changed mind")
    assert order.lines.get(pk=gadget.pk).cancel_requested == 2

    plan = shipment_plan(order=order, items=[(gadget.dr_item_id, 2)])
    assert plan.refusal == "Cannot record this shipment: Partner gadget: asked to ship 2, 1 can ship."
    with pytest.raises(ShipmentRefused, match="1 can ship"):
        shipment_execute(plan=plan)
    assert not Shipment.objects.exists()
    [step] = shipment_plan(order=order, items=[(gadget.dr_item_id, 1)]).steps
    assert (step.line, step.quantity) == (gadget, 1)


def test_a_plan_says_how_much_money_each_step_releases_or_captures():
    """The amounts the confirmations show first: the units' price with their tax, to the cent."""
    from decimal import Decimal

    order = order_with_partner_gadgets()  # 3 gadgets: 19.99 + 1.60 tax for the three
    gadget = order.lines.get(dr_sku_id="3p-1")
    release = cancellation_plan(order=order, items=[(gadget.dr_item_id, 2)])
    [step] = release.steps
    assert (step.money, release.money) == (Decimal("14.39"), Decimal("14.39"))
    assert (
        step.effect
        == "Release 14.39 USD for 2 \u00d7 Partner gadget now; make sure our logistics partner has not shipped them"
    )

    capture = shipment_plan(order=order, items=[(gadget.dr_item_id, 3)])
    assert capture.money == Decimal("21.59")  # the whole line, not three rounded thirds


def test_the_whole_order_is_offered_only_while_nothing_has_shipped():
    from desk.forms import CancelItemsForm
    from fulfillment.cancellations import cancellable_units

    shipped = story()  # one unit of the widget shipped
    form = CancelItemsForm(None, order=shipped, cancellable=cancellable_units(order=shipped))
    assert "cancel_all" not in form.fields
    assert "units already shipped on Distributed widget (1 shipped)" in form.whole_order_refusal

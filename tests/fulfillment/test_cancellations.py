"""Customer service cancellations, for each fulfillment model and order state, through the sandbox."""

import pytest

from catalog.models import Sku
from commerce.models import Order
from digitalriver.models import Instruction
from fulfillment.cancellations import CancellationRefused, InvalidCancellation, cancellable_units, order_cancel
from fulfillment.kinds import POST_FULFILLMENT, REQUEST_CANCELLATION
from fulfillment.models import CancellationRequest, FulfillmentOrder
from sandbox.models import Fulfillment as SandboxFulfillment
from sandbox.services.warehouse import cancellation_accept, cancellation_reject, warehouse_ship
from tests.conftest import mirrored

pytestmark = pytest.mark.django_db(transaction=True)
State = CancellationRequest.State


def line_of(order: Order, sku_id: str):
    return order.lines.get(dr_sku_id=sku_id)


def fo_line_of(order: Order, sku_id: str):
    return FulfillmentOrder.objects.get(order=order).lines.get(order_line__dr_sku_id=sku_id)


def posted_fulfillments(order: Order) -> list[dict]:
    return [f.data for f in SandboxFulfillment.objects.filter(order__dr_id=order.dr_order_id).order_by("pk")]


def test_before_acceptance_every_open_unit_is_released_with_post_fulfillments(flow):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 2), state="in_review"))
    [request] = order_cancel(order=order, cancel_all=True, reason="customer asked")
    flow.settle()
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.route == CancellationRequest.Route.FULFILLMENT
    assert request.state == State.RELEASED
    line = line_of(order, "dist-a")
    assert (line.cancelled, line.cancel_requested) == (2, 0)
    assert [item["cancelQuantity"] for f in posted_fulfillments(order) for item in f["items"]] == [2]


def test_accepted_distributed_units_go_through_the_warehouse_then_the_payment_is_released(flow):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 3)))
    [request] = order_cancel(order=order, items=[(line_of(order, "dist-a").dr_item_id, 2)], reason="changed mind")
    flow.settle()
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == State.SUBMITTED and request.dr_cancellation_id
    assert Instruction.objects.get(kind=REQUEST_CANCELLATION).payload["items"] == [
        {
            "fulfillmentOrderItemId": fo_line_of(order, "dist-a").dr_item_id,
            "fulfillmentOrderItemUpstreamId": line_of(order, "dist-a").dr_item_id,
            "quantity": 2,
        }
    ]
    assert line_of(order, "dist-a").cancel_requested == 2

    cancellation_accept(cancellation_id=request.dr_cancellation_id)
    flow.settle()
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == State.RELEASED
    line = line_of(order, "dist-a")
    assert (line.cancelled, line.cancel_requested) == (2, 0)
    assert [item["cancelQuantity"] for f in posted_fulfillments(order) for item in f["items"]] == [2]


def test_the_warehouse_ships_a_unit_before_answering_so_it_accepts_fewer(flow):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 2)))
    [request] = order_cancel(order=order, items=[(line_of(order, "dist-a").dr_item_id, 2)])
    flow.settle()
    request = CancellationRequest.objects.get(pk=request.pk)
    fulfillment_order = FulfillmentOrder.objects.get(order=order)
    warehouse_ship(
        fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id,
        items=[(fo_line_of(order, "dist-a").dr_item_id, 1)],
    )
    cancellation_accept(cancellation_id=request.dr_cancellation_id)
    flow.settle()

    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == State.RELEASED  # the one accepted unit's payment is released
    assert request.lines.get().quantity_accepted == 1
    line = line_of(order, "dist-a")
    assert (line.shipped, line.fulfilled, line.cancelled, line.cancel_requested) == (1, 1, 1, 0)
    order = Order.objects.get(pk=order.pk)
    assert order.cancellation_rejected  # partly refused: a person should tell the customer
    assert order.state == Order.State.COMPLETE


def test_a_rejected_request_gives_the_units_back(flow):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 2)))
    [request] = order_cancel(order=order, items=[(line_of(order, "dist-a").dr_item_id, 1)])
    flow.settle()
    cancellation_reject(cancellation_id=CancellationRequest.objects.get(pk=request.pk).dr_cancellation_id)
    flow.settle()
    assert CancellationRequest.objects.get(pk=request.pk).state == State.REJECTED
    assert line_of(order, "dist-a").cancel_requested == 0
    assert cancellable_units(order=order)[line_of(order, "dist-a").pk].quantity == 2
    assert Order.objects.get(pk=order.pk).cancellation_rejected


def test_third_party_and_digital_lines_are_released_directly(flow):
    flow.sku("desk", Sku.FulfillmentModel.THIRD_PARTY)
    flow.sku("app", Sku.FulfillmentModel.DIGITAL)
    order = mirrored(flow.place(("desk", 2), ("app", 1)))
    [request] = order_cancel(
        order=order, items=[(line_of(order, "desk").dr_item_id, 1), (line_of(order, "app").dr_item_id, 1)]
    )
    flow.settle()
    assert CancellationRequest.objects.get(pk=request.pk).state == State.RELEASED
    assert (line_of(order, "desk").cancelled, line_of(order, "app").cancelled) == (1, 1)


def test_more_units_than_cancellable_are_refused_with_the_counts(flow):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 2)))
    fulfillment_order = FulfillmentOrder.objects.get(order=order)
    warehouse_ship(
        fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id,
        items=[(fo_line_of(order, "dist-a").dr_item_id, 1)],
    )
    flow.settle()
    with pytest.raises(CancellationRefused, match=r"asked for 2, 1 of 2 can be cancelled; 1 shipped \(a return"):
        order_cancel(order=order, items=[(line_of(order, "dist-a").dr_item_id, 2)])
    assert not CancellationRequest.objects.exists()
    assert line_of(order, "dist-a").cancel_requested == 0


def test_a_whole_order_cancel_is_refused_if_any_unit_shipped_naming_the_lines(flow):
    flow.sku("dist-a")
    flow.sku("dist-b")
    order = mirrored(flow.place(("dist-a", 1), ("dist-b", 1)))
    fulfillment_order = FulfillmentOrder.objects.get(order=order)
    warehouse_ship(
        fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id,
        items=[(fo_line_of(order, "dist-a").dr_item_id, 1)],
    )
    flow.settle()
    with pytest.raises(CancellationRefused, match="units already shipped on Product dist-a"):
        order_cancel(order=order, cancel_all=True)


def test_two_agents_cannot_cancel_the_same_unit_twice(flow):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 1)))
    item_id = line_of(order, "dist-a").dr_item_id
    order_cancel(order=order, items=[(item_id, 1)])
    with pytest.raises(CancellationRefused, match="asked for 1, 0 of 1 can be cancelled"):
        order_cancel(order=order, items=[(item_id, 1)])


def test_malformed_requests_are_invalid_not_refused(flow):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 1)))
    with pytest.raises(InvalidCancellation, match="not a line of this order"):
        order_cancel(order=order, items=[("999", 1)])
    with pytest.raises(InvalidCancellation, match="at least 1"):
        order_cancel(order=order, items=[(line_of(order, "dist-a").dr_item_id, 0)])
    with pytest.raises(InvalidCancellation):
        order_cancel(order=order)


def test_orchestrated_cancellation_goes_to_the_warehouse_and_dr_releases_the_payment(flow):
    flow.sku("orch", Sku.FulfillmentModel.ORCHESTRATED)
    order = mirrored(flow.place(("orch", 2)))
    [request] = order_cancel(order=order, items=[(line_of(order, "orch").dr_item_id, 1)])
    flow.settle()
    cancellation_accept(cancellation_id=CancellationRequest.objects.get(pk=request.pk).dr_cancellation_id)
    flow.settle()
    assert CancellationRequest.objects.get(pk=request.pk).state == State.RELEASED
    assert not Instruction.objects.filter(kind=POST_FULFILLMENT).exists()  # DR released it, not us
    assert line_of(order, "orch").cancelled == 1

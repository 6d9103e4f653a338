"""The distributed scenario again, with DR delivering twice and out of order, and failing calls."""

import pytest

from commerce.models import Order
from fulfillment.models import FulfillmentOrder
from sandbox.models import Fulfillment as SandboxFulfillment
from sandbox.models import FulfillmentOrder as SandboxFulfillmentOrder
from sandbox.services.control import control_update
from sandbox.services.warehouse import warehouse_cancel, warehouse_ship

pytestmark = pytest.mark.django_db(transaction=True)


def run_scenario(flow) -> Order:
    flow.sku("dist-a")
    flow.sku("dist-b")
    dr_order = flow.place(("dist-a", 3), ("dist-b", 1))
    order = Order.objects.get(dr_order_id=dr_order.dr_id)
    fulfillment_order = FulfillmentOrder.objects.get(order=order)
    at_dr = SandboxFulfillmentOrder.objects.get(dr_id=fulfillment_order.dr_fulfillment_order_id)
    fo_line_a = fulfillment_order.lines.get(order_line__dr_sku_id="dist-a")
    fo_line_b = fulfillment_order.lines.get(order_line__dr_sku_id="dist-b")
    warehouse_ship(fulfillment_order_id=at_dr.dr_id, items=[(fo_line_a.dr_item_id, 2)])
    flow.settle()
    warehouse_ship(fulfillment_order_id=at_dr.dr_id, items=[(fo_line_a.dr_item_id, 1)])
    warehouse_cancel(fulfillment_order_id=at_dr.dr_id, items=[(fo_line_b.dr_item_id, 1)])
    flow.settle()
    return Order.objects.get(pk=order.pk)


def captured_and_released_at_dr(order: Order) -> tuple[int, int]:
    posted = SandboxFulfillment.objects.filter(order__dr_id=order.dr_order_id)
    items = [item for fulfillment in posted for item in fulfillment.data["items"]]
    return sum(i.get("quantity") or 0 for i in items), sum(i.get("cancelQuantity") or 0 for i in items)


def assert_ends_like_a_clean_run(order: Order) -> None:
    assert order.state == Order.State.COMPLETE, order.state
    line_a, line_b = order.lines.get(dr_sku_id="dist-a"), order.lines.get(dr_sku_id="dist-b")
    assert (line_a.shipped, line_a.fulfilled, line_a.cancelled) == (3, 3, 0)
    assert (line_b.shipped, line_b.fulfilled, line_b.cancelled) == (0, 0, 1)
    assert captured_and_released_at_dr(order) == (3, 1)
    assert order.captured_amount + order.cancelled_amount == order.total_amount
    assert not order.capture_failed


def test_every_event_twice_in_shuffled_order_ends_the_same_and_captures_once(flow):
    control_update({"duplicate_rate": 1.0, "reorder": True})
    order = run_scenario(flow)
    assert_ends_like_a_clean_run(order)


def test_failing_and_slow_dr_completes_through_retries(flow, settings):
    settings.DR_CLIENT_MAX_RETRIES = 5
    control_update({"error_rate": 0.3, "error_statuses": [503], "slow_rate": 0.1, "slow_ms": 1000})
    order = run_scenario(flow)
    assert_ends_like_a_clean_run(order)


def test_a_lost_answer_to_our_fulfillment_order_request_finds_ours_not_drs_own(flow):
    """With an orchestrated line DR has a fulfillment order of its own under the same upstreamId;
    after an uncertain try the sender must not take that one for ours."""
    from catalog.models import Sku

    flow.sku("dist-a")
    flow.sku("orch", Sku.FulfillmentModel.ORCHESTRATED)
    control_update({"next_calls": {"path": "/fulfillment-orders", "method": "POST", "status": 503, "count": 1}})
    order = Order.objects.get(dr_order_id=flow.place(("dist-a", 1), ("orch", 1)).dr_id)
    ours = FulfillmentOrder.objects.get(order=order, created_by_us=True)
    assert list(ours.lines.values_list("order_line__dr_sku_id", flat=True)) == ["dist-a"]
    assert SandboxFulfillmentOrder.objects.filter(upstream_id=order.dr_order_id).count() == 2


def test_a_cancellation_request_whose_answer_was_lost_is_not_sent_twice(flow):
    from digitalriver.services.outbox import outbox_sweep
    from fulfillment.cancellations import order_cancel
    from fulfillment.models import CancellationRequest
    from sandbox.models import FulfillmentCancellation

    flow.sku("dist-a")
    order = Order.objects.get(dr_order_id=flow.place(("dist-a", 2)).dr_id)
    control_update({"error_rate": 1.0, "error_statuses": [503], "error_after_processing": 1.0})
    [request] = order_cancel(order=order, items=[(order.lines.get().dr_item_id, 1)])  # DR takes it, answers 503
    control_update({"reset": True})
    outbox_sweep(ignore_backoff=True)  # before DR's event arrives: found in GET /events
    flow.settle()
    assert FulfillmentCancellation.objects.filter(fulfillment_order__upstream_id=order.dr_order_id).count() == 1
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == CancellationRequest.State.SUBMITTED and request.dr_cancellation_id
    assert not Order.objects.get(pk=order.pk).cancellation_rejected


def test_a_lost_cancellation_answer_is_found_in_drs_list_of_the_fulfillment_orders_cancellations(flow):
    from digitalriver.models import ApiCall
    from digitalriver.services.outbox import outbox_sweep
    from fulfillment.cancellations import order_cancel
    from fulfillment.models import CancellationRequest
    from sandbox.models import FulfillmentCancellation

    flow.sku("dist-a")
    order = Order.objects.get(dr_order_id=flow.place(("dist-a", 2)).dr_id)
    control_update({"error_rate": 1.0, "error_statuses": [503], "error_after_processing": 1.0})
    [request] = order_cancel(order=order, items=[(order.lines.get().dr_item_id, 1)])  # DR takes it, answers 503
    control_update({"reset": True})
    outbox_sweep(ignore_backoff=True)  # before DR's event arrives

    asked = list(ApiCall.objects.filter(method="GET").values_list("path", flat=True))
    assert "/fulfillment-cancellations" in asked and "/events" not in asked
    assert FulfillmentCancellation.objects.filter(fulfillment_order__upstream_id=order.dr_order_id).count() == 1
    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == CancellationRequest.State.SUBMITTED and request.dr_cancellation_id

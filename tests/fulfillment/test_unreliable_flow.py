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

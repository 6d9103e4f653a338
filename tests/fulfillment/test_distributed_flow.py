"""From order.accepted to a complete order, over real HTTP between the app and the sandbox."""

import pytest

from commerce.models import Order
from digitalriver.models import Instruction
from fulfillment.kinds import CREATE_FULFILLMENT_ORDER, POST_FULFILLMENT
from fulfillment.models import FulfillmentOrder, Shipment
from sandbox.models import Fulfillment as SandboxFulfillment
from sandbox.models import FulfillmentOrder as SandboxFulfillmentOrder
from sandbox.services.warehouse import warehouse_cancel, warehouse_ship

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_distributed_lines_ship_cancel_and_complete(flow):
    flow.sku("dist-a")
    flow.sku("dist-b")
    dr_order = flow.place(("dist-a", 3), ("dist-b", 1))

    order = Order.objects.get(dr_order_id=dr_order.dr_id)
    assert order.state == Order.State.ACCEPTED
    line_a = order.lines.get(dr_sku_id="dist-a")
    line_b = order.lines.get(dr_sku_id="dist-b")

    # order.accepted made one fulfillment order with the documented mapping.
    create = Instruction.objects.get(kind=CREATE_FULFILLMENT_ORDER)
    assert create.state == Instruction.State.DONE
    body = create.payload
    assert body["upstreamId"] == order.dr_order_id
    assert body["currency"] == "USD" and body["shippingChoice"] == {"id": "SG"}
    assert body["upstreamOrderTime"] == order.raw["createdTime"]
    assert {(item["inventoryItemId"], item["quantity"], item["upstreamId"]) for item in body["items"]} == {
        ("dist-a", 3, line_a.dr_item_id),
        ("dist-b", 1, line_b.dr_item_id),
    }
    fulfillment_order = FulfillmentOrder.objects.get(order=order)
    at_dr = SandboxFulfillmentOrder.objects.get(dr_id=fulfillment_order.dr_fulfillment_order_id)
    fo_line_a = fulfillment_order.lines.get(order_line=line_a)
    fo_line_b = fulfillment_order.lines.get(order_line=line_b)

    # The warehouse ships 2 units of line 1: a capture of 2 with the shipment ids.
    warehouse_ship(fulfillment_order_id=at_dr.dr_id, items=[(fo_line_a.dr_item_id, 2)])
    flow.settle()
    first = Shipment.objects.get(order=order)
    captures = Instruction.objects.filter(kind=POST_FULFILLMENT).order_by("pk")
    assert captures.count() == 1
    assert captures[0].payload["shipmentId"] == first.dr_shipment_id
    assert captures[0].payload["items"] == [
        {"itemId": line_a.dr_item_id, "quantity": 2, "shipmentItemId": first.items.get().dr_shipment_item_id}
    ]
    assert captures[0].state == Instruction.State.DONE

    # Then the third unit (a capture of 1), and the fulfiller cancels line 2 (cancelQuantity 1).
    warehouse_ship(fulfillment_order_id=at_dr.dr_id, items=[(fo_line_a.dr_item_id, 1)])
    warehouse_cancel(fulfillment_order_id=at_dr.dr_id, items=[(fo_line_b.dr_item_id, 1)])
    flow.settle()

    sent = [instruction.payload for instruction in Instruction.objects.filter(kind=POST_FULFILLMENT).order_by("pk")]
    assert [item.get("quantity") for payload in sent for item in payload["items"] if "quantity" in item] == [2, 1]
    assert [item["cancelQuantity"] for payload in sent for item in payload["items"] if "cancelQuantity" in item] == [1]

    order = Order.objects.get(pk=order.pk)
    assert order.state == Order.State.COMPLETE, order.state
    line_a, line_b = order.lines.get(pk=line_a.pk), order.lines.get(pk=line_b.pk)
    assert (line_a.shipped, line_a.fulfilled, line_a.cancelled) == (3, 3, 0)
    assert (line_b.shipped, line_b.fulfilled, line_b.cancelled) == (0, 0, 1)
    assert (line_a.pending, line_b.pending) == (0, 0)  # nothing is left waiting at the warehouse

    # Our counters equal the sandbox's captures and cancels.
    posted = SandboxFulfillment.objects.filter(order__dr_id=order.dr_order_id)
    captured_at_dr = sum(item["quantity"] for f in posted for item in f.data["items"] if item.get("quantity"))
    released_at_dr = sum(
        item["cancelQuantity"] for f in posted for item in f.data["items"] if item.get("cancelQuantity")
    )
    assert captured_at_dr == line_a.fulfilled + line_b.fulfilled == 3
    assert released_at_dr == line_a.cancelled + line_b.cancelled == 1
    assert order.captured_amount > 0 and order.cancelled_amount > 0
    assert order.captured_amount + order.cancelled_amount == order.total_amount

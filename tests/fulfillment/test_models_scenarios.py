"""Orchestrated, third-party and mixed orders complete, each fulfilled the way its model says."""

import pytest

from catalog.models import Sku
from commerce.models import Order
from digitalriver.models import ApiCall, Instruction
from fulfillment.kinds import CREATE_FULFILLMENT_ORDER, POST_FULFILLMENT
from fulfillment.models import FulfillmentOrder, Shipment
from fulfillment.shipments import ShipmentRefused, shipment_record
from sandbox.models import FulfillmentOrder as SandboxFulfillmentOrder
from sandbox.services.warehouse import warehouse_ship

pytestmark = pytest.mark.django_db(transaction=True)


def ship_all_at_dr(dr_order_id: str) -> None:
    for fulfillment_order in SandboxFulfillmentOrder.objects.filter(upstream_id=dr_order_id):
        items = [(item.dr_id, item.pending) for item in fulfillment_order.items.all() if item.pending]
        warehouse_ship(fulfillment_order_id=fulfillment_order.dr_id, items=items, tracking_company="UPS")


def test_orchestrated_order_completes_without_any_fulfillment_call_from_us(flow):
    flow.sku("orch", Sku.FulfillmentModel.ORCHESTRATED)
    order = Order.objects.get(dr_order_id=flow.place(("orch", 2)).dr_id)
    recorded = FulfillmentOrder.objects.get(order=order)
    assert not recorded.created_by_us  # DR's own, learned from fulfillment_order.pending

    ship_all_at_dr(order.dr_order_id)
    flow.settle()

    order = Order.objects.get(pk=order.pk)
    assert order.state == Order.State.COMPLETE
    line = order.lines.get()
    assert (line.shipped, line.fulfilled) == (2, 2)
    assert not ApiCall.objects.filter(method="POST", path__in=["/fulfillments", "/fulfillment-orders"]).exists()
    assert not Instruction.objects.filter(kind__in=[POST_FULFILLMENT, CREATE_FULFILLMENT_ORDER]).exists()
    shipment = Shipment.objects.get(order=order)
    assert shipment.tracking_number and shipment.tracking_url.startswith("https://")


def test_third_party_order_completes_with_recorded_shipments(flow):
    flow.sku("desk", Sku.FulfillmentModel.THIRD_PARTY)
    order = Order.objects.get(dr_order_id=flow.place(("desk", 3)).dr_id)
    item_id = order.lines.get().dr_item_id
    assert not Instruction.objects.filter(kind=CREATE_FULFILLMENT_ORDER).exists()

    shipment_record(order=order, items=[(item_id, 2)], tracking_company="DHL", tracking_number="JD0001")
    flow.settle()
    with pytest.raises(ShipmentRefused, match="asked to ship 2, 1 can ship"):
        shipment_record(order=order, items=[(item_id, 2)])
    with pytest.raises(ShipmentRefused, match="asked to ship 2, 1 can ship"):
        shipment_record(order=order, items=[(item_id, 1), (item_id, 1)])
    shipment_record(order=order, items=[(item_id, 1)], tracking_company="DHL", tracking_number="JD0002")
    flow.settle()

    order = Order.objects.get(pk=order.pk)
    assert order.state == Order.State.COMPLETE
    line = order.lines.get()
    assert (line.shipped, line.fulfilled) == (3, 3)
    captures = [i.payload for i in Instruction.objects.filter(kind=POST_FULFILLMENT).order_by("pk")]
    assert [(c["items"][0]["quantity"], c["trackingNumber"]) for c in captures] == [(2, "JD0001"), (1, "JD0002")]


def test_recording_a_shipment_of_a_dr_coordinated_line_is_refused(flow):
    flow.sku("dist-a")
    order = Order.objects.get(dr_order_id=flow.place(("dist-a", 1)).dr_id)
    with pytest.raises(ShipmentRefused, match="fulfilled through DR"):
        shipment_record(order=order, items=[(order.lines.get().dr_item_id, 1)])


def test_mixed_order_of_every_model_completes(flow):
    flow.sku("dist-a")
    flow.sku("orch", Sku.FulfillmentModel.ORCHESTRATED)
    flow.sku("app", Sku.FulfillmentModel.DIGITAL)
    order = Order.objects.get(dr_order_id=flow.place(("dist-a", 1), ("orch", 1), ("app", 1)).dr_id)
    lines = {line.dr_sku_id: line for line in order.lines.all()}
    assert {sku: line.fulfillment_model for sku, line in lines.items()} == {
        "dist-a": "distributed",
        "orch": "orchestrated",
        "app": "digital",
    }

    ship_all_at_dr(order.dr_order_id)
    shipment_record(order=order, items=[(lines["app"].dr_item_id, 1)])
    flow.settle()

    order = Order.objects.get(pk=order.pk)
    assert order.state == Order.State.COMPLETE
    assert {line.dr_sku_id: line.fulfilled for line in order.lines.all()} == {"dist-a": 1, "orch": 1, "app": 1}
    ours = [item["itemId"] for i in Instruction.objects.filter(kind=POST_FULFILLMENT) for item in i.payload["items"]]
    assert sorted(ours) == sorted([lines["dist-a"].dr_item_id, lines["app"].dr_item_id])

"""The handlers under duplicate, late and reordered events, from DR's documented payload shapes."""

import copy

import pytest
import responses

from commerce.models import Order
from digitalriver.models import Instruction
from fulfillment.kinds import CREATE_FULFILLMENT_ORDER, POST_FULFILLMENT
from fulfillment.models import FulfillmentOrderLine, Shipment
from tests.conftest import fixture, fulfillment_order

pytestmark = pytest.mark.django_db


def sent(kind=POST_FULFILLMENT) -> list[dict]:
    return [instruction.payload for instruction in Instruction.objects.filter(kind=kind).order_by("pk")]


def test_order_accepted_asks_for_one_fulfillment_order_of_the_distributed_lines(accepted_order, deliver):
    deliver("order.accepted", fixture("order.json"))  # a second delivery of the same news
    [request] = sent(CREATE_FULFILLMENT_ORDER)
    assert [item["inventoryItemId"] for item in request["items"]] == ["dist-1"]
    assert request["shipTo"]["name"] == "Ada Lovelace" and request["reservationId"].startswith("chk_")


def test_running_totals_one_then_two_release_one_and_then_one(accepted_order, deliver):
    deliver("fulfillment_order.cancelled", fulfillment_order(pending=1, cancelled=1))
    deliver("fulfillment_order.cancelled", fulfillment_order(pending=0, cancelled=2))
    assert [payload["items"] for payload in sent()] == [
        [{"itemId": "143040030336", "cancelQuantity": 1}],
        [{"itemId": "143040030336", "cancelQuantity": 1}],
    ]


def test_a_late_smaller_running_total_releases_nothing_more(accepted_order, deliver):
    deliver("fulfillment_order.cancelled", fulfillment_order(pending=0, cancelled=2))
    deliver("fulfillment_order.cancelled", fulfillment_order(pending=1, cancelled=1))
    assert [payload["items"] for payload in sent()] == [[{"itemId": "143040030336", "cancelQuantity": 2}]]
    line = FulfillmentOrderLine.objects.get()
    assert (line.cancelled, line.cancel_instructed) == (2, 2)


def test_a_shipment_delivered_twice_captures_once(accepted_order, deliver):
    shipment = fixture("event_fulfillment_order_shipped.json")["data"]["object"]
    deliver("fulfillment_order.shipped", shipment)
    deliver("fulfillment_order.shipped", copy.deepcopy(shipment))
    [capture] = sent()
    assert capture["shipmentId"] == shipment["id"]
    assert capture["items"] == [{"itemId": "143040030336", "quantity": 1, "shipmentItemId": shipment["items"][0]["id"]}]
    assert capture["trackingNumber"] == shipment["trackingNumber"]
    assert Shipment.objects.count() == 1
    assert accepted_order.lines.get(dr_item_id="143040030336").shipped == 1


def test_a_shipment_before_its_fulfillment_order_is_still_captured(catalog, deliver, no_dr):
    deliver("order.accepted", fixture("order.json"))
    deliver("fulfillment_order.shipped", fixture("event_fulfillment_order_shipped.json")["data"]["object"])
    deliver("fulfillment_order.pending", fulfillment_order(pending=1, shipped=1))
    assert len(sent()) == 1
    line = FulfillmentOrderLine.objects.get()
    assert (line.pending, line.shipped) == (1, 1)


def test_a_shipped_unit_leaves_pending_first_and_the_backordered_unit_stays_backordered(accepted_order, deliver):
    """One unit pending and one backordered; the warehouse ships one: it was the pending one."""
    deliver(
        "fulfillment_order.backordered",
        fulfillment_order(pending=1, backordered=1, updated="2026-11-20T11:00:00.000Z"),
    )
    deliver("fulfillment_order.shipped", fixture("event_fulfillment_order_shipped.json")["data"]["object"])
    line = FulfillmentOrderLine.objects.get()
    assert (line.pending, line.backordered, line.shipped) == (0, 1, 1)
    order_line = accepted_order.lines.get(dr_item_id="143040030336")
    assert (order_line.pending, order_line.backordered, order_line.shipped) == (0, 1, 1)
    assert Order.objects.get(pk=accepted_order.pk).backordered


def test_backorder_flags_the_order_and_restock_clears_it(accepted_order, deliver):
    deliver(
        "fulfillment_order.backordered",
        fulfillment_order(pending=0, backordered=2, availableTime="2026-12-01T00:00:00Z"),
    )
    order = Order.objects.get(pk=accepted_order.pk)
    assert order.backordered
    assert FulfillmentOrderLine.objects.get().available_time.isoformat().startswith("2026-12-01")
    restocked = fulfillment_order(pending=2, backordered=0, updated="2026-11-21T10:00:00.000Z")
    deliver("fulfillment_order.pending", restocked)
    assert not Order.objects.get(pk=accepted_order.pk).backordered


def test_an_older_fulfillment_order_snapshot_does_not_undo_a_newer_one(accepted_order, deliver):
    deliver(
        "fulfillment_order.backordered",
        fulfillment_order(pending=0, backordered=2, updated="2026-11-21T10:00:00.000Z"),
    )
    deliver(
        "fulfillment_order.pending", fulfillment_order(pending=2, backordered=0, updated="2026-11-20T10:00:00.000Z")
    )
    assert FulfillmentOrderLine.objects.get().backordered == 2


def test_a_failed_capture_flags_the_order(accepted_order, deliver):
    deliver("order.charge.capture.failed", fixture("event_order_charge_capture_failed.json")["data"]["object"])
    assert Order.objects.get(pk=accepted_order.pk).capture_failed


def test_orchestrated_lines_are_never_captured_by_us(catalog, deliver, no_dr):
    deliver("order.accepted", fixture("order.json"))
    fulfillment = fixture("event_fulfillment_created.json")["data"]["object"]
    deliver("fulfillment.created", fulfillment)
    assert sent() == []
    order = Order.objects.get(dr_order_id="231388420336")
    captured = {line.dr_sku_id: (line.fulfilled, line.shipped) for line in order.lines.all()}
    assert captured == {"orch-1": (1, 1), "dist-1": (0, 0)}
    shipment = Shipment.objects.get(order=order)
    assert shipment.tracking_number == fulfillment["trackingNumber"]
    deliver("fulfillment.created", fulfillment)  # again: nothing counted twice
    assert order.lines.get(dr_sku_id="orch-1").fulfilled == 1


def test_an_event_for_an_unknown_order_fetches_the_order_first(catalog, deliver, settings):
    settings.DR_API_BASE_URL = "https://dr.invalid"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as dr:
        fetch = dr.get("https://dr.invalid/orders/231388420336", json=fixture("order.json"))
        deliver("fulfillment_order.pending", fulfillment_order())
        assert fetch.call_count == 1
    order = Order.objects.get(dr_order_id="231388420336")
    assert order.lines.count() == 2
    assert FulfillmentOrderLine.objects.get().order_line.dr_sku_id == "dist-1"


def test_a_release_before_the_warehouses_answer_still_closes_the_request(accepted_order, deliver):
    """DR delivers out of order: its own release of an orchestrated unit can come before the
    fulfillment_cancellation.accepted that caused it."""
    from fulfillment.cancellations import order_cancel
    from fulfillment.models import CancellationRequest

    managed = fixture("fulfillment_order.json")
    managed.update(id="700499990336")
    managed["items"] = [
        {"id": "700499991336", "upstreamId": "143040040336", "inventoryItemId": "orch-1", "quantity": 1, "pending": 1}
    ]
    deliver("fulfillment_order.pending", managed)
    [request] = order_cancel(order=accepted_order, items=[("143040040336", 1)], reason="changed mind")

    released = fixture("event_fulfillment_created.json")["data"]["object"]
    released["items"][0].update(quantity=0, cancelQuantity=1)
    deliver("fulfillment.created", released)
    deliver(
        "fulfillment_cancellation.accepted",
        {
            "id": "fc-early",
            "fulfillmentOrderId": "700499990336",
            "upstreamId": accepted_order.dr_order_id,
            "state": "accepted",
            "items": [{"fulfillmentOrderItemId": "700499991336", "quantity": 1, "quantityAccepted": 1}],
        },
    )

    request = CancellationRequest.objects.get(pk=request.pk)
    assert request.state == CancellationRequest.State.RELEASED
    line = accepted_order.lines.get(dr_item_id="143040040336")
    assert (line.cancelled, line.cancel_requested) == (1, 0)

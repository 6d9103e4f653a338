"""A whole order: a distributed and an orchestrated line, the warehouse, signed deliveries."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from digitalriver.signature import verify
from sandbox.delivery import deliver_due
from sandbox.models import Delivery, DeliveryAttempt, FulfillmentOrder
from sandbox.services import warehouse
from tests.conftest import fixture

from .conftest import assert_keys_like
from .test_api_fulfillment import fulfillment_order_body
from .test_api_orders import items_by_sku

SHAPES = {
    "order.accepted": "event_order_accepted.json",
    "order.complete": "event_order_complete.json",
    "fulfillment_order.pending": "event_fulfillment_order_pending.json",
    "fulfillment_order.backordered": "event_fulfillment_order_backordered.json",
    "fulfillment_order.shipped": "event_fulfillment_order_shipped.json",
    "fulfillment_order.cancelled": "event_fulfillment_order_cancelled.json",
    "fulfillment.created": "event_fulfillment_created.json",
    "order.charge.capture.complete": "event_order_charge_capture_complete.json",
    "fulfillment_cancellation.accepted": "event_fulfillment_cancellation_accepted.json",
}


def drain(receiver) -> list[dict]:
    """Deliver everything due and return the events received since the last drain, verified."""
    start = len(receiver.received)
    deliver_due()
    fresh = receiver.received[start:]
    for item in fresh:
        # Raises unless the signature is the first secret's over this exact body, and recent.
        verify(
            item["headers"].get("DigitalRiver-Signature"),
            item["body"],
            secrets=settings.DR_WEBHOOK_SECRETS[:1],
            tolerance_seconds=300,
        )
    events = receiver.events()[start:]
    for event in events:
        if event["type"] in SHAPES:
            expected = fixture(SHAPES[event["type"]])
            if event["type"] == "fulfillment.created" and "shipmentId" not in event["data"]["object"]:
                # A cancel-only fulfillment carries no shipment or tracking.
                for key in ("shipmentId", "trackingCompany", "trackingNumber", "trackingUrl"):
                    del expected["data"]["object"][key]
                del expected["data"]["object"]["items"][0]["shipmentItemId"]
            assert_keys_like(event, expected)
    return events


def of_type(events, event_type):
    matching = [event for event in events if event["type"] == event_type]
    assert matching, f"no {event_type} in {[event['type'] for event in events]}"
    return matching[-1]


def test_mixed_order_end_to_end(api, receiver, place, skus):
    order = place((skus["distributed"], 2), (skus["orchestrated"], 1), upstream_id="WEB-42")
    accepted = drain(receiver)
    # DR creates the orchestrated line's fulfillment order itself, and says so.
    assert [event["type"] for event in accepted] == ["order.accepted", "fulfillment_order.pending"]
    assert accepted[0]["data"]["object"]["id"] == order.dr_id
    lines = items_by_sku(api, order.dr_id)
    dist_line, orch_line = lines[skus["distributed"]], lines[skus["orchestrated"]]
    managed = accepted[1]["data"]["object"]
    assert [item["upstreamId"] for item in managed["items"]] == [orch_line["id"]]

    # Distributed: the client creates the fulfillment order; DR's side sends nothing until it does.
    body = fulfillment_order_body(order.dr_id, dist_line["id"], quantity=2)
    created = api.post("/fulfillment-orders", body).json()
    fo_item = created["items"][0]["id"]
    assert of_type(drain(receiver), "fulfillment_order.pending")["data"]["object"]["id"] == created["id"]

    available = timezone.now() + timedelta(days=3)
    warehouse.warehouse_backorder(
        fulfillment_order_id=created["id"], item_id=fo_item, quantity=1, available_time=available
    )
    backordered = of_type(drain(receiver), "fulfillment_order.backordered")["data"]["object"]["items"][0]
    assert backordered["backordered"] == 1 and backordered["availableTime"].startswith(available.strftime("%Y-%m-%d"))
    warehouse.warehouse_restock(fulfillment_order_id=created["id"], item_id=fo_item)
    assert of_type(drain(receiver), "fulfillment_order.pending")["data"]["object"]["items"][0]["pending"] == 2

    warehouse.warehouse_ship(fulfillment_order_id=created["id"], items=[(fo_item, 1)], tracking_company="UPS")
    shipment = of_type(drain(receiver), "fulfillment_order.shipped")["data"]["object"]
    assert shipment["fulfillmentOrderUpstreamId"] == order.dr_id and shipment["trackingUrl"]
    # The client's answer to the shipment, mapped as DR's global-fulfillments page says.
    captured = api.post(
        "/fulfillments",
        {
            "orderId": shipment["fulfillmentOrderUpstreamId"],
            "shipmentId": shipment["id"],
            "trackingCompany": shipment["trackingCompany"],
            "trackingNumber": shipment["trackingNumber"],
            "trackingUrl": shipment["trackingUrl"],
            "items": [
                {
                    "itemId": item["fulfillmentOrderItemUpstreamId"],
                    "quantity": item["quantity"],
                    "shipmentItemId": item["id"],
                }
                for item in shipment["items"]
            ],
        },
    )
    assert captured.status_code == 201, captured.text
    events = drain(receiver)
    # The order's first completed capture also issues its invoice (never again for later captures).
    assert [event["type"] for event in events] == [
        "fulfillment.created",
        "order.charge.capture.complete",
        "order.invoice.created",
    ]

    # Orchestrated: DR's own fulfillment order; shipping it captures without the client.
    managed = FulfillmentOrder.objects.get(managed=True, upstream_id=order.dr_id)
    managed_line = managed.items.get()
    assert managed_line.upstream_id == orch_line["id"]
    warehouse.warehouse_ship(fulfillment_order_id=managed.dr_id, items=[(managed_line.dr_id, 1)])
    events = drain(receiver)
    assert [event["type"] for event in events] == ["fulfillment.created", "order.charge.capture.complete"]
    created_event = events[0]["data"]["object"]
    assert created_event["orderDetails"]["id"] == order.dr_id and "payment" not in created_event["orderDetails"]
    assert created_event["items"][0]["itemId"] == orch_line["id"] and created_event["trackingNumber"]

    # The customer cancels the last distributed unit; the warehouse accepts.
    request = api.post(
        "/fulfillment-cancellations",
        {
            "fulfillmentOrderId": created["id"],
            "upstreamId": order.dr_id,
            "items": [{"fulfillmentOrderItemId": fo_item, "quantity": 1}],
        },
    ).json()
    assert of_type(drain(receiver), "fulfillment_cancellation.created")["data"]["object"]["id"] == request["id"]
    warehouse.cancellation_accept(cancellation_id=request["id"])
    events = drain(receiver)
    assert [event["type"] for event in events] == ["fulfillment_cancellation.accepted", "fulfillment_order.cancelled"]
    cancelled_line = events[1]["data"]["object"]["items"][0]
    assert (cancelled_line["shipped"], cancelled_line["cancelled"]) == (1, 1)
    # Running totals: cancel what DR reports as cancelled minus what was already instructed (nothing).
    response = api.post(
        "/fulfillments",
        {
            "orderId": order.dr_id,
            "items": [{"itemId": cancelled_line["upstreamId"], "cancelQuantity": cancelled_line["cancelled"]}],
        },
    )
    assert response.status_code == 201
    events = drain(receiver)
    assert [event["type"] for event in events] == [
        "fulfillment.created",
        "order.charge.cancel.complete",
        "order.fulfilled",
        "order.complete",
    ]
    final = api.get(f"/orders/{order.dr_id}").json()
    assert final["state"] == "complete"
    assert round(final["capturedAmount"] + final["cancelledAmount"], 2) == final["totalAmount"]
    assert all(delivery.state == Delivery.State.DELIVERED for delivery in Delivery.objects.all())
    assert len(receiver.received) == DeliveryAttempt.objects.count()


def test_failed_deliveries_are_retried_with_backoff(api, receiver, place, skus):
    receiver.statuses = [500, 503]
    place((skus["distributed"], 1))
    assert deliver_due() == 1
    delivery = Delivery.objects.get()
    assert delivery.state == Delivery.State.PENDING and delivery.attempts == 1 and delivery.last_status == 500
    assert deliver_due() == 0, "not due again before its backoff"
    assert deliver_due(now=delivery.next_attempt_at + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    first_gap = delivery.next_attempt_at
    assert deliver_due(now=first_gap + timedelta(seconds=1)) == 1
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.DELIVERED and delivery.attempts == 3
    log = list(DeliveryAttempt.objects.order_by("id").values_list("status_code", flat=True))
    assert log == [500, 503, 200]
    assert all(event["type"] == "order.accepted" for event in receiver.events())


def test_deliveries_give_up_after_max_attempts(api, receiver, place, skus, control):
    control(max_attempts=2, backoff_seconds=0)
    receiver.statuses = [500, 500, 500]
    place((skus["distributed"], 1))
    deliver_due()
    deliver_due(now=timezone.now() + timedelta(seconds=5))
    assert Delivery.objects.get().state == Delivery.State.FAILED
    assert deliver_due(now=timezone.now() + timedelta(hours=2)) == 0


def test_registered_webhooks_replace_the_default_address(api, receiver, place, skus):
    from .conftest import Receiver

    other = Receiver()
    try:
        api.post("/webhooks", {"types": ["order.review_opened"], "address": other.url})
        place((skus["distributed"], 1))
        place((skus["distributed"], 1), state="in_review")
        deliver_due()
        assert receiver.received == []
        assert other.types() == ["order.review_opened"]
    finally:
        other.close()


def test_disabled_webhooks_wait_and_deleted_ones_are_owed_nothing(api, receiver, place, skus):
    from .conftest import Receiver

    other = Receiver()
    try:
        hook = api.post("/webhooks", {"types": ["order.*"], "address": other.url}).json()
        api.patch(f"/webhooks/{hook['id']}", {"enabled": False})
        place((skus["distributed"], 1))
        assert Delivery.objects.count() == 0, "a disabled webhook is not a destination"
        api.patch(f"/webhooks/{hook['id']}", {"enabled": True})
        place((skus["distributed"], 1))
        api.patch(f"/webhooks/{hook['id']}", {"enabled": False})
        assert deliver_due() == 0
        api.patch(f"/webhooks/{hook['id']}", {"enabled": True})
        place((skus["distributed"], 1))
        assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
        assert deliver_due() == 0
        assert other.received == [] and receiver.received == []
        assert set(Delivery.objects.values_list("state", flat=True)) == {Delivery.State.FAILED}
    finally:
        other.close()


def test_cancelling_an_orchestrated_line_releases_the_payment_without_the_client(api, receiver, place, skus):
    order = place((skus["orchestrated"], 2), upstream_id="WEB-7")
    managed = of_type(drain(receiver), "fulfillment_order.pending")["data"]["object"]
    request = api.post(
        "/fulfillment-cancellations",
        {
            "fulfillmentOrderId": managed["id"],
            "upstreamId": order.dr_id,
            "items": [{"fulfillmentOrderItemId": managed["items"][0]["id"], "quantity": 2}],
        },
    ).json()
    drain(receiver)
    warehouse.cancellation_accept(cancellation_id=request["id"])
    events = drain(receiver)
    # No fulfillment_order.cancelled: DR cancels the charge itself, so the client has nothing to send.
    assert [event["type"] for event in events] == [
        "fulfillment_cancellation.accepted",
        "fulfillment.created",
        "order.charge.cancel.complete",
        "order.cancelled",
    ]
    assert events[1]["data"]["object"]["items"][0]["cancelQuantity"] == 2
    final = api.get(f"/orders/{order.dr_id}").json()
    assert final["state"] == "cancelled" and final["cancelledAmount"] == final["totalAmount"]

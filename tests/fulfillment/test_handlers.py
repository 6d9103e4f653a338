"""The handlers under duplicate, late and reordered events, from DR's documented payload shapes."""

import copy

import pytest
import responses

from commerce.models import Order
from digitalriver.models import Instruction
from fulfillment.kinds import CREATE_FULFILLMENT_ORDER, POST_FULFILLMENT
from fulfillment.models import FulfillmentOrderLine, Shipment
from tests.conftest import fixture, fulfillment_order, make_event

pytestmark = pytest.mark.django_db


def sent(kind=POST_FULFILLMENT) -> list[dict]:
    return [instruction.payload for instruction in Instruction.objects.filter(kind=kind).order_by("pk")]


def test_order_accepted_asks_for_one_fulfillment_order_of_the_distributed_lines(accepted_order, deliver):
    deliver("order.accepted", fixture("order.json"))  # a second delivery of the same news
    [request] = sent(CREATE_FULFILLMENT_ORDER)
    assert [item["inventoryItemId"] for item in request["items"]] == ["dist-1"]
    assert request["shipTo"]["name"] == "Ada Lovelace"
    # No reservation was made, so none is attached: the order's checkoutId names no reservation
    # (global-fulfillments.md "Attaching a reservation"; reserving-inventory-items.md).
    assert "reservationId" not in request
    assert None not in request.values()


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


def test_backorder_flags_the_order_and_restock_clears_it(accepted_order, deliver, deliver_at):
    deliver(
        "fulfillment_order.backordered",
        fulfillment_order(pending=0, backordered=2, availableTime="2026-12-01T00:00:00Z"),
    )
    order = Order.objects.get(pk=accepted_order.pk)
    assert order.backordered
    assert FulfillmentOrderLine.objects.get().available_time.isoformat().startswith("2026-12-01")
    restocked = fulfillment_order(pending=2, backordered=0)
    deliver_at("2026-11-21T10:00:00.000Z", "fulfillment_order.pending", restocked)
    assert not Order.objects.get(pk=accepted_order.pk).backordered


@pytest.fixture
def deliver_at(post_event):
    """Deliver an event created at ``when``: DR's fulfillment order has no updatedTime (the spec's
    GlobalFulfillmentOrder names none), so snapshots are ordered by their event's createdTime."""

    def deliver_event(when: str, event_type: str, obj: dict):
        response = post_event(make_event(event_type, obj, createdTime=when))
        assert response.status_code in (200, 202), response.content

    return deliver_event


def test_an_older_fulfillment_order_snapshot_does_not_undo_a_newer_one(accepted_order, deliver_at):
    deliver_at("2026-11-21T10:00:00.000Z", "fulfillment_order.backordered", fulfillment_order(pending=0, backordered=2))
    deliver_at("2026-11-20T11:00:00.000Z", "fulfillment_order.pending", fulfillment_order(pending=2, backordered=0))
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


def backordered_event(updated: str, *, units: int, total: int | None, **counters) -> dict:
    """A fulfillment_order.backordered object: ``backordered`` is this event's units, and
    ``totalBackordered`` the running total (DR's global-fulfillments page, backordered events)."""
    item = {"ordered": 2, "backordered": units, "availableTime": "2026-12-01T00:00:00Z", **counters}
    if total is not None:
        item["totalBackordered"] = total
    return fulfillment_order(updated, **item)


def test_backordered_units_follow_the_running_total_not_the_units_of_one_event(accepted_order, deliver):
    deliver("fulfillment_order.backordered", backordered_event("2026-11-20T11:00:00Z", units=1, total=1, pending=1))
    deliver("fulfillment_order.backordered", backordered_event("2026-11-20T12:00:00Z", units=1, total=2, pending=0))
    deliver("fulfillment_order.backordered", backordered_event("2026-11-20T12:00:00Z", units=1, total=2, pending=0))
    line = FulfillmentOrderLine.objects.get()
    assert (line.pending, line.backordered) == (0, 2)
    assert accepted_order.lines.get(dr_sku_id="dist-1").backordered == 2


def test_a_late_first_backorder_event_does_not_shrink_the_running_total(accepted_order, deliver):
    deliver("fulfillment_order.backordered", backordered_event("2026-11-20T12:00:00Z", units=1, total=2, pending=0))
    deliver("fulfillment_order.backordered", backordered_event("2026-11-20T11:00:00Z", units=1, total=1, pending=1))
    assert FulfillmentOrderLine.objects.get().backordered == 2


def test_a_backorder_event_without_a_total_or_pending_keeps_what_it_does_not_say(accepted_order, deliver):
    # DR's example shows items with only ordered/backordered/totalBackordered: without the running
    # total, the event's own units are all we know; pending is left as the last snapshot said.
    item = {"ordered": 2, "backordered": 1, "availableTime": "2026-12-01T00:00:00Z"}
    data = fulfillment_order("2026-11-20T11:00:00Z")
    data["items"][0] = {key: data["items"][0][key] for key in ("id", "upstreamId", "inventoryItemId", "quantity")}
    data["items"][0].update(item)
    deliver("fulfillment_order.backordered", data)
    line = FulfillmentOrderLine.objects.get()
    assert (line.pending, line.backordered) == (2, 1)


def order_with_failed_capture() -> dict:
    """The order as `order.charge.reauth.failed` carries it (and DR's pages show `order.charge.failed`
    with one too): the charge is in payment.charges."""
    order = fixture("order.json")
    charge = fixture("event_order_charge_capture_failed.json")["data"]["object"]
    order["payment"] = {**(order.get("payment") or {}), "charges": [charge]}
    return order


@pytest.mark.parametrize(
    ("event_type", "flag"),
    [("order.charge.failed", "capture_failed"), ("order.charge.reauth.failed", "authorization_lapsed")],
)
def test_a_charge_event_carrying_the_order_flags_the_order(event_type, flag, accepted_order, deliver):
    assert not getattr(Order.objects.get(pk=accepted_order.pk), flag)
    deliver(event_type, order_with_failed_capture())
    order = Order.objects.get(pk=accepted_order.pk)
    assert getattr(order, flag)
    [item] = order.attention_items.filter(cleared_at__isnull=True)
    assert item.kind == flag and item.flag.what_to_do
    assert order.charges.get().dr_charge_id.startswith("chg_")
    [email] = order.notifications.filter(kind="capture_failed")
    assert "Failed to operate on charge" in email.body


def test_a_charge_failure_reported_as_a_charge_and_as_the_order_emails_once(accepted_order, deliver):
    charge = fixture("event_order_charge_capture_failed.json")["data"]["object"]
    deliver("order.charge.failed", charge)
    deliver("order.charge.failed", order_with_failed_capture())
    assert Order.objects.get(pk=accepted_order.pk).notifications.filter(kind="capture_failed").count() == 1


def test_the_fulfillment_order_request_maps_the_accepted_order(accepted_order):
    [request] = sent(CREATE_FULFILLMENT_ORDER)
    order = fixture("order.json")
    widget = order["items"][0]
    assert request == {
        "upstreamId": "231388420336",
        "upstreamOrderTime": "2026-11-20T10:00:00.000Z",
        "currency": "USD",
        "shipTo": order["shipTo"],
        "shippingChoice": {"id": "SG"},
        "items": [
            {
                "inventoryItemId": "dist-1",
                "quantity": 2,
                "upstreamId": widget["id"],
                "total": 39.98,
                "tax": {"amount": 3.2},
            }
        ],
        "locale": "en_US",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "952-111-1111",
    }


def test_a_failed_capture_tells_operations_why_once_per_failure(accepted_order, deliver):
    from fulfillment.models import Notification

    failed = fixture("event_order_charge_capture_failed.json")["data"]["object"]
    deliver("order.charge.capture.failed", failed)
    deliver("order.charge.capture.failed", copy.deepcopy(failed))
    [email] = Notification.objects.filter(kind=Notification.Kind.CAPTURE_FAILED)
    assert email.key == f"capture_failed:{failed['id']}:{failed['captures'][0]['id']}"
    assert "Failed to operate on charge" in email.body
    coded = copy.deepcopy(failed)
    coded["captures"][0].update(id="cap-2", failureMessage="")
    deliver("order.charge.failed", coded)
    assert "failed-request" in Notification.objects.get(key=f"capture_failed:{failed['id']}:cap-2").body


def test_a_completed_capture_does_not_flag_the_order(accepted_order, deliver):
    deliver("order.charge.capture.complete", fixture("event_order_charge_capture_complete.json")["data"]["object"])
    assert not Order.objects.get(pk=accepted_order.pk).capture_failed


def test_a_capture_dr_answers_was_already_cancelled_is_counted_nowhere_and_flagged(accepted_order):
    """DR answers 409 item_cancelled to a capture: the shipped units were cancelled, a person must look."""
    from fulfillment.models import Notification
    from fulfillment.services import fulfillment_accepted

    order = Order.objects.get()
    payload = {"orderId": order.dr_order_id, "items": [{"itemId": "143040030336", "quantity": 1}]}
    fulfillment_accepted(payload=payload, result={"alreadyDone": ["item_cancelled"]}, instruction_id=7)
    line = order.lines.get(dr_item_id="143040030336")
    assert (line.fulfilled, line.cancelled) == (0, 0)
    assert Order.objects.get(pk=order.pk).capture_failed
    email = Notification.objects.get(kind=Notification.Kind.CAPTURE_FAILED)
    assert email.key == "capture_failed:instruction:7" and "item_cancelled" in email.body

    fulfillment_accepted(payload=payload, result={"alreadyDone": ["item_fulfilled"]}, instruction_id=8)
    assert order.lines.get(dr_item_id="143040030336").fulfilled == 1
    assert Notification.objects.filter(kind=Notification.Kind.CAPTURE_FAILED).count() == 1


def test_captured_and_released_units_never_exceed_the_line(accepted_order):
    from fulfillment.services import fulfillment_accepted, line_units_settle

    line = accepted_order.lines.get(dr_item_id="143040030336")
    assert line_units_settle(line, 1, 0) == (1, 0)
    assert line_units_settle(line, 5, 5) == (1, 0)
    assert line_units_settle(line, 0, 1) == (0, 0)
    line = accepted_order.lines.get(pk=line.pk)
    assert (line.fulfilled, line.cancelled) == (2, 0)
    managed = accepted_order.lines.get(dr_sku_id="orch-1")
    assert line_units_settle(managed, -1, 3) == (0, 1)
    payload = {"orderId": accepted_order.dr_order_id, "items": [{"itemId": "nope", "quantity": 1}]}
    fulfillment_accepted(payload=payload, result={}, instruction_id=1)  # an unknown item changes nothing


def test_a_refused_release_needs_no_person_but_a_refused_capture_does(accepted_order):
    from fulfillment.models import Notification
    from fulfillment.services import fulfillment_refused

    release = {"orderId": accepted_order.dr_order_id, "items": [{"itemId": "143040030336", "cancelQuantity": 1}]}
    fulfillment_refused(payload=release, instruction_id=3, reason="no")
    assert not Order.objects.get(pk=accepted_order.pk).capture_failed
    capture = {"orderId": accepted_order.dr_order_id, "items": [{"itemId": "143040030336", "quantity": 1}]}
    fulfillment_refused(payload=capture, instruction_id=4, reason="quantity_too_large")
    assert Order.objects.get(pk=accepted_order.pk).capture_failed
    email = Notification.objects.get(kind=Notification.Kind.CAPTURE_FAILED)
    assert email.key == "capture_failed:instruction:4" and "quantity_too_large" in email.body


def test_units_the_warehouse_cancelled_of_a_managed_line_are_accounted_for_without_a_release(accepted_order, deliver):
    managed = fixture("fulfillment_order.json")
    managed.update(id="700499990336")
    managed["items"] = [
        {"id": "700499991336", "upstreamId": "143040040336", "inventoryItemId": "orch-1", "quantity": 1, "cancelled": 1}
    ]
    deliver("fulfillment_order.cancelled", managed)
    assert sent() == []
    assert FulfillmentOrderLine.objects.get(dr_item_id="700499991336").cancel_instructed == 1


def test_a_cancelled_unit_in_a_pending_snapshot_is_released_too(accepted_order, deliver):
    deliver("fulfillment_order.pending", fulfillment_order(pending=1, cancelled=1, updated="2026-11-21T10:00:00.000Z"))
    assert [payload["items"] for payload in sent()] == [[{"itemId": "143040030336", "cancelQuantity": 1}]]
    assert sent()[0]["orderId"] == "231388420336"


@pytest.mark.parametrize("fulfillment_first", [False, True], ids=["snapshot_first", "fulfillment_first"])
def test_units_dr_shipped_and_captured_itself_leave_the_managed_fulfillment_orders_pending(
    accepted_order, deliver, fulfillment_first
):
    """Orchestrated lines ship from DR's own fulfillment order, and DR says so only with its
    fulfillment.created (no fulfillment_order.shipped): those units are shipped on that fulfillment
    order's line too, in whichever order the two events come, so they can be returned."""
    from fulfillment.returns import returnable_units

    managed = fixture("fulfillment_order.json")
    managed.update(id="700499990336")
    managed["items"] = [
        {"id": "700499991336", "upstreamId": "143040040336", "inventoryItemId": "orch-1", "quantity": 1, "pending": 1}
    ]
    events = [
        ("fulfillment_order.pending", managed),
        ("fulfillment.created", fixture("event_fulfillment_created.json")["data"]["object"]),
    ]
    for event_type, obj in reversed(events) if fulfillment_first else events:
        deliver(event_type, obj)

    fo_line = FulfillmentOrderLine.objects.get(dr_item_id="700499991336")
    assert (fo_line.pending, fo_line.shipped) == (0, 1)
    line = accepted_order.lines.get(dr_item_id="143040040336")
    assert (line.pending, line.shipped, line.fulfilled) == (0, 1, 1)
    assert returnable_units(order=accepted_order)[line.pk].quantity == 1
    deliver("fulfillment_order.pending", managed)  # the snapshot again: the units stay shipped
    assert FulfillmentOrderLine.objects.get(pk=fo_line.pk).pending == 0

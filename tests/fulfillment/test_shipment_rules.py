"""Shipments without the sandbox: DR's own fulfillments of orchestrated lines (fulfillment.created)
and the shipments customer service records, from DR's documented payloads."""

import copy

import pytest
from django.utils.dateparse import parse_datetime

from commerce.models import Order
from commerce.services import order_upsert
from digitalriver.models import Instruction
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.models import DrFulfillment, FulfillmentOrder, FulfillmentOrderLine, Notification, Shipment
from fulfillment.services import fulfillment_order_upsert
from fulfillment.shipments import (
    ShipmentRefused,
    dr_fulfillment_mirror,
    shipment_execute,
    shipment_plan,
    shipment_record,
    shippable_units,
    warehouse_shipment_mirror,
)
from tests.conftest import fixture
from tests.fulfillment.order_stories import order_with_partner_gadgets

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]


def drs_fulfillment(**changes) -> dict:
    """DR's fulfillment.created of the managed (orchestrated) unit, with its tracking."""
    return {**fixture("event_fulfillment_created.json")["data"]["object"], **changes}


@pytest.fixture
def order():
    return order_upsert(data=fixture("order.json"))


def test_drs_own_fulfillment_is_kept_and_becomes_the_shipment_with_its_tracking(order):
    data = drs_fulfillment()
    dr_fulfillment_mirror(data=data)
    record = DrFulfillment.objects.get()
    assert (record.dr_fulfillment_id, record.dr_shipment_id) == (data["id"], data["shipmentId"])
    assert (record.tracking_company, record.tracking_number, record.tracking_url) == (
        "UPS",
        "1Z999AA10123456784",
        "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    )
    assert record.items == data["items"] and record.dr_created_at == parse_datetime(data["createdTime"])
    assert "orderDetails" not in record.raw and record.raw["shipmentId"] == data["shipmentId"]
    shipment = Shipment.objects.get()
    assert (shipment.dr_shipment_id, shipment.source) == (data["shipmentId"], Shipment.Source.DR_FULFILLMENT)
    assert (shipment.tracking_company, shipment.tracking_number, shipment.tracking_url) == (
        record.tracking_company,
        record.tracking_number,
        record.tracking_url,
    )
    assert shipment.shipped_at == parse_datetime("2026-11-20T12:00:00Z")
    assert [(item.order_line.dr_sku_id, item.quantity) for item in shipment.items.all()] == [("orch-1", 1)]
    managed = order.lines.get(dr_sku_id="orch-1")
    assert (managed.shipped, managed.fulfilled) == (1, 1)
    assert Notification.objects.filter(kind=Notification.Kind.SHIPPED).count() == 1
    assert not Instruction.objects.filter(kind=POST_FULFILLMENT).exists()


def test_a_fulfillment_without_a_shipment_id_is_its_own_shipment_and_without_tracking_has_none(order):
    data = drs_fulfillment()
    for key in ("shipmentId", "trackingCompany", "trackingNumber", "trackingUrl", "createdTime"):
        data.pop(key)
    dr_fulfillment_mirror(data=data)
    shipment = Shipment.objects.get()
    assert shipment.dr_shipment_id == data["id"]
    assert (shipment.tracking_company, shipment.tracking_number, shipment.tracking_url) == ("", "", "")
    assert shipment.shipped_at is not None


def test_two_fulfillments_of_one_shipment_make_one_shipment(order):
    order = order_upsert(
        data={**fixture("order.json"), "items": [{**fixture("order.json")["items"][1], "quantity": 2}]}
    )
    first = drs_fulfillment()
    dr_fulfillment_mirror(data=first)
    second = drs_fulfillment(id="ful_second")
    dr_fulfillment_mirror(data=second)
    assert DrFulfillment.objects.count() == 2
    assert Shipment.objects.count() == 1
    assert order.lines.get(dr_sku_id="orch-1").fulfilled == 2


def test_drs_release_of_a_managed_unit_is_counted_and_told_once_per_fulfillment(order):
    released = drs_fulfillment()
    released["items"] = [{**released["items"][0], "quantity": 0, "cancelQuantity": 1}]
    dr_fulfillment_mirror(data=released)
    dr_fulfillment_mirror(data=copy.deepcopy(released))
    managed = order.lines.get(dr_sku_id="orch-1")
    assert (managed.cancelled, managed.fulfilled, managed.shipped) == (0 + 1, 0, 0)
    assert not Shipment.objects.exists()
    [email] = Notification.objects.filter(kind=Notification.Kind.CANCELLED)
    assert email.key == f"cancelled:dr:{released['id']}"


def test_items_of_lines_dr_does_not_fulfil_are_skipped_not_the_rest(order):
    data = drs_fulfillment()
    widget = {"itemId": "143040030336", "skuId": "dist-1", "quantity": 1}  # a distributed line: ours to capture
    unknown = {"itemId": "999", "quantity": 1}
    managed = {k: v for k, v in data["items"][0].items() if k != "cancelQuantity"}
    dr_fulfillment_mirror(data={**data, "items": [widget, unknown, managed]})
    lines = {line.dr_sku_id: (line.shipped, line.fulfilled, line.cancelled) for line in order.lines.all()}
    assert lines == {"dist-1": (0, 0, 0), "orch-1": (1, 1, 0)}


# --- recorded by customer service ----------------------------------------------------------------


def test_a_recorded_shipment_keeps_its_tracking_and_who_recorded_it(django_user_model):
    order = order_with_partner_gadgets(dr_order_id="231388420777")
    gadget = order.lines.get(dr_sku_id="3p-1")
    agent = django_user_model.objects.create_user("carol", password="x")
    shipment = shipment_record(
        order=order,
        items=[(gadget.dr_item_id, 2)],
        tracking_company="UPS",
        tracking_number="1Z999",
        tracking_url="https://www.ups.com/track?tracknum=1Z999",
        by=agent,
    )
    shipment = Shipment.objects.get(pk=shipment.pk)
    assert (shipment.tracking_company, shipment.tracking_number, shipment.tracking_url) == (
        "UPS",
        "1Z999",
        "https://www.ups.com/track?tracknum=1Z999",
    )
    assert (shipment.source, shipment.recorded_by) == (Shipment.Source.RECORDED, agent)
    [capture] = Instruction.objects.filter(kind=POST_FULFILLMENT)
    assert capture.payload == {
        "orderId": "231388420777",
        "trackingCompany": "UPS",
        "trackingNumber": "1Z999",
        "trackingUrl": "https://www.ups.com/track?tracknum=1Z999",
        "items": [{"itemId": gadget.dr_item_id, "quantity": 2}],
    }

    untracked = shipment_record(order=order, items=[(gadget.dr_item_id, 1)])
    assert (untracked.tracking_company, untracked.tracking_number, untracked.tracking_url) == ("", "", "")
    assert untracked.recorded_by is None
    last = Instruction.objects.filter(kind=POST_FULFILLMENT).order_by("-pk").first()
    assert last.payload == {"orderId": "231388420777", "items": [{"itemId": gadget.dr_item_id, "quantity": 1}]}


# --- what can be recorded as shipped, and why not --------------------------------------------------------


@pytest.fixture
def gadgets():
    """Three partner gadgets (third party) next to a distributed widget, on an accepted order."""
    return order_with_partner_gadgets(dr_order_id="231388420888").lines.get(dr_sku_id="3p-1")


def test_shippable_units_are_those_neither_shipped_cancelled_nor_being_cancelled(gadgets):
    order = gadgets.order
    assert shippable_units(order=order, line=gadgets) == (3, "")
    gadgets.shipped, gadgets.cancelled = 1, 1
    assert shippable_units(order=order, line=gadgets) == (1, "")
    gadgets.cancel_requested = 1
    assert shippable_units(order=order, line=gadgets) == (0, "nothing is left to ship")
    widget = order.lines.get(dr_sku_id="dist-1")
    assert shippable_units(order=order, line=widget) == (0, "it is fulfilled through DR (distributed)")
    widget.fulfillment_model = ""
    assert shippable_units(order=order, line=widget) == (0, "it is fulfilled through DR (unknown model)")
    Order.objects.filter(pk=order.pk).update(state="in_review")
    in_review = Order.objects.get(pk=order.pk)
    assert shippable_units(order=in_review, line=gadgets) == (0, "the order is in review, not accepted")


def test_a_refused_shipment_plan_keeps_what_was_asked_and_says_why(gadgets):
    order = gadgets.order
    tracking = {"tracking_company": "UPS", "tracking_number": "1Z9", "tracking_url": "https://ups.example/1Z9"}
    refusals = {
        "say which items shipped": [],
        f"item {gadgets.dr_item_id}: the quantity must be a whole number of at least 1": [(gadgets.dr_item_id, 0)],
        "item 999 is not a line of order 231388420888": [("999", 1)],
    }
    for refusal, items in refusals.items():
        plan = shipment_plan(order=order, items=items, **tracking)
        assert (plan.refusal, plan.order, plan.steps) == (refusal, order, [])
        assert (plan.tracking_company, plan.tracking_number, plan.tracking_url) == (
            "UPS",
            "1Z9",
            "https://ups.example/1Z9",
        )
    order.lines.filter(dr_sku_id="dist-1").update(fulfillment_model="")
    widget = order.lines.get(dr_sku_id="dist-1")
    plan = shipment_plan(order=order, items=[(widget.dr_item_id, 1), (gadgets.dr_item_id, 4)], **tracking)
    assert plan.refusal == (
        "Cannot record this shipment: Distributed widget is fulfilled through DR (unknown model); "
        "Partner gadget: asked to ship 4, 3 can ship."
    )
    assert (plan.order, plan.tracking_number) == (order, "1Z9")
    Order.objects.filter(pk=order.pk).update(state="in_review")
    in_review = Order.objects.get(pk=order.pk)
    plan = shipment_plan(order=in_review, items=[(gadgets.dr_item_id, 1)], **tracking)
    assert (plan.refusal, plan.order, plan.tracking_url) == (
        "order 231388420888 is in review, not accepted",
        in_review,
        "https://ups.example/1Z9",
    )


def test_every_refused_line_is_named_not_only_the_first(gadgets):
    order = gadgets.order
    widget = order.lines.get(dr_sku_id="dist-1")
    plan = shipment_plan(order=order, items=[(widget.dr_item_id, 1), (gadgets.dr_item_id, 4)])
    assert plan.refusal.endswith("(distributed); Partner gadget: asked to ship 4, 3 can ship.")
    plan = shipment_plan(order=order, items=[(gadgets.dr_item_id, 4), (widget.dr_item_id, 1)])
    assert plan.refusal.endswith("3 can ship; Distributed widget is fulfilled through DR (distributed).")


def test_a_shipment_step_says_how_it_is_tracked(gadgets):
    order = gadgets.order
    [step] = shipment_plan(order=order, items=[(gadgets.dr_item_id, 1)], tracking_number="1Z9").steps
    assert step.what == "Record that 1 unit of Partner gadget shipped, tracked as the carrier 1Z9"
    assert step.dr_call == (
        "POST /fulfillments with quantity 1: DR captures the payment of these units; "
        "the customer is emailed that they shipped."
    )
    [step] = shipment_plan(order=order, items=[(gadgets.dr_item_id, 2)]).steps
    assert step.what == "Record that 2 units of Partner gadget shipped, without tracking"


def test_executing_a_plan_the_order_outgrew_refuses_with_the_new_reason(gadgets):
    order = gadgets.order
    plan = shipment_plan(order=order, items=[(gadgets.dr_item_id, 2)], tracking_number="1Z9")
    shipment_record(order=order, items=[(gadgets.dr_item_id, 2)])
    with pytest.raises(ShipmentRefused) as refused:
        shipment_execute(plan=plan)
    assert str(refused.value) == "Cannot record this shipment: Partner gadget: asked to ship 2, 1 can ship."
    assert order.lines.get(pk=gadgets.pk).shipped == 2
    [capture] = Instruction.objects.filter(kind=POST_FULFILLMENT)
    assert capture.subject == "order:231388420888"


# --- what the warehouse ships ----------------------------------------------------------------------


def warehouse_order(*, pending: int, backordered: int, updated: str | None = "2026-11-20T10:00:00.000Z"):
    order = order_upsert(data=fixture("order.json"))
    data = fixture("fulfillment_order.json")
    data["items"][0].update(quantity=3, pending=pending, backordered=backordered)
    if updated is None:
        data.pop("updatedTime", None)
    else:
        data["updatedTime"] = updated
    fulfillment_order_upsert(order=order, data=data, created_by_us=True)
    return order


def shipped(quantity: int, created="2026-11-20T12:00:00.000Z") -> dict:
    data = fixture("shipment.json")
    data["createdTime"] = created
    data["items"][0]["quantity"] = quantity
    return data


def test_units_shipped_past_the_pending_ones_leave_the_backordered_count():
    warehouse_order(pending=1, backordered=2)
    warehouse_shipment_mirror(data=shipped(2))
    line = FulfillmentOrderLine.objects.get()
    assert (line.pending, line.backordered, line.shipped) == (0, 1, 2)


@pytest.mark.parametrize("updated", ["2026-11-20T10:00:00.000Z", None])
def test_a_snapshot_older_than_the_shipment_arriving_late_does_not_put_the_units_back(updated):
    order = warehouse_order(pending=2, backordered=0, updated=updated)
    warehouse_shipment_mirror(data=shipped(1))
    assert FulfillmentOrder.objects.get().dr_updated_at == parse_datetime("2026-11-20T12:00:00Z")
    late = fixture("fulfillment_order.json")
    late["items"][0].update(quantity=3, pending=2, backordered=0)
    late["updatedTime"] = "2026-11-20T11:00:00.000Z"
    fulfillment_order_upsert(order=order, data=late)
    line = FulfillmentOrderLine.objects.get()
    assert (line.pending, line.shipped) == (1, 1)


def test_a_new_fulfillment_order_that_lists_an_item_twice_keeps_one_line_with_the_later_counts():
    """A new fulfillment order's lines are inserted without looking for them first (issue 14); an
    item DR lists twice must still become one line, updated by its second listing, not a
    unique-key error that loses the fulfillment order."""
    order = order_upsert(data=fixture("order.json"))
    data = fixture("fulfillment_order.json")
    data["items"] = [{**data["items"][0], "pending": 2}, {**data["items"][0], "pending": 1, "backordered": 1}]
    fulfillment_order_upsert(order=order, data=data, created_by_us=True)
    line = FulfillmentOrderLine.objects.get()
    assert (line.pending, line.backordered) == (1, 1)

"""The fulfillment performers against DR's HTTP API, faked with ``responses`` at the client's edge.

After an answer is lost, the sender asks DR whether the effect already happened before sending
again: a POST /fulfillments is found by the instruction id it carried in ``metadata``, or, for a
warehouse shipment, by its ``shipmentId``.
"""

import copy
import json
import re
from datetime import timedelta

import pytest
import requests
import responses

from commerce.models import Order
from commerce.services import order_upsert
from digitalriver.models import Attempt, Instruction
from digitalriver.services.outbox import outbox_sweep
from fulfillment.cancellations import cancellation_answered, order_cancel
from fulfillment.kinds import CREATE_FULFILLMENT_ORDER, POST_FULFILLMENT
from fulfillment.models import CancellationRequest, FulfillmentOrder, Notification
from fulfillment.performers import CreateFulfillmentOrderPerformer
from fulfillment.services import fulfillment_order_ensure, fulfillment_order_upsert
from fulfillment.shipments import shipment_record
from tests.conftest import fixture
from tests.fulfillment.order_stories import order_with_partner_gadgets

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

BASE = "https://dr.performers.test"
ORDER = "231388420777"


class FulfillmentsAtDR:
    """POST and GET /fulfillments, shaped like DR's fulfillment (tests/fixtures/dr/fulfillment.json).

    ``lose_answers`` POSTs are taken by DR, which then cuts the connection before answering.
    """

    def __init__(self, rsps: responses.RequestsMock):
        self.held: list[dict] = []
        self.posts: list[dict] = []
        self.gets: list[str] = []
        self.lose_answers = 0
        self.refuse: tuple[int, dict] | None = None
        self.page_size = 100
        rsps.add_callback(responses.POST, f"{BASE}/fulfillments", callback=self._post)
        rsps.add_callback(responses.GET, re.compile(rf"{re.escape(BASE)}/fulfillments(\?.*)?$"), callback=self._get)

    def hold(self, body: dict) -> dict:
        fulfillment = copy.deepcopy(fixture("fulfillment.json"))
        fulfillment.pop("shipmentId")
        fulfillment.update(
            {key: value for key, value in body.items() if key in ("orderId", "shipmentId", "metadata", "items")}
        )
        fulfillment["id"] = f"ful_{len(self.held) + 1}"
        self.held.append(fulfillment)
        return fulfillment

    def _post(self, request):
        body = json.loads(request.body)
        self.posts.append(body)
        if self.refuse is not None:
            status, error = self.refuse
            return status, {}, json.dumps(error)
        fulfillment = self.hold(body)
        if self.lose_answers:
            self.lose_answers -= 1
            return requests.exceptions.ReadTimeout("read timed out")
        return 201, {}, json.dumps(fulfillment)

    def _get(self, request):
        self.gets.append(request.url)
        after = request.params.get("startingAfter")
        start = next((n + 1 for n, held in enumerate(self.held) if held["id"] == after), 0)
        page = self.held[start : start + self.page_size]
        return 200, {}, json.dumps({"hasMore": start + self.page_size < len(self.held), "data": page})


@pytest.fixture
def dr(settings):
    settings.DR_API_BASE_URL = BASE
    settings.DR_RATE_LIMIT_PER_SECOND = 100_000
    settings.DR_CLIENT_MAX_RETRIES = 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FulfillmentsAtDR(rsps)


@pytest.fixture
def gadgets():
    """An accepted order with 3 partner gadgets (third party: we capture and release them)."""
    return order_with_partner_gadgets(dr_order_id=ORDER).lines.get(dr_sku_id="3p-1")


def release_one(gadget):
    order_cancel(order=gadget.order, items=[(gadget.dr_item_id, 1)], reason="changed mind")


def record_one_shipped(gadget):
    shipment_record(order=gadget.order, items=[(gadget.dr_item_id, 1)], tracking_number="1Z999")


@pytest.mark.parametrize("action", [release_one, record_one_shipped], ids=["release", "recorded shipment"])
def test_a_fulfillment_whose_answer_was_lost_is_found_by_its_instruction_id_and_not_sent_again(dr, gadgets, action):
    # An earlier call for the same order, with the same items, holds another instruction's id.
    action(gadgets)
    [earlier] = Instruction.objects.filter(kind=POST_FULFILLMENT)
    outbox_sweep(ignore_backoff=True)
    assert Instruction.objects.get(pk=earlier.pk).state == Instruction.State.DONE

    action(gadgets)
    instruction = Instruction.objects.filter(kind=POST_FULFILLMENT).exclude(pk=earlier.pk).get()
    assert "shipmentId" not in instruction.payload  # nothing but the instruction id names the call
    dr.lose_answers = 1
    outbox_sweep(ignore_backoff=True)
    instruction = Instruction.objects.get(pk=instruction.pk)
    assert instruction.state == Instruction.State.RETRY_WAIT and instruction.effect_uncertain
    assert len(dr.posts) == 2

    outbox_sweep(ignore_backoff=True)
    instruction = Instruction.objects.get(pk=instruction.pk)
    assert len(dr.posts) == 2, "sent twice: the earlier call was not found by its instruction id"
    assert instruction.state == Instruction.State.DONE
    assert instruction.result["id"] == "ful_2"
    assert instruction.result["metadata"] == {"instructionId": str(instruction.pk)}
    assert instruction.attempt_set.order_by("-number").first().outcome == Attempt.Outcome.ALREADY_DONE
    gadget = gadgets.order.lines.get(pk=gadgets.pk)
    if action is release_one:
        assert (gadget.cancelled, gadget.cancel_requested) == (2, 0)
        assert CancellationRequest.objects.filter(instruction=instruction).get().state == "released"
    else:
        assert (gadget.shipped, gadget.fulfilled) == (2, 2)


def test_a_warehouse_shipments_capture_is_also_found_by_its_shipment_id(dr, deliver):
    """DR's record of the capture may not carry our metadata (sent by an earlier instruction for the
    same shipment): the shipment id alone says the capture holds."""
    deliver("order.accepted", fixture("order.json"))
    deliver("fulfillment_order.pending", fixture("fulfillment_order.json"))
    shipment = fixture("event_fulfillment_order_shipped.json")["data"]["object"]
    dr.lose_answers = 1
    deliver("fulfillment_order.shipped", shipment)
    instruction = Instruction.objects.get(kind=POST_FULFILLMENT)
    assert instruction.payload["shipmentId"] == shipment["id"] and instruction.effect_uncertain
    [held] = dr.held
    held["metadata"] = {}
    dr.held.insert(0, {**held, "id": "ful_0", "shipmentId": "another-shipment"})

    outbox_sweep(ignore_backoff=True)
    instruction = Instruction.objects.get(pk=instruction.pk)
    assert len(dr.posts) == 1
    assert (instruction.state, instruction.result["id"]) == (Instruction.State.DONE, "ful_1")
    assert Order.objects.get(dr_order_id="231388420336").lines.get(dr_sku_id="dist-1").fulfilled == 1


def test_the_lookup_reads_every_page_of_drs_fulfillments(dr, gadgets, settings):
    release_one(gadgets)
    instruction = Instruction.objects.get(kind=POST_FULFILLMENT)
    Instruction.objects.filter(pk=instruction.pk).update(effect_uncertain=True)
    for number in range(3):
        dr.hold({"orderId": ORDER, "metadata": {"instructionId": f"other-{number}"}})
    dr.hold({"orderId": ORDER, "metadata": {"instructionId": str(instruction.pk)}, "items": []})
    dr.page_size = 2

    outbox_sweep(ignore_backoff=True)
    instruction = Instruction.objects.get(pk=instruction.pk)
    assert dr.posts == []
    assert (instruction.state, instruction.result["id"]) == (Instruction.State.DONE, "ful_4")
    assert all(f"orderId={ORDER}" in url for url in dr.gets) and len(dr.gets) == 2


def test_a_refused_capture_flags_the_order_for_a_person(dr, gadgets):
    record_one_shipped(gadgets)
    dr.refuse = (409, fixture("error_quantity_too_large.json"))
    outbox_sweep(ignore_backoff=True)
    instruction = Instruction.objects.get(kind=POST_FULFILLMENT)
    assert instruction.state == Instruction.State.FAILED
    order = Order.objects.get(pk=gadgets.order_id)
    assert order.capture_failed
    assert order.notifications.filter(kind=Notification.Kind.CAPTURE_FAILED).count() == 1


def test_a_refused_release_is_not_a_failed_capture(dr, gadgets):
    release_one(gadgets)
    dr.refuse = (409, fixture("error_quantity_too_large.json"))
    outbox_sweep(ignore_backoff=True)
    assert Instruction.objects.get(kind=POST_FULFILLMENT).state == Instruction.State.FAILED
    assert not Order.objects.get(pk=gadgets.order_id).capture_failed


# --- POST /fulfillment-orders ----------------------------------------------------------------------


def test_a_lost_fulfillment_order_request_finds_ours_not_drs_own_and_mirrors_it(settings):
    """DR's own fulfillment order of the orchestrated line has the same upstreamId as ours."""
    settings.DR_API_BASE_URL = BASE
    settings.DR_RATE_LIMIT_PER_SECOND = 100_000
    order = order_upsert(data=fixture("order.json"))
    widget = order.lines.get(dr_sku_id="dist-1")
    managed = order.lines.get(dr_sku_id="orch-1")
    fulfillment_order_ensure(order=order)
    [instruction] = Instruction.objects.filter(kind=CREATE_FULFILLMENT_ORDER)
    drs_own = {**fixture("fulfillment_order.json"), "id": "fo-drs-own"}
    drs_own["items"] = [{**drs_own["items"][0], "id": "foi-m", "upstreamId": managed.dr_item_id, "quantity": 1}]
    ours = fixture("fulfillment_order.json")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        post = rsps.post(f"{BASE}/fulfillment-orders", body=requests.exceptions.ReadTimeout("read timed out"))
        outbox_sweep(ignore_backoff=True)
        assert Instruction.objects.get(pk=instruction.pk).effect_uncertain
        lookup = rsps.get(
            f"{BASE}/fulfillment-orders",
            json={"hasMore": False, "data": [drs_own, ours]},
            match=[responses.matchers.query_param_matcher({"upstreamIds": order.dr_order_id})],
        )
        outbox_sweep(ignore_backoff=True)
        assert (post.call_count, lookup.call_count) == (1, 1)
    instruction = Instruction.objects.get(pk=instruction.pk)
    assert (instruction.state, instruction.result["id"]) == (Instruction.State.DONE, ours["id"])
    mirrored = FulfillmentOrder.objects.get(order=order)
    assert (mirrored.dr_fulfillment_order_id, mirrored.created_by_us) == (ours["id"], True)
    assert [line.order_line for line in mirrored.lines.all()] == [widget]


def test_a_lost_fulfillment_order_request_not_found_at_dr_is_sent_again(settings):
    settings.DR_API_BASE_URL = BASE
    settings.DR_RATE_LIMIT_PER_SECOND = 100_000
    order = order_upsert(data=fixture("order.json"))
    fulfillment_order_ensure(order=order)
    drs_own = {**fixture("fulfillment_order.json"), "id": "fo-drs-own"}
    drs_own["items"][0]["upstreamId"] = order.lines.get(dr_sku_id="orch-1").dr_item_id
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        post = rsps.post(f"{BASE}/fulfillment-orders", body=requests.exceptions.ReadTimeout("read timed out"))
        outbox_sweep(ignore_backoff=True)
        rsps.replace(responses.POST, f"{BASE}/fulfillment-orders", json=fixture("fulfillment_order.json"), status=201)
        rsps.get(f"{BASE}/fulfillment-orders", json={"hasMore": False, "data": [drs_own]})
        outbox_sweep(ignore_backoff=True)
        assert len([call for call in rsps.calls if call.request.method == "POST"]) == 2
    assert post.call_count >= 1
    assert FulfillmentOrder.objects.get(order=order).created_by_us


def test_an_answer_without_an_id_mirrors_nothing():
    order = order_upsert(data=fixture("order.json"))
    instruction = fulfillment_order_ensure(order=order)
    CreateFulfillmentOrderPerformer().on_done(instruction, {"alreadyDone": ["fulfillment_order_exists"]})
    assert not FulfillmentOrder.objects.exists()


# --- POST /fulfillment-cancellations ---------------------------------------------------------------


@pytest.fixture
def cancelling(settings):
    """Two widgets pending at the warehouse; customer service asks to cancel one."""
    settings.DR_API_BASE_URL = BASE
    settings.DR_RATE_LIMIT_PER_SECOND = 100_000
    order = order_upsert(data=fixture("order.json"))
    fulfillment_order_upsert(order=order, data=fixture("fulfillment_order.json"), created_by_us=True)
    widget = order.lines.get(dr_sku_id="dist-1")
    [request] = order_cancel(order=order, items=[(widget.dr_item_id, 1)], reason="changed mind")
    return request


def created_event(request, *, units=1, dr_id="fc-1") -> dict:
    data = fixture("fulfillment_cancellation.json")
    data.update(id=dr_id, state="pending", fulfillmentOrderId=request.fulfillment_order.dr_fulfillment_order_id)
    data["items"] = [{**data["items"][0], "quantity": units}]
    data["items"][0].pop("quantityAccepted")
    event = fixture("event_fulfillment_cancellation_accepted.json")
    event.update(id=f"evt-{dr_id}", type="fulfillment_cancellation.created")
    event["data"]["object"] = data
    return event


def test_a_lost_cancellation_request_is_found_in_drs_list_and_not_sent_twice(cancelling):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        post = rsps.post(f"{BASE}/fulfillment-cancellations", body=requests.exceptions.ReadTimeout("read timed out"))
        outbox_sweep(ignore_backoff=True)
        listed = rsps.get(
            f"{BASE}/fulfillment-cancellations",
            json={
                "hasMore": False,
                "data": [
                    created_event(cancelling, units=2, dr_id="fc-x")["data"]["object"],
                    created_event(cancelling)["data"]["object"],
                ],
            },
        )
        events = rsps.get(f"{BASE}/events", json={"hasMore": False, "data": []})
        outbox_sweep(ignore_backoff=True)
        assert (post.call_count, listed.call_count, events.call_count) == (1, 1, 0)
        query = listed.calls[0].request.params
    assert query["fulfillmentOrderId"] == cancelling.instruction.payload["fulfillmentOrderId"]
    request = CancellationRequest.objects.get(pk=cancelling.pk)
    assert (request.state, request.dr_cancellation_id) == (CancellationRequest.State.SUBMITTED, "fc-1")


def test_where_drs_list_cannot_be_read_a_lost_cancellation_request_is_found_in_its_events(cancelling):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        post = rsps.post(f"{BASE}/fulfillment-cancellations", body=requests.exceptions.ReadTimeout("read timed out"))
        outbox_sweep(ignore_backoff=True)
        rsps.get(f"{BASE}/fulfillment-cancellations", status=405, json={"type": "method_not_allowed", "errors": []})
        events = rsps.get(
            f"{BASE}/events",
            json={
                "hasMore": False,
                "data": [created_event(cancelling, units=2, dr_id="fc-x"), created_event(cancelling)],
            },
        )
        outbox_sweep(ignore_backoff=True)
        assert (post.call_count, events.call_count) == (1, 1)
        query = events.calls[0].request.params
    assert query["types"] == "fulfillment_cancellation.created"
    since = cancelling.instruction.created_at - timedelta(minutes=1)
    assert query["createdTime[gte]"] == since.isoformat().replace("+00:00", "Z")
    request = CancellationRequest.objects.get(pk=cancelling.pk)
    assert (request.state, request.dr_cancellation_id) == (CancellationRequest.State.SUBMITTED, "fc-1")
    assert Instruction.objects.get(pk=cancelling.instruction_id).state == Instruction.State.DONE


def test_a_lost_cancellation_request_already_matched_by_its_event_is_not_looked_up(cancelling):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        post = rsps.post(f"{BASE}/fulfillment-cancellations", body=requests.exceptions.ReadTimeout("read timed out"))
        outbox_sweep(ignore_backoff=True)
        cancellation_answered(data=created_event(cancelling)["data"]["object"])
        events = rsps.get(f"{BASE}/events", json={"hasMore": False, "data": []})
        outbox_sweep(ignore_backoff=True)
        assert (post.call_count, events.call_count) == (1, 0)
    instruction = Instruction.objects.get(pk=cancelling.instruction_id)
    assert (instruction.state, instruction.result) == (Instruction.State.DONE, {"id": "fc-1"})


def test_a_lost_cancellation_request_not_at_dr_is_sent_again_and_submitted(cancelling):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(f"{BASE}/fulfillment-cancellations", body=requests.exceptions.ReadTimeout("read timed out"))
        outbox_sweep(ignore_backoff=True)
        rsps.replace(
            responses.POST,
            f"{BASE}/fulfillment-cancellations",
            json={**created_event(cancelling)["data"]["object"], "id": "fc-2"},
            status=201,
        )
        rsps.get(
            f"{BASE}/fulfillment-cancellations",
            json={"hasMore": False, "data": [created_event(cancelling, units=2)["data"]["object"]]},
        )
        outbox_sweep(ignore_backoff=True)
        posted = [json.loads(call.request.body) for call in rsps.calls if call.request.method == "POST"]
    assert posted == [cancelling.instruction.payload] * 2
    request = CancellationRequest.objects.get(pk=cancelling.pk)
    assert (request.state, request.dr_cancellation_id) == (CancellationRequest.State.SUBMITTED, "fc-2")


def test_a_refused_cancellation_request_gives_the_units_back(cancelling):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(f"{BASE}/fulfillment-cancellations", json=fixture("error_quantity_too_large.json"), status=409)
        outbox_sweep(ignore_backoff=True)
    request = CancellationRequest.objects.get(pk=cancelling.pk)
    assert request.state == CancellationRequest.State.FAILED
    assert request.order.lines.get(dr_sku_id="dist-1").cancel_requested == 0
    assert Order.objects.get(pk=request.order_id).cancellation_rejected

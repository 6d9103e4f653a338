"""The fulfillment performers against DR's HTTP API, faked with ``responses`` at the client's edge.

After an answer is lost, the sender asks DR whether the effect already happened before sending
again: a POST /fulfillments is found by the instruction id it carried in ``metadata``, or, for a
warehouse shipment, by its ``shipmentId``.
"""

import copy
import json
import re

import pytest
import requests
import responses

from catalog.models import Sku
from commerce.services import order_upsert
from digitalriver.models import Attempt, Instruction
from digitalriver.services.outbox import outbox_sweep
from fulfillment.cancellations import order_cancel
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.models import CancellationRequest
from fulfillment.shipments import shipment_record
from tests.fulfillment.order_stories import catalog, fixture, order_data  # noqa: F401  (catalog: autouse fixture)

pytestmark = pytest.mark.django_db

BASE = "https://dr.performers.test"
ORDER = "231388420777"


class FulfillmentsAtDR:
    """POST and GET /fulfillments, shaped like DR's fulfillment (tests/fixtures/dr/fulfillment.json).

    ``lose_answers`` POSTs are taken by DR, which then cuts the connection before answering.
    """

    def __init__(self, rsps: responses.RequestsMock):
        self.held: list[dict] = []
        self.posts: list[dict] = []
        self.lose_answers = 0
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
        fulfillment = self.hold(body)
        if self.lose_answers:
            self.lose_answers -= 1
            return requests.exceptions.ReadTimeout("read timed out")
        return 201, {}, json.dumps(fulfillment)

    def _get(self, request):
        return 200, {}, json.dumps({"hasMore": False, "data": self.held})


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
    Sku.objects.create(
        sku_id="3p-1",
        name="Partner gadget",
        fulfillment_model=Sku.FulfillmentModel.THIRD_PARTY,
        tax_code="4512.1",
        eccn="EAR99",
        country_of_origin="US",
        part_number="P-3",
    )
    data = order_data(dr_order_id=ORDER)
    data["items"][1].update(skuId="3p-1", quantity=3, productDetails={"id": "3p-1", "name": "Partner gadget"})
    return order_upsert(data=data).lines.get(dr_sku_id="3p-1")


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

"""DR's return endpoints faked with ``responses`` at the client's edge, shaped like DR's returns
(tests/fixtures/dr/fulfillment_return.json, return.json), and the orders the return tests start from."""

import copy
import json
import re
from datetime import UTC, datetime

import requests
import responses

from commerce.models import Order
from digitalriver.models import Instruction
from digitalriver.services.outbox import outbox_sweep
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.services import fulfillment_accepted
from fulfillment.shipments import shipment_record
from tests.conftest import fixture, fulfillment_order
from tests.fulfillment.order_stories import order_with_partner_gadgets

BASE = "https://dr.returns.test"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ReturnsAtDR:
    """POST/GET /fulfillment-returns, POST/GET /returns and /returns/{id}.

    ``lose_answers`` POSTs take effect at DR, which then cuts the connection before answering.
    """

    def __init__(self, rsps: responses.RequestsMock):
        self.fulfillment_returns: list[dict] = []
        self.returns: dict[str, dict] = {}
        self.posts: list[tuple[str, dict]] = []
        self.lose_answers = 0
        self.fail_receipts = 0  # the next receipts answer 502 before DR records anything
        self.refuse: tuple[int, dict] | None = None
        base = re.escape(BASE)
        rsps.add_callback(responses.POST, f"{BASE}/fulfillment-returns", callback=self._post_fulfillment_return)
        rsps.add_callback(responses.GET, re.compile(rf"{base}/fulfillment-returns(\?.*)?$"), callback=self._list_fr)
        rsps.add_callback(responses.POST, f"{BASE}/returns", callback=self._post_return)
        rsps.add_callback(responses.GET, re.compile(rf"{base}/returns(\?.*)?$"), callback=self._list_returns)
        rsps.add_callback(responses.POST, re.compile(rf"{base}/returns/[^/?]+$"), callback=self._update_return)
        rsps.add_callback(responses.GET, re.compile(rf"{base}/returns/[^/?]+$"), callback=self._get_return)

    def _answer(self, body: dict):
        if self.lose_answers:
            self.lose_answers -= 1
            return requests.exceptions.ReadTimeout("read timed out")
        return 201, {}, json.dumps(body)

    def _refused(self):
        if self.refuse is not None:
            status, error = self.refuse
            return status, {}, json.dumps(error)
        return None

    def _post_fulfillment_return(self, request):
        body = json.loads(request.body)
        self.posts.append(("/fulfillment-returns", body))
        if refused := self._refused():
            return refused
        made = {
            **fixture("fulfillment_return.json"),
            "id": f"ret_fr_{len(self.fulfillment_returns) + 1}",
            "createdTime": now(),
            "fulfillmentOrderId": body["fulfillmentOrderId"],
            "upstreamId": body.get("upstreamId"),
            "reason": body.get("reason", ""),
            "items": [
                {**item, "inventoryItemId": "dist-1", "quantityAccepted": 0, "state": "pending"}
                for item in body["items"]
            ],
        }
        self.fulfillment_returns.append(made)
        return self._answer(made)

    def _list_fr(self, request):
        wanted = request.params.get("fulfillmentOrderId")
        data = [made for made in self.fulfillment_returns if not wanted or made["fulfillmentOrderId"] == wanted]
        return 200, {}, json.dumps({"hasMore": False, "data": data})

    def _post_return(self, request):
        body = json.loads(request.body)
        self.posts.append(("/returns", body))
        if refused := self._refused():
            return refused
        made = {
            "id": f"ret_{len(self.returns) + 1}",
            "createdTime": now(),
            "updatedTime": now(),
            "currency": "USD",
            "orderId": body["orderId"],
            "reason": body.get("reason", ""),
            "items": [
                {
                    "itemId": item["itemId"],
                    "amount": 10.0,
                    "quantity": item["quantity"],
                    "quantityAccepted": 0,
                    "skuId": "3p-1",
                    "state": "created",
                }
                for item in body["items"]
            ],
            "state": "created",
            "liveMode": False,
            "metadata": body.get("metadata", {}),
        }
        self.returns[made["id"]] = made
        return self._answer(made)

    def _list_returns(self, request):
        wanted = request.params.get("orderId")
        data = [made for made in self.returns.values() if not wanted or made["orderId"] == wanted]
        return 200, {}, json.dumps({"hasMore": False, "data": data})

    def _update_return(self, request):
        return_id = request.url.rsplit("/", 1)[1]
        body = json.loads(request.body)
        self.posts.append((f"/returns/{return_id}", body))
        if self.fail_receipts:
            self.fail_receipts -= 1
            return 502, {}, json.dumps({"type": "bad_gateway", "errors": [{"code": "bad_gateway", "message": "down"}]})
        made = self.returns[return_id]
        # Each receipt adds its units (creating-a-return.md, "Multiple shipment returns").
        for item in made["items"]:
            if body.get("state") == "accepted":
                item["quantityAccepted"] = item["quantity"]
            for received in body.get("items") or []:
                if received["itemId"] == item["itemId"]:
                    item["quantityAccepted"] += int(received["quantity"])
            if item["quantityAccepted"] >= item["quantity"]:
                item["state"] = "accepted"
        if all(item["state"] == "accepted" for item in made["items"]):
            made["state"] = "accepted"
        made["updatedTime"] = now()
        answer = self._answer(copy.deepcopy(made))
        return answer if not isinstance(answer, tuple) else (200, {}, answer[2])

    def _get_return(self, request):
        return 200, {}, json.dumps(self.returns[request.url.rsplit("/", 1)[1]])


def use_fake_dr(settings) -> None:
    settings.DR_API_BASE_URL = BASE
    settings.DR_RATE_LIMIT_PER_SECOND = 100_000
    settings.DR_CLIENT_MAX_RETRIES = 0


def captured(instruction: Instruction) -> None:
    """DR accepted the capture the instruction asked for (as the outbox's on_done records it)."""
    fulfillment_accepted(payload=instruction.payload, result={}, instruction_id=instruction.pk)
    Instruction.objects.filter(pk=instruction.pk).update(state=Instruction.State.DONE)


def warehouse_shipped_one(deliver) -> Order:
    """The documented order, its distributed widget's fulfillment order, 1 of its 2 units shipped by the
    warehouse and its payment captured."""
    deliver("order.accepted", fixture("order.json"))
    deliver("fulfillment_order.pending", fulfillment_order())
    deliver("fulfillment_order.shipped", fixture("shipment.json"))
    for instruction in Instruction.objects.filter(kind=POST_FULFILLMENT):
        if any(item.get("quantity") for item in instruction.payload.get("items", [])):
            captured(instruction)
    return Order.objects.get(dr_order_id="231388420336")


def partner_gadgets_shipped(*, dr_order_id: str = "231388420777", units: int = 3) -> Order:
    """An accepted order whose 3 partner gadgets (third party) shipped and were captured."""
    order = order_with_partner_gadgets(dr_order_id=dr_order_id)
    gadget = order.lines.get(dr_sku_id="3p-1")
    shipment_record(order=order, items=[(gadget.dr_item_id, units)], tracking_number="1Z999")
    for instruction in Instruction.objects.filter(kind=POST_FULFILLMENT, subject=f"order:{dr_order_id}"):
        captured(instruction)
    return Order.objects.get(pk=order.pk)


def sweep() -> None:
    outbox_sweep(ignore_backoff=True)

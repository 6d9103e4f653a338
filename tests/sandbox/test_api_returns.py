"""Contract: /fulfillment-returns (and the warehouse's part) and /returns (with DR's own refund)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox.delivery import deliver_due
from sandbox.models import Event, FulfillmentOrderItem, OrderItem
from sandbox.services import disputes, returns, warehouse
from tests.conftest import fixture

from .conftest import assert_keys_like
from .test_api_catalog import error_of
from .test_api_fulfillment import fulfillment_order_body
from .test_api_orders import fulfill, items_by_sku


def types(order_id):
    return list(Event.objects.filter(order_id=order_id).order_by("id").values_list("type", flat=True))


def shipped_fulfillment_order(api, place, skus, quantity=3, ship=2):
    order = place((skus["distributed"], quantity))
    line = items_by_sku(api, order.dr_id)[skus["distributed"]]["id"]
    created = api.post("/fulfillment-orders", fulfillment_order_body(order.dr_id, line, quantity=quantity)).json()
    fo_item = created["items"][0]["id"]
    warehouse.warehouse_ship(fulfillment_order_id=created["id"], items=[(fo_item, ship)])
    return order, created["id"], fo_item


def ask(api, fo_id, fo_item, quantity, order_id="", **extra):
    body = {"fulfillmentOrderId": fo_id, "items": [{"fulfillmentOrderItemId": fo_item, "quantity": quantity}], **extra}
    if order_id:
        body["upstreamId"] = order_id
    return api.post("/fulfillment-returns", body)


def test_fulfillment_return_lifecycle_and_counters(api, place, skus, receiver):
    order, fo_id, fo_item = shipped_fulfillment_order(api, place, skus)
    response = ask(api, fo_id, fo_item, 2, order.dr_id, reason="Too small")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] == "created" and created["type"] == "client" and created["livemode"] is False
    assert created["upstreamId"] == order.dr_id and created["reason"] == "Too small" and "location" not in created
    assert created["items"] == [
        {
            "fulfillmentOrderItemId": fo_item,
            "inventoryItemId": "dist-1",
            "quantity": 2,
            "quantityAccepted": 0,
            "state": "pending",
        }
    ]
    # Both shipped units are asked back already: none left to return.
    again = ask(api, fo_id, fo_item, 1)
    assert again.status_code == 409 and error_of(again)[1] == [("quantity_too_large", "items[0].quantity")]
    approved = returns.fulfillment_return_approve(return_id=created["id"]).as_dr()
    assert approved["state"] == "pending" and approved["location"]["address"]["country"] == "US"
    assert_keys_like(approved, fixture("fulfillment_return.json"))
    received = returns.fulfillment_return_receive(return_id=created["id"], accepted={fo_item: 1}).as_dr()
    assert received["state"] == "accepted"
    assert received["items"][0]["quantityAccepted"] == 1 and received["items"][0]["state"] == "accepted"
    line = FulfillmentOrderItem.objects.get(dr_id=fo_item)
    assert (line.shipped, line.returned, line.pending) == (1, 1, 1)
    assert api.get(f"/fulfillment-orders/{fo_id}").json()["items"][0]["returned"] == 1
    assert OrderItem.objects.get(order__dr_id=order.dr_id).returned_quantity == 1
    assert [t for t in types(order.dr_id) if t.startswith("fulfillment_return.")] == [
        "fulfillment_return.created",
        "fulfillment_return.pending",
        "fulfillment_return.accepted",
    ]
    event = Event.objects.filter(type="fulfillment_return.accepted").get()
    assert event.envelope["data"]["object"]["id"] == created["id"]
    assert api.get(f"/fulfillment-returns/{created['id']}").json() == received
    listed = api.get("/fulfillment-returns", fulfillmentOrderId=fo_id).json()
    assert [r["id"] for r in listed["data"]] == [created["id"]] and listed["hasMore"] is False
    assert api.get("/fulfillment-returns", upstreamIds=order.dr_id, state="accepted").json()["data"]
    assert api.get("/fulfillment-returns", state="rejected").json()["data"] == []
    assert api.get("/fulfillment-returns/nope").status_code == 404
    deliver_due()  # the contract hooks check every delivered event against DR's schemas
    assert {"fulfillment_return.created", "fulfillment_return.pending", "fulfillment_return.accepted"} <= set(
        receiver.types()
    )


def test_rejected_returns_free_their_units(api, place, skus):
    order, fo_id, fo_item = shipped_fulfillment_order(api, place, skus)
    created = ask(api, fo_id, fo_item, 2).json()
    rejected = returns.fulfillment_return_reject(return_id=created["id"]).as_dr()
    assert rejected["state"] == "rejected" and rejected["items"][0]["state"] == "rejected"
    with pytest.raises(returns.ReturnError):
        returns.fulfillment_return_approve(return_id=created["id"])
    assert ask(api, fo_id, fo_item, 2).status_code == 201
    assert "fulfillment_return.rejected" in types(order.dr_id)


def test_warehouse_return_of_a_refused_parcel(api, place, skus):
    order, fo_id, fo_item = shipped_fulfillment_order(api, place, skus, quantity=2, ship=2)
    made = returns.warehouse_return(fulfillment_order_id=fo_id, items=[(fo_item, 2)]).as_dr()
    assert made["type"] == "warehouse" and made["state"] == "accepted" and made["location"]
    assert [t for t in types(order.dr_id) if t.startswith("fulfillment_return.")] == [
        "fulfillment_return.created",
        "fulfillment_return.accepted",
    ]
    line = FulfillmentOrderItem.objects.get(dr_id=fo_item)
    assert (line.shipped, line.returned) == (0, 2)
    with pytest.raises(returns.ReturnError):
        returns.warehouse_return(fulfillment_order_id=fo_id, items=[(fo_item, 1)])


def test_fulfillment_return_validation(api, place, skus):
    order, fo_id, fo_item = shipped_fulfillment_order(api, place, skus)
    missing = api.post("/fulfillment-returns", {})
    assert error_of(missing)[1] == [("missing_parameter", "fulfillmentOrderId"), ("missing_parameter", "items")]
    # The spec's item takes fulfillmentOrderItemId; itemId is not one of its fields.
    body = {"fulfillmentOrderId": fo_id, "items": [{"itemId": fo_item, "quantity": 1}]}
    assert ("unknown_parameter", "items[0].itemId") in error_of(api.post("/fulfillment-returns", body))[1]
    assert ask(api, fo_id, fo_item, 0).status_code == 400
    assert ask(api, fo_id, fo_item, 3).status_code == 409  # one unit still pending, not shipped
    assert ask(api, "nope", fo_item, 1).status_code == 404
    assert error_of(ask(api, fo_id, "nope", 1))[1] == [("invalid_parameter", "items[0].fulfillmentOrderItemId")]
    disputes.dispute_open(order_id=order.dr_id)
    blocked = ask(api, fo_id, fo_item, 1)
    assert blocked.status_code == 409 and error_of(blocked)[1] == [("invalid_parameter", "order")]


# --- /returns -----------------------------------------------------------------------------------------


@pytest.fixture
def digital(api):
    body = {"name": "E-book", "taxCode": "4512.2", "eccn": "EAR99", "countryOfOrigin": "US"}
    assert api.put("/skus/digi-1", body).status_code == 201
    return "digi-1"


def fulfilled_digital_order(api, place, sku, quantity=3):
    order = place((sku, quantity))
    item = items_by_sku(api, order.dr_id)[sku]
    assert fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": quantity}).status_code == 201
    return order, item


def test_return_partial_then_full_receipt_refunds_by_itself(api, place, digital, receiver):
    order, item = fulfilled_digital_order(api, place, digital)
    response = api.post(
        "/returns",
        {
            "orderId": order.dr_id,
            "reason": "Incorrect size",
            "items": [{"itemId": item["id"], "quantity": 3}],
            "metadata": {"rma": "7"},
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"].startswith("ret_") and created["state"] == "created" and "updatedTime" not in created
    assert created["items"][0] == {
        "itemId": item["id"],
        "skuId": digital,
        "amount": pytest.approx(64.77),
        "quantity": 3,
        "quantityAccepted": 0,
        "state": "created",
    }
    assert created["metadata"] == {"rma": "7"} and created["refundIds"] == []
    partial = api.post(
        f"/returns/{created['id']}", {"items": [{"itemId": item["id"], "quantity": 1, "state": "accepted"}]}
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["state"] == "created" and partial.json()["items"][0]["quantityAccepted"] == 1
    assert "return.updated" in types(order.dr_id) and "refund.pending" not in types(order.dr_id)
    too_many = api.post(
        f"/returns/{created['id']}", {"items": [{"itemId": item["id"], "quantity": 3, "state": "accepted"}]}
    )
    assert too_many.status_code == 409 and error_of(too_many)[1] == [("quantity_too_large", "items[0].quantity")]
    full = api.post(
        f"/returns/{created['id']}", {"items": [{"itemId": item["id"], "quantity": 2, "state": "accepted"}]}
    )
    body = full.json()
    assert body["state"] == "accepted" and body["items"][0]["state"] == "accepted" and len(body["refundIds"]) == 1
    assert_keys_like(body, fixture("return.json"))
    sequence = types(order.dr_id)
    assert sequence[sequence.index("return.accepted") + 1] == "refund.pending"
    refund = api.get(f"/refunds/{body['refundIds'][0]}").json()
    assert refund["state"] == "pending" and refund["amount"] == pytest.approx(64.77)
    assert refund["items"][0]["quantity"] == 3 and refund["items"][0]["percent"] == 100
    deliver_due(now=timezone.now() + timedelta(minutes=5))
    assert api.get(f"/refunds/{refund['id']}").json()["state"] == "succeeded"
    assert "refund.complete" in types(order.dr_id)
    again = api.post(f"/returns/{created['id']}", {"state": "accepted"})
    assert again.status_code == 409
    assert [r["id"] for r in api.get("/returns", orderId=order.dr_id).json()["data"]] == [created["id"]]
    assert api.get("/returns", orderId=order.dr_id, state="created").json()["data"] == []
    assert api.get(f"/returns/{created['id']}").json()["updatedTime"]
    deliver_due()
    delivered = set(receiver.types())
    assert {"return.created", "return.updated", "return.accepted", "refund.pending", "refund.complete"} <= delivered
    assert {"order.refunded", "order.credit_memo.created", "order.invoice.created"} <= delivered


def test_return_accepted_at_once(api, place, digital):
    order, _ = fulfilled_digital_order(api, place, digital, quantity=2)
    created = api.post("/returns", {"orderId": order.dr_id, "items": [{"skuId": digital, "quantity": 2}]}).json()
    accepted = api.post(f"/returns/{created['id']}", {"state": "accepted"}).json()
    assert accepted["state"] == "accepted" and accepted["items"][0]["quantityAccepted"] == 2
    assert "return.updated" not in types(order.dr_id) and "return.accepted" in types(order.dr_id)


def test_return_errors(api, place, digital):
    order, item = fulfilled_digital_order(api, place, digital, quantity=2)
    too_many = api.post("/returns", {"orderId": order.dr_id, "items": [{"itemId": item["id"], "quantity": 3}]})
    assert too_many.status_code == 409
    assert too_many.json()["errors"] == [
        {
            "code": "quantity_too_large",
            "parameter": "items[0].qty",
            "message": "Return quantity is larger than order quantity",
        }
    ]
    assert (
        api.post("/returns", {"orderId": order.dr_id, "items": [{"itemId": item["id"], "quantity": 2}]}).status_code
        == 201
    )
    # Both units are authorized for return already.
    assert (
        api.post("/returns", {"orderId": order.dr_id, "items": [{"itemId": item["id"], "quantity": 1}]}).status_code
        == 409
    )
    assert error_of(api.post("/returns", {"items": []}))[1] == [
        ("missing_parameter", "orderId"),
        ("missing_parameter", "items"),
    ]
    assert api.post("/returns", {"orderId": "404404", "items": [{"itemId": "x", "quantity": 1}]}).status_code == 404
    assert api.post("/returns/ret_nope", {"state": "accepted"}).status_code == 404
    assert api.get("/returns/ret_nope").status_code == 404
    disputes.dispute_open(order_id=order.dr_id)
    blocked = api.post("/returns", {"orderId": order.dr_id, "items": [{"itemId": item["id"], "quantity": 1}]})
    assert blocked.status_code == 409
    assert (
        blocked.json()["errors"][0]["message"] == "A return cannot be performed while there is a dispute on the order."
    )


def test_unfulfilled_units_cannot_be_returned(api, place, digital):
    order = place((digital, 1))
    item = items_by_sku(api, order.dr_id)[digital]
    response = api.post("/returns", {"orderId": order.dr_id, "items": [{"itemId": item["id"], "quantity": 1}]})
    assert response.status_code == 409

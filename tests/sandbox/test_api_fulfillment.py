"""Contract: /fulfillment-orders and /fulfillment-cancellations over HTTP."""

from sandbox.services import warehouse
from tests.conftest import fixture

from .conftest import assert_keys_like
from .test_api_catalog import error_of
from .test_api_orders import items_by_sku


def fulfillment_order_body(order_id="231388420336", item_upstream="143040030336", quantity=2, **overrides):
    body = {
        "upstreamId": order_id,
        "upstreamOrderTime": "2026-11-20T10:00:00Z",
        "currency": "USD",
        "shipTo": fixture("order.json")["shipTo"],
        "shippingChoice": {"id": "SG"},
        "locale": "en_US",
        "email": "ada@example.com",
        "items": [{"inventoryItemId": "dist-1", "quantity": quantity, "upstreamId": item_upstream}],
    }
    body.update(overrides)
    return body


def test_create_get_and_list(api, skus):
    created = api.post("/fulfillment-orders", fulfillment_order_body())
    assert created.status_code == 201, created.text
    body = created.json()
    assert_keys_like(body, fixture("fulfillment_order.json"))
    assert isinstance(body["id"], str) and body["state"] == "pending"
    assert body["items"][0]["pending"] == 2
    assert api.get(f"/fulfillment-orders/{body['id']}").json() == body
    listed = api.get("/fulfillment-orders", upstreamIds="231388420336")
    assert listed.json() == {"data": [body]}
    assert api.get("/fulfillment-orders", upstreamIds="other").json() == {"data": []}
    assert api.get("/fulfillment-orders").json() == {"data": [body]}
    assert api.get("/fulfillment-orders", limit=0).status_code == 400
    assert api.get("/fulfillment-orders/nope").status_code == 404


def test_create_validation(api, skus):
    response = api.post("/fulfillment-orders", {"upstreamId": "1"})
    assert response.status_code == 400
    assert error_of(response)[1] == [
        ("missing_parameter", "upstreamOrderTime"),
        ("missing_parameter", "currency"),
        ("missing_parameter", "shipTo"),
        ("missing_parameter", "shippingChoice.id"),
        ("missing_parameter", "items"),
    ]
    body = fulfillment_order_body(
        items=[{"inventoryItemId": "ghost", "quantity": 1}, {"inventoryItemId": "dist-1", "quantity": 0}]
    )
    response = api.post("/fulfillment-orders", body)
    assert error_of(response)[1] == [
        ("invalid_parameter", "items[0].inventoryItemId"),
        ("invalid_parameter", "items[1].quantity"),
    ]
    assert "ghost" in response.json()["errors"][0]["message"]
    response = api.post("/fulfillment-orders", fulfillment_order_body(currency="dollars", upstreamOrderTime="soon"))
    assert error_of(response)[1] == [("invalid_parameter", "upstreamOrderTime"), ("invalid_parameter", "currency")]


def test_cancellation_lifecycle_with_partial_acceptance(api, skus, place):
    order = place((skus["distributed"], 3))
    line = items_by_sku(api, order.dr_id)[skus["distributed"]]["id"]
    created = api.post("/fulfillment-orders", fulfillment_order_body(order.dr_id, line, quantity=3)).json()
    fo_item = created["items"][0]["id"]
    warehouse.warehouse_ship(fulfillment_order_id=created["id"], items=[(fo_item, 1)])
    too_many = api.post(
        "/fulfillment-cancellations",
        {"fulfillmentOrderId": created["id"], "items": [{"fulfillmentOrderItemId": fo_item, "quantity": 3}]},
    )
    assert too_many.status_code == 409 and error_of(too_many)[1] == [("quantity_too_large", "items[0].quantity")]
    response = api.post(
        "/fulfillment-cancellations",
        {
            "fulfillmentOrderId": created["id"],
            "upstreamId": order.dr_id,
            "reason": "Customer changed their mind",
            "items": [{"fulfillmentOrderItemId": fo_item, "quantity": 2}],
        },
    )
    assert response.status_code == 201, response.text
    cancellation = response.json()
    assert cancellation["state"] == "pending" and cancellation["livemode"] is False
    # One more unit ships before the warehouse decides: only one of the two can be cancelled.
    warehouse.warehouse_ship(fulfillment_order_id=created["id"], items=[(fo_item, 1)])
    warehouse.cancellation_accept(cancellation_id=cancellation["id"])
    accepted = api.get(f"/fulfillment-cancellations/{cancellation['id']}").json()
    assert_keys_like(accepted, fixture("fulfillment_cancellation.json"))
    assert accepted["state"] == "accepted"
    assert accepted["items"][0]["quantity"] == 2 and accepted["items"][0]["quantityAccepted"] == 1
    line_state = api.get(f"/fulfillment-orders/{created['id']}").json()["items"][0]
    assert (line_state["shipped"], line_state["cancelled"], line_state["pending"]) == (2, 1, 0)
    assert api.get(f"/fulfillment-orders/{created['id']}").json()["state"] == "shipped"


def test_cancellation_validation_and_rejection(api, skus):
    created = api.post("/fulfillment-orders", fulfillment_order_body()).json()
    assert error_of(api.post("/fulfillment-cancellations", {}))[1] == [
        ("missing_parameter", "fulfillmentOrderId"),
        ("missing_parameter", "items"),
    ]
    unknown = api.post(
        "/fulfillment-cancellations",
        {"fulfillmentOrderId": "nope", "items": [{"fulfillmentOrderItemId": "x", "quantity": 1}]},
    )
    assert unknown.status_code == 404
    bad_line = api.post(
        "/fulfillment-cancellations",
        {"fulfillmentOrderId": created["id"], "items": [{"fulfillmentOrderItemId": "x", "quantity": 1}]},
    )
    assert bad_line.status_code == 400 and error_of(bad_line)[1] == [
        ("invalid_parameter", "items[0].fulfillmentOrderItemId")
    ]
    request = api.post(
        "/fulfillment-cancellations",
        {
            "fulfillmentOrderId": created["id"],
            "items": [{"fulfillmentOrderItemId": created["items"][0]["id"], "quantity": 1}],
        },
    ).json()
    warehouse.cancellation_reject(cancellation_id=request["id"])
    rejected = api.get(f"/fulfillment-cancellations/{request['id']}").json()
    assert rejected["state"] == "rejected" and rejected["items"][0]["quantityAccepted"] == 0
    assert api.get(f"/fulfillment-orders/{created['id']}").json()["items"][0]["pending"] == 2
    assert api.get("/fulfillment-cancellations/nope").status_code == 404


def test_cancellations_of_an_unknown_fulfillment_order_are_an_empty_list(api):
    listed = api.get("/fulfillment-cancellations", fulfillmentOrderId="no-such-fulfillment-order")
    assert listed.status_code == 200
    assert listed.json() == {"hasMore": False, "data": []}

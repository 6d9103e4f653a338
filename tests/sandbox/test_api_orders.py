"""Contract: /orders, /charges, /sources, /shipments, /fulfillments over HTTP."""

import pytest

from sandbox.services import warehouse
from sandbox.services.control import control_update
from tests.conftest import fixture

from .conftest import assert_keys_like
from .test_api_catalog import error_of


def fulfill(api, order_id, *items, **extra):
    body = {"orderId": order_id, "items": [dict(item) for item in items], **extra}
    return api.post("/fulfillments", body)


def items_by_sku(api, order_id):
    return {item["skuId"]: item for item in api.get(f"/orders/{order_id}").json()["items"]}


def test_order_get_and_404(api, place, skus):
    order = place((skus["distributed"], 2), (skus["orchestrated"], 1), upstream_id="WEB-1")
    response = api.get(f"/orders/{order.dr_id}")
    assert response.status_code == 200
    body = response.json()
    assert_keys_like(body, fixture("order.json"))
    assert body["id"].isdigit() and len(body["id"]) == 12
    assert body["totalAmount"] == round(body["subtotal"] + body["totalTax"] + body["totalShipping"], 2)
    assert body["payment"]["charges"][0]["state"] == "capturable"
    assert "physical" not in body["items"][0]["productDetails"]
    assert api.get(f"/orders/{order.dr_id}", expand="true").json()["items"][0]["productDetails"]["physical"] is True
    missing = api.get("/orders/999999999336")
    assert missing.status_code == 404
    assert error_of(missing) == ("not_found", [("not_found", "id")])


@pytest.mark.parametrize("state", ["pending_payment", "in_review", "accepted"])
def test_orders_start_in_the_state_asked(api, place, skus, state):
    order = place((skus["distributed"], 1), state=state)
    body = api.get(f"/orders/{order.dr_id}").json()
    assert body["state"] == state
    # Keyed by DR's state names, snake_case (the spec's OrderStateTransitions).
    assert "pending_payment" in body["stateTransitions"]


def test_order_list_filters(api, place, skus):
    first = place((skus["distributed"], 1), upstream_id="A", email="a@example.com")
    second = place((skus["distributed"], 1), upstream_id="B", state="in_review")
    listing = api.get("/orders").json()
    assert [order["id"] for order in listing["data"]] == [second.dr_id, first.dr_id] and listing["hasMore"] is False
    assert [o["id"] for o in api.get("/orders", upstreamIds="A").json()["data"]] == [first.dr_id]
    assert [o["id"] for o in api.get("/orders", state="in_review").json()["data"]] == [second.dr_id]
    assert [o["id"] for o in api.get("/orders", email="a@example.com").json()["data"]] == [first.dr_id]
    assert [o["id"] for o in api.get("/orders", ids=f"{first.dr_id}").json()["data"]] == [first.dr_id]
    paged = api.get("/orders", limit=1).json()
    assert paged["hasMore"] is True and len(paged["data"]) == 1


def test_order_update_allows_only_documented_fields(api, place, skus):
    order = place((skus["distributed"], 1))
    response = api.post(f"/orders/{order.dr_id}", {"upstreamId": "WEB-9", "metadata": {"a": "b"}})
    assert response.status_code == 200 and response.json()["upstreamId"] == "WEB-9"
    refused = api.post(f"/orders/{order.dr_id}", {"state": "complete"})
    assert refused.status_code == 400 and error_of(refused)[1] == [("unknown_parameter", "state")]


def test_fulfillment_captures_its_share_and_completes_the_order(api, place, skus):
    order = place((skus["distributed"], 2))
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]
    tracking = {
        key: fixture("fulfillment.json")[key]
        for key in ("shipmentId", "trackingCompany", "trackingNumber", "trackingUrl")
    }
    first = fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1, "shipmentItemId": "si-1"}, **tracking)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"].startswith("ful_") and body["orderId"] == order.dr_id
    assert_keys_like(body, fixture("fulfillment.json"))
    after_one = api.get(f"/orders/{order.dr_id}").json()
    line_total = item["amount"] + item["tax"]["amount"]
    shipping = after_one["shippingChoice"]["amount"] + after_one["shippingChoice"]["taxAmount"]
    assert after_one["capturedAmount"] == pytest.approx(round(line_total / 2, 2) + shipping)
    assert after_one["state"] == "accepted"
    charge_id = after_one["payment"]["charges"][0]["id"]
    charge = api.get(f"/charges/{charge_id}").json()
    assert_keys_like(charge, fixture("charge.json"))
    assert charge["state"] == "capturable"
    assert fulfill(api, order.dr_id, {"itemId": item["id"], "quantity": 1}).status_code == 201
    done = api.get(f"/orders/{order.dr_id}").json()
    assert done["state"] == "complete" and set(done["stateTransitions"]) >= {"accepted", "fulfilled", "complete"}
    assert done["capturedAmount"] == done["totalAmount"]
    assert api.get(f"/charges/{charge_id}").json()["state"] == "complete"
    listed = api.get("/fulfillments", orderId=order.dr_id).json()
    assert len(listed["data"]) == 2 and listed["hasMore"] is False
    assert api.get(f"/fulfillments/{body['id']}").json()["id"] == body["id"]
    source_id = done["payment"]["sources"][0]["id"]
    assert api.get(f"/sources/{source_id}").json()["creditCard"]["lastFourDigits"] == "1111"


def test_cancelling_everything_cancels_the_order_and_charge(api, place, skus):
    order = place((skus["distributed"], 2))
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]
    assert fulfill(api, order.dr_id, {"itemId": item["id"], "cancelQuantity": 2}).status_code == 201
    body = api.get(f"/orders/{order.dr_id}").json()
    assert body["state"] == "cancelled" and body["cancelledAmount"] == body["totalAmount"]
    assert body["payment"]["charges"][0]["state"] == "cancelled"
    assert body["items"][0]["state"] == "cancelled"


def test_fulfillment_conflicts(api, place, skus):
    order = place((skus["distributed"], 2), (skus["orchestrated"], 3))
    items = items_by_sku(api, order.dr_id)
    dist, orch = items[skus["distributed"]]["id"], items[skus["orchestrated"]]["id"]
    too_large = fulfill(api, order.dr_id, {"itemId": dist, "quantity": 3})
    assert too_large.status_code == 409
    assert too_large.json()["errors"][0]["code"] == "quantity_too_large"
    assert too_large.json() == fixture("error_quantity_too_large.json")
    assert fulfill(api, order.dr_id, {"itemId": dist, "quantity": 2}).status_code == 201
    assert error_of(fulfill(api, order.dr_id, {"itemId": dist, "quantity": 1})) == (
        "conflict",
        [("item_fulfilled", "items[0].itemId")],
    )
    assert fulfill(api, order.dr_id, {"itemId": orch, "cancelQuantity": 1}).status_code == 201
    # The next capture fails, so the order stays fulfilled (not complete) when the last unit goes.
    control_update({"fail_next_captures": 1})
    assert fulfill(api, order.dr_id, {"itemId": orch, "quantity": 2}).status_code == 201
    state = api.get(f"/orders/{order.dr_id}").json()
    assert state["state"] == "fulfilled"
    assert state["payment"]["charges"][0]["captures"][-1]["failureCode"] == "failed-request"
    fulfilled = fulfill(api, order.dr_id, {"itemId": orch, "quantity": 1})
    assert fulfilled.status_code == 409
    assert fulfilled.json()["errors"][0]["code"] == "order_fulfilled"
    assert fulfilled.json()["errors"][0]["message"] == f"Resource '{order.dr_id}' is fulfilled."

    complete = place((skus["distributed"], 1))
    line = items_by_sku(api, complete.dr_id)[skus["distributed"]]["id"]
    assert fulfill(api, complete.dr_id, {"itemId": line, "quantity": 1}).status_code == 201
    assert error_of(fulfill(api, complete.dr_id, {"itemId": line, "quantity": 1}))[1][0][0] == "order_complete"

    cancelled = place((skus["distributed"], 2), (skus["orchestrated"], 1))
    lines = items_by_sku(api, cancelled.dr_id)
    cancel_one = fulfill(api, cancelled.dr_id, {"itemId": lines[skus["distributed"]]["id"], "cancelQuantity": 2})
    assert cancel_one.status_code == 201
    item_cancelled = fulfill(api, cancelled.dr_id, {"itemId": lines[skus["distributed"]]["id"], "quantity": 1})
    assert error_of(item_cancelled) == ("conflict", [("item_cancelled", "items[0].itemId")])
    fulfill(api, cancelled.dr_id, {"itemId": lines[skus["orchestrated"]]["id"], "cancelQuantity": 1})
    order_cancelled = fulfill(api, cancelled.dr_id, {"itemId": lines[skus["orchestrated"]]["id"], "quantity": 1})
    assert error_of(order_cancelled)[1][0][0] == "order_cancelled"


def test_fulfillment_validation(api, place, skus):
    order = place((skus["distributed"], 1))
    assert error_of(api.post("/fulfillments", {}))[1] == [
        ("missing_parameter", "orderId"),
        ("missing_parameter", "items"),
    ]
    bad_item = fulfill(api, order.dr_id, {"itemId": "x"})
    assert bad_item.status_code == 400 and error_of(bad_item)[1] == [("missing_parameter", "items[0].quantity")]
    negative = fulfill(api, order.dr_id, {"itemId": "x", "quantity": -1})
    assert ("invalid_parameter", "items[0].quantity") in error_of(negative)[1]
    assert fulfill(api, "999999999336", {"itemId": "x", "quantity": 1}).status_code == 404
    unknown = fulfill(api, order.dr_id, {"itemId": "nope", "quantity": 1})
    assert unknown.status_code == 404 and error_of(unknown)[1] == [("not_found", "items[0].itemId")]
    in_review = place((skus["distributed"], 1), state="in_review")
    line = items_by_sku(api, in_review.dr_id)[skus["distributed"]]["id"]
    assert fulfill(api, in_review.dr_id, {"itemId": line, "quantity": 1}).status_code == 409


def test_shipment_get(api, place, skus):
    order = place((skus["distributed"], 1))
    line = items_by_sku(api, order.dr_id)[skus["distributed"]]
    created = api.post(
        "/fulfillment-orders",
        {
            "upstreamId": order.dr_id,
            "upstreamOrderTime": "2026-11-20T10:00:00Z",
            "currency": "USD",
            "shipTo": fixture("order.json")["shipTo"],
            "shippingChoice": {"id": "SG"},
            "items": [{"inventoryItemId": "dist-1", "quantity": 1, "upstreamId": line["id"]}],
        },
    ).json()
    shipment = warehouse.warehouse_ship(
        fulfillment_order_id=created["id"], items=[(created["items"][0]["id"], 1)], tracking_number="1Z1"
    )
    body = api.get(f"/shipments/{shipment.dr_id}").json()
    assert_keys_like(body, fixture("shipment.json"))
    assert body["fulfillmentOrderUpstreamId"] == order.dr_id
    assert body["items"][0]["fulfillmentOrderItemUpstreamId"] == line["id"]
    assert api.get("/shipments/nope").status_code == 404
    assert api.get("/charges/nope").status_code == 404


@pytest.mark.postgres
def test_concurrent_captures_of_the_last_unit_capture_once(api, place, skus):
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import Api

    order = place((skus["distributed"], 1))
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]["id"]
    clients = [Api(api.base.removesuffix("/sandbox/api"), api.session.headers["Authorization"][7:]) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(
            pool.map(lambda client: fulfill(client, order.dr_id, {"itemId": item, "quantity": 1}), clients)
        )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409], [response.text for response in responses]
    assert {response.json()["errors"][0]["code"] for response in responses if response.status_code == 409} <= {
        "item_fulfilled",
        "order_complete",
    }
    body = api.get(f"/orders/{order.dr_id}").json()
    assert body["capturedAmount"] == body["totalAmount"]
    assert len(body["payment"]["charges"][0]["captures"]) == 1


def test_error_bodies_match_the_documented_examples(api, place, skus):
    assert api.get("/orders/231388420336").json() == fixture("error_not_found.json")
    body = {key: value for key, value in fixture("sku.json").items() if key != "name"}
    assert api.put("/skus/dist-1", body).json() == fixture("error_missing_parameter.json")
    order = place((skus["distributed"], 1))
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]["id"]
    control_update({"fail_next_captures": 1})
    fulfill(api, order.dr_id, {"itemId": item, "quantity": 1})
    documented = fixture("error_order_fulfilled.json")
    documented["errors"][0]["message"] = documented["errors"][0]["message"].replace("201454110336", order.dr_id)
    assert fulfill(api, order.dr_id, {"itemId": item, "quantity": 1}).json() == documented


@pytest.mark.parametrize("state", ["in_review", "blocked"])
def test_units_of_an_order_not_accepted_can_be_cancelled_not_captured(api, place, skus, state):
    from sandbox.services.orders import order_block

    order = place((skus["distributed"], 2), state="in_review")
    if state == "blocked":
        order_block(order_id=order.dr_id)
    item = items_by_sku(api, order.dr_id)[skus["distributed"]]["id"]
    refused = fulfill(api, order.dr_id, {"itemId": item, "quantity": 1})
    assert refused.status_code == 409 and refused.json()["errors"][0]["code"] == "order_not_accepted"
    assert fulfill(api, order.dr_id, {"itemId": item, "cancelQuantity": 2}).status_code == 201
    body = api.get(f"/orders/{order.dr_id}").json()
    assert body["state"] == "cancelled" and body["cancelledAmount"] == body["totalAmount"]

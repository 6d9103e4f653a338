"""`POST /api/orders/<id>/cancellations/` and `/shipments/` through the sandbox: 202 and the flow that
follows, 409 with the rules' reason, 400 naming the field, 404, 401 and every permission denial."""

import json

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from catalog.models import Sku
from commerce.models import Order
from digitalriver.models import Instruction
from fulfillment.kinds import POST_FULFILLMENT
from fulfillment.models import CancellationRequest, FulfillmentOrder, Shipment
from sandbox.services.warehouse import cancellation_accept, warehouse_ship
from tests.conftest import mirrored, restore_roles, token_client, user_with

pytestmark = pytest.mark.django_db(transaction=True)
THIRD_PARTY = Sku.FulfillmentModel.THIRD_PARTY
DIGITAL = Sku.FulfillmentModel.DIGITAL


def customer_service_group() -> Group:
    return restore_roles()["Customer service"]


@pytest.fixture
def agent():
    return token_client(user_with("agent", "view_order", "cancel_order_lines", "record_shipment"))


def item_id(order: Order, sku_id: str) -> str:
    return order.lines.get(dr_sku_id=sku_id).dr_item_id


def cancellations_url(order_id: str) -> str:
    return f"/api/orders/{order_id}/cancellations/"


def shipments_url(order_id: str) -> str:
    return f"/api/orders/{order_id}/shipments/"


def naming_the_line(body: dict, line_id: str) -> dict:
    """The body with the placeholder "LINE" replaced by the DR item id of the placed order's line."""
    return json.loads(json.dumps(body).replace('"LINE"', json.dumps(line_id)))


def ship_at_the_warehouse(order: Order, sku_id: str, quantity: int) -> None:
    fulfillment_order = FulfillmentOrder.objects.get(order=order)
    fo_line = fulfillment_order.lines.get(order_line__dr_sku_id=sku_id)
    warehouse_ship(
        fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=[(fo_line.dr_item_id, quantity)]
    )


# --- cancellations: 202 and what follows ---------------------------------------------------------


def test_customer_service_cancels_a_unit_with_a_token_and_follows_it_until_the_payment_is_released(flow):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 2)))
    user = User.objects.create_user("cs", password="secret-pass-123")
    user.groups.add(customer_service_group())
    client = token_client(user)
    body = {"items": [{"item_id": item_id(order, "dist-a"), "quantity": 1}], "reason": "changed her mind"}

    response = client.post(cancellations_url(order.dr_order_id), body, format="json")

    assert response.status_code == 202, response.content
    [queued] = response.json()["requests"]
    assert response.json()["dr_order_id"] == order.dr_order_id
    assert (queued["route"], queued["reason"]) == ("fulfillment_cancellation", body["reason"])
    # Tests send the outbox inline right after the commit, so DR may already hold the request.
    assert queued["state"] in ("requested", "submitted")
    assert queued["requested_by"] == "cs"
    assert [(line["item_id"], line["quantity"]) for line in queued["lines"]] == [(item_id(order, "dist-a"), 1)]
    assert order.lines.get().cancel_requested == 1

    flow.settle()
    request = CancellationRequest.objects.get(pk=queued["id"])
    assert client.get(cancellations_url(order.dr_order_id)).json()["requests"][0]["state"] == "submitted"
    cancellation_accept(cancellation_id=request.dr_cancellation_id)
    flow.settle()

    followed = client.get(cancellations_url(order.dr_order_id))
    assert followed.status_code == 200
    [released] = followed.json()["requests"]
    assert (released["id"], released["state"], released["dr_cancellation_id"]) == (
        request.pk,
        "released",
        request.dr_cancellation_id,
    )
    assert [(line["quantity_accepted"], line["quantity_released"]) for line in released["lines"]] == [(1, 1)]
    assert [(step["state"], step["description"]) for step in released["progress"]] == [
        ("requested", "changed her mind"),
        ("submitted", "DR has the request"),
        ("accepted", "the warehouse accepted 1 of 1 unit(s)"),
        ("released", "payment released"),
    ]
    line = order.lines.get()
    assert (line.cancelled, line.cancel_requested) == (1, 0)


def test_the_whole_order_before_acceptance_is_released_directly(flow, agent):
    flow.sku("dist-a")
    flow.sku("app", DIGITAL)
    order = mirrored(flow.place(("dist-a", 2), ("app", 1), state="in_review"))

    response = agent.post(cancellations_url(order.dr_order_id), {"all": True, "reason": "duplicate"}, format="json")

    assert response.status_code == 202, response.content
    [queued] = response.json()["requests"]
    assert queued["route"] == "fulfillment"
    assert queued["state"] in ("requested", "released")  # the release may already be sent (inline in tests)
    assert sorted((line["item_id"], line["quantity"]) for line in queued["lines"]) == sorted(
        [(item_id(order, "dist-a"), 2), (item_id(order, "app"), 1)]
    )
    flow.settle()
    assert CancellationRequest.objects.get(pk=queued["id"]).state == CancellationRequest.State.RELEASED
    assert {line.dr_sku_id: line.cancelled for line in order.lines.all()} == {"dist-a": 2, "app": 1}


def test_the_whole_accepted_order_is_one_request_per_route_and_both_end_released(flow, agent):
    flow.sku("dist-a")
    flow.sku("desk", THIRD_PARTY)
    order = mirrored(flow.place(("dist-a", 2), ("desk", 1)))

    response = agent.post(cancellations_url(order.dr_order_id), {"all": True}, format="json")

    assert response.status_code == 202, response.content
    queued = {request["route"]: request for request in response.json()["requests"]}
    assert {
        route: [(line["item_id"], line["quantity"]) for line in request["lines"]] for route, request in queued.items()
    } == {
        "fulfillment_cancellation": [(item_id(order, "dist-a"), 2)],
        "fulfillment": [(item_id(order, "desk"), 1)],
    }
    flow.settle()
    at_the_warehouse = CancellationRequest.objects.get(pk=queued["fulfillment_cancellation"]["id"])
    cancellation_accept(cancellation_id=at_the_warehouse.dr_cancellation_id)
    flow.settle()

    listed = agent.get(cancellations_url(order.dr_order_id)).json()["requests"]
    assert sorted((request["route"], request["state"]) for request in listed) == [
        ("fulfillment", "released"),
        ("fulfillment_cancellation", "released"),
    ]
    assert {line.dr_sku_id: line.cancelled for line in order.lines.all()} == {"dist-a": 2, "desk": 1}
    assert Order.objects.get(pk=order.pk).state == Order.State.CANCELLED


def test_session_auth_works_too(flow, client):
    flow.sku("desk", THIRD_PARTY)
    order = mirrored(flow.place(("desk", 1)))
    client.force_login(user_with("session-agent", "cancel_order_lines"))

    response = client.post(
        cancellations_url(order.dr_order_id),
        {"items": [{"item_id": item_id(order, "desk"), "quantity": 1}]},
        content_type="application/json",
    )

    assert response.status_code == 202, response.content
    assert CancellationRequest.objects.get().requested_by.username == "session-agent"


# --- cancellations: 409 when the rules forbid it ---------------------------------------------------


def test_more_units_than_are_open_are_409_with_the_counts_and_nothing_is_stored(flow, agent):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 2)))
    ship_at_the_warehouse(order, "dist-a", 1)
    flow.settle()
    instructions_before = Instruction.objects.count()

    response = agent.post(
        cancellations_url(order.dr_order_id),
        {"items": [{"item_id": item_id(order, "dist-a"), "quantity": 2}]},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Cannot cancel that many units. Product dist-a: asked for 2, 1 of 2 can be cancelled; "
        "1 shipped (a return is needed for those)."
    )
    assert not CancellationRequest.objects.exists()
    assert Instruction.objects.count() == instructions_before
    assert order.lines.get().cancel_requested == 0


def test_the_whole_order_is_409_once_a_unit_shipped_naming_the_line(flow, agent):
    flow.sku("dist-a")
    flow.sku("dist-b")
    order = mirrored(flow.place(("dist-a", 1), ("dist-b", 1)))
    ship_at_the_warehouse(order, "dist-a", 1)
    flow.settle()

    response = agent.post(cancellations_url(order.dr_order_id), {"all": True}, format="json")

    assert response.status_code == 409
    assert "units already shipped on Product dist-a (1 shipped)" in response.json()["detail"]
    assert not CancellationRequest.objects.exists()


# --- cancellations: 400 for malformed input --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field_path", "says"),
    [
        ({"reason": "no items"}, ["items"], 'or send "all": true'),
        ({"all": False}, ["items"], 'or send "all": true'),
        ({"items": []}, ["items"], "at least one item"),
        ({"all": True, "items": [{"item_id": "LINE", "quantity": 1}]}, ["all"], "not both"),
        ({"items": [{"item_id": "LINE", "quantity": 0}]}, ["items", 0, "quantity"], "greater than or equal to 1"),
        ({"items": [{"item_id": "LINE", "quantity": -2}]}, ["items", 0, "quantity"], "greater than or equal to 1"),
        ({"items": [{"item_id": "LINE", "quantity": 1.5}]}, ["items", 0, "quantity"], "whole number"),
        ({"items": [{"item_id": "LINE", "quantity": "1"}]}, ["items", 0, "quantity"], "whole number"),
        ({"items": [{"item_id": "LINE"}]}, ["items", 0, "quantity"], "required"),
        ({"items": [{"item_id": "999", "quantity": 1}]}, ["items", 0, "item_id"], "has no item 999"),
        ({"items": [{"item_id": "LINE", "quantity": 1}], "reason": "x" * 501}, ["reason"], "500 characters"),
        ({"items": [{"item_id": "LINE", "quantity": 1}] * 2}, ["items"], "listed twice"),
        ({"items": "LINE"}, ["items", "non_field_errors"], "Expected a list"),
        ({"all": "maybe"}, ["all"], "valid boolean"),
    ],
)
def test_malformed_cancellations_are_400_naming_the_field_and_nothing_is_stored(flow, agent, body, field_path, says):
    flow.sku("dist-a")
    order = mirrored(flow.place(("dist-a", 2)))
    body = naming_the_line(body, item_id(order, "dist-a"))

    response = agent.post(cancellations_url(order.dr_order_id), body, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()
    for key in field_path:
        errors = errors[str(key)]
    assert says in " ".join(errors)
    assert not CancellationRequest.objects.exists()
    assert order.lines.get().cancel_requested == 0


# --- shipments of third-party and digital lines ----------------------------------------------------


def test_a_recorded_third_party_shipment_is_202_and_its_capture_completes(flow, agent):
    flow.sku("desk", THIRD_PARTY)
    order = mirrored(flow.place(("desk", 3)))
    body = {
        "items": [{"item_id": item_id(order, "desk"), "quantity": 2}],
        "tracking_company": "DHL",
        "tracking_number": "JD0001",
        "tracking_url": "https://www.dhl.com/track?id=JD0001",
    }

    response = agent.post(shipments_url(order.dr_order_id), body, format="json")

    assert response.status_code == 202, response.content
    recorded = response.json()
    assert recorded["capture"] == "queued"
    assert recorded["items"] == body["items"]
    assert (recorded["tracking_company"], recorded["tracking_number"], recorded["tracking_url"]) == (
        "DHL",
        "JD0001",
        "https://www.dhl.com/track?id=JD0001",
    )
    assert Shipment.objects.get(pk=recorded["id"]).source == Shipment.Source.RECORDED
    [capture] = Instruction.objects.filter(kind=POST_FULFILLMENT)
    assert capture.payload["trackingNumber"] == "JD0001"
    assert capture.payload["items"] == [{"itemId": item_id(order, "desk"), "quantity": 2}]

    flow.settle()
    line = order.lines.get()
    assert (line.shipped, line.fulfilled) == (2, 2)
    assert Order.objects.get(pk=order.pk).state == Order.State.ACCEPTED  # one unit still to ship


def test_a_digital_line_needs_no_tracking_and_completes_the_order(flow, agent):
    flow.sku("app", DIGITAL)
    order = mirrored(flow.place(("app", 1)))

    response = agent.post(
        shipments_url(order.dr_order_id), {"items": [{"item_id": item_id(order, "app"), "quantity": 1}]}, format="json"
    )

    assert response.status_code == 202, response.content
    assert response.json()["tracking_url"] == ""
    flow.settle()
    assert Order.objects.get(pk=order.pk).state == Order.State.COMPLETE
    assert order.lines.get().fulfilled == 1


@pytest.mark.parametrize(
    ("skus", "state", "shipped_sku", "quantity", "says"),
    [
        ([("dist-a", None)], "accepted", "dist-a", 1, "Product dist-a is fulfilled through DR (distributed)"),
        ([("orch", Sku.FulfillmentModel.ORCHESTRATED)], "accepted", "orch", 1, "fulfilled through DR (orchestrated)"),
        ([("desk", THIRD_PARTY)], "accepted", "desk", 3, "Product desk: asked to ship 3, 2 can ship"),
        ([("desk", THIRD_PARTY)], "in_review", "desk", 1, "is in review, not accepted"),
    ],
)
def test_shipments_the_rules_forbid_are_409_with_the_reason_and_nothing_is_stored(
    flow, agent, skus, state, shipped_sku, quantity, says
):
    for sku_id, model in skus:
        flow.sku(sku_id, model or Sku.FulfillmentModel.DISTRIBUTED)
    order = mirrored(flow.place((shipped_sku, 2), state=state))

    response = agent.post(
        shipments_url(order.dr_order_id),
        {"items": [{"item_id": item_id(order, shipped_sku), "quantity": quantity}], "tracking_number": "T1"},
        format="json",
    )

    assert response.status_code == 409, response.content
    assert says in response.json()["detail"]
    assert not Shipment.objects.filter(order=order).exists()
    assert not Instruction.objects.filter(kind=POST_FULFILLMENT).exists()


@pytest.mark.parametrize(
    ("body", "field_path", "says"),
    [
        ({"tracking_number": "T1"}, ["items"], "required"),
        ({"items": []}, ["items"], "at least one item"),
        ({"items": [{"item_id": "LINE", "quantity": 0}]}, ["items", 0, "quantity"], "greater than or equal to 1"),
        ({"items": [{"item_id": "LINE", "quantity": "two"}]}, ["items", 0, "quantity"], "whole number"),
        ({"items": [{"item_id": "nope", "quantity": 1}]}, ["items", 0, "item_id"], "has no item nope"),
        # Twice two units of a line of two: each entry alone fits, together they would not.
        ({"items": [{"item_id": "LINE", "quantity": 2}] * 2}, ["items"], "listed twice"),
        ({"items": [{"item_id": "LINE", "quantity": 1}], "tracking_url": "dhl dot com"}, ["tracking_url"], "valid URL"),
        ({"items": [{"item_id": "LINE", "quantity": 1}], "tracking_number": "9" * 101}, ["tracking_number"], "100"),
    ],
)
def test_malformed_shipments_are_400_naming_the_field(flow, agent, body, field_path, says):
    flow.sku("desk", THIRD_PARTY)
    order = mirrored(flow.place(("desk", 2)))
    body = naming_the_line(body, item_id(order, "desk"))

    response = agent.post(shipments_url(order.dr_order_id), body, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()
    for key in field_path:
        errors = errors[str(key)]
    assert says in " ".join(errors)
    assert not Shipment.objects.exists()
    assert order.lines.get().shipped == 0


# --- 404, 401 and every permission denial ---------------------------------------------------------


@pytest.mark.parametrize("url", [cancellations_url("404404404"), shipments_url("404404404")])
def test_an_unknown_order_is_404(agent, url):
    response = agent.post(url, {"items": [{"item_id": "1", "quantity": 1}]}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == "No order 404404404 is mirrored here."


def test_an_unknown_order_has_no_cancellations_to_list(agent):
    assert agent.get(cancellations_url("404404404")).status_code == 404


def test_without_credentials_or_with_a_wrong_token_it_is_401_and_nothing_is_stored(flow):
    flow.sku("desk", THIRD_PARTY)
    order = mirrored(flow.place(("desk", 2)))
    body = {"items": [{"item_id": item_id(order, "desk"), "quantity": 1}]}
    wrong_token = APIClient()
    wrong_token.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    for client in (APIClient(), wrong_token):
        assert client.post(cancellations_url(order.dr_order_id), body, format="json").status_code == 401
        assert client.post(shipments_url(order.dr_order_id), body, format="json").status_code == 401
        assert client.get(cancellations_url(order.dr_order_id)).status_code == 401
    assert not CancellationRequest.objects.exists()
    assert not Shipment.objects.exists()


@pytest.mark.parametrize(
    ("method", "url", "granted", "needed"),
    [
        ("post", cancellations_url, ["view_order", "change_order", "record_shipment"], "commerce.cancel_order_lines"),
        ("post", shipments_url, ["view_order", "change_order", "cancel_order_lines"], "commerce.record_shipment"),
        ("get", cancellations_url, ["cancel_order_lines", "record_shipment"], "commerce.view_order"),
    ],
)
def test_each_action_is_403_without_its_own_permission_and_nothing_is_stored(flow, method, url, granted, needed):
    flow.sku("desk", THIRD_PARTY)
    order = mirrored(flow.place(("desk", 2)))
    client = token_client(user_with("almost", *granted))
    body = {"items": [{"item_id": item_id(order, "desk"), "quantity": 1}]}

    response = getattr(client, method)(url(order.dr_order_id), body, format="json")

    assert response.status_code == 403
    assert needed in response.json()["detail"]
    assert not CancellationRequest.objects.exists()
    assert not Shipment.objects.exists()


def test_a_user_without_permissions_gets_403_even_for_an_unknown_order():
    client = token_client(user_with("nobody"))
    assert client.post(cancellations_url("404404404"), {"all": True}, format="json").status_code == 403
    assert client.post(shipments_url("404404404"), {}, format="json").status_code == 403

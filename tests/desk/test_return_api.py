"""`POST /api/orders/<id>/returns/` and `…/returns/<return_id>/received/` (design.md section 6):
202 with the returns queued, 409 with the reason before anything is asked of DR, 400 naming the field."""

import pytest
import responses

from commerce.models import Order
from digitalriver.models import Instruction
from fulfillment.kinds import CREATE_FULFILLMENT_RETURN, CREATE_RETURN, RECEIVE_RETURN
from fulfillment.models import Return
from tests.conftest import token_client, user_with
from tests.fulfillment.returns_at_dr import (
    ReturnsAtDR,
    partner_gadgets_shipped,
    sweep,
    use_fake_dr,
    warehouse_shipped_one,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

WIDGET = "143040030336"


@pytest.fixture
def dr(settings):
    use_fake_dr(settings)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield ReturnsAtDR(rsps)


@pytest.fixture
def api(db):
    return token_client(user_with("agent", "start_return", "view_order"))


def post(api, path, body):
    return api.post(path, body, format="json")


def test_a_return_is_queued_with_202(api, dr, deliver):
    warehouse_shipped_one(deliver)
    response = post(
        api, "/api/orders/231388420336/returns/", {"items": [{"item_id": WIDGET, "quantity": 1}], "reason": "Too small"}
    )
    assert response.status_code == 202, response.content
    [queued] = response.json()["returns"]
    assert queued["api"] == "fulfillment_returns" and queued["state"] == "requested"
    assert queued["fulfillment_order_id"] == "700412580336"
    assert queued["lines"] == [
        {"item_id": WIDGET, "name": "Distributed widget", "quantity": 1, "quantity_accepted": 0, "state": ""}
    ]
    assert Instruction.objects.filter(kind=CREATE_FULFILLMENT_RETURN).count() == 1
    detail = api.get("/api/orders/231388420336/").json()
    assert [ret["id"] for ret in detail["returns"]] == [queued["id"]]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"items": [{"item_id": WIDGET, "quantity": 2}]},
            "Distributed widget: asked for 2, 1 of 2 can be returned now",
        ),
        ({"items": [{"item_id": "143040040336", "quantity": 1}]}, "nothing has shipped yet"),
    ],
)
def test_units_not_shipped_are_409_and_nothing_is_asked(api, dr, deliver, body, needle):
    warehouse_shipped_one(deliver)
    response = post(api, "/api/orders/231388420336/returns/", body)
    assert response.status_code == 409
    assert needle in response.json()["detail"]
    assert not Return.objects.exists()
    sweep()
    assert dr.posts == []


def test_an_order_in_dispute_is_409(api, dr, deliver):
    order = warehouse_shipped_one(deliver)
    Order.objects.filter(pk=order.pk).update(dispute_open=True)
    response = post(api, "/api/orders/231388420336/returns/", {"items": [{"item_id": WIDGET, "quantity": 1}]})
    assert response.status_code == 409
    assert "in dispute" in response.json()["detail"]
    assert not Instruction.objects.filter(kind=CREATE_FULFILLMENT_RETURN).exists()


def test_units_already_returned_are_409(api, dr, deliver):
    warehouse_shipped_one(deliver)
    assert (
        post(api, "/api/orders/231388420336/returns/", {"items": [{"item_id": WIDGET, "quantity": 1}]}).status_code
        == 202
    )
    again = post(api, "/api/orders/231388420336/returns/", {"items": [{"item_id": WIDGET, "quantity": 1}]})
    assert again.status_code == 409 and "already in a return" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "items"),
        ({"items": []}, "items"),
        ({"items": [{"item_id": "nope", "quantity": 1}]}, "items"),
        ({"items": [{"item_id": WIDGET, "quantity": "1"}]}, "items"),
        ({"items": [{"item_id": WIDGET, "quantity": 1}], "reason": "x" * 65}, "reason"),
    ],
)
def test_malformed_requests_are_400_naming_the_field(api, dr, deliver, body, field):
    warehouse_shipped_one(deliver)
    response = post(api, "/api/orders/231388420336/returns/", body)
    assert response.status_code == 400
    assert field in response.json()


def test_a_partner_return_is_received_through_the_api(api, dr):
    order = partner_gadgets_shipped()
    gadget = order.lines.get(dr_sku_id="3p-1")
    response = post(
        api, f"/api/orders/{order.dr_order_id}/returns/", {"items": [{"item_id": gadget.dr_item_id, "quantity": 3}]}
    )
    assert response.status_code == 202
    [queued] = response.json()["returns"]
    assert queued["api"] == "returns"
    assert Instruction.objects.filter(kind=CREATE_RETURN).count() == 1
    path = f"/api/orders/{order.dr_order_id}/returns/{queued['id']}/received/"
    early = post(api, path, {})
    assert early.status_code == 409 and "not confirmed this return yet" in early.json()["detail"]
    sweep()
    parcel = post(api, path, {"items": [{"item_id": gadget.dr_item_id, "quantity": 1}]})
    assert parcel.status_code == 202, parcel.content
    assert parcel.json()["completes_the_return"] is False
    assert "never refunds by itself" in parcel.json()["what_happens"][0]
    rest = post(api, path, {})
    assert rest.status_code == 202 and rest.json()["completes_the_return"] is True
    assert Instruction.objects.filter(kind=RECEIVE_RETURN).count() == 2
    assert post(api, path, {"items": [{"item_id": gadget.dr_item_id, "quantity": 1}]}).status_code == 409


def test_a_warehouse_return_cannot_be_received_through_the_api(api, dr, deliver):
    warehouse_shipped_one(deliver)
    [queued] = post(api, "/api/orders/231388420336/returns/", {"items": [{"item_id": WIDGET, "quantity": 1}]}).json()[
        "returns"
    ]
    response = post(api, f"/api/orders/231388420336/returns/{queued['id']}/received/", {})
    assert response.status_code == 409
    assert "warehouse reports when the goods arrive" in response.json()["detail"]
    assert post(api, "/api/orders/231388420336/returns/999/received/", {}).status_code == 404

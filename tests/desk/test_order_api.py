"""`/api/orders/…`: every status the API answers, token auth, filters, a detail read in a fixed number
of queries, and the OpenAPI schema."""

from datetime import timedelta

import pytest
import responses
from django.db import connection
from django.http import HttpRequest
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from commerce.models import Charge, ChargeOperation, Order, OrderLine
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLine, Shipment, ShipmentItem
from tests.conftest import dr_order, fixture, token_client, user_with

DR_TEST_URL = "https://dr.test"

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    return token_client(user_with("reader", "view_order"))


@pytest.fixture
def operator():
    return token_client(user_with("operator", "view_order", "change_order"))


def make_order(dr_order_id="231388420336", *, lines=2, state=Order.State.ACCEPTED, created=None, **values) -> Order:
    """An order with every related row the detail shows: per line a fulfillment-order line and a
    shipment item, and a charge with a capture and a cancel."""
    order = Order.objects.create(
        dr_order_id=dr_order_id,
        state=state,
        currency="USD",
        email=values.pop("email", "ada@example.com"),
        dr_created_at=created or timezone.now(),
        total_amount="30.00",
        **values,
    )
    fulfillment_order = FulfillmentOrder.objects.create(
        order=order, dr_fulfillment_order_id=f"fo-{dr_order_id}", state="shipped", created_by_us=True
    )
    shipment = Shipment.objects.create(
        order=order,
        fulfillment_order=fulfillment_order,
        dr_shipment_id=f"shp-{dr_order_id}",
        tracking_company="UPS",
        tracking_number="1Z999",
        tracking_url="https://ups.example/1Z999",
    )
    for index in range(lines):
        line = OrderLine.objects.create(
            order=order,
            dr_item_id=f"{dr_order_id}-{index}",
            dr_sku_id=f"sku-{index}",
            fulfillment_model="distributed",
            quantity=3,
            amount="10.00",
            pending=0,
            backordered=1,
            shipped=2,
            fulfilled=2,
            cancel_requested=1,
            cancelled=1,
        )
        FulfillmentOrderLine.objects.create(
            fulfillment_order=fulfillment_order,
            order_line=line,
            dr_item_id=f"foi-{dr_order_id}-{index}",
            inventory_item_id=f"sku-{index}",
            quantity=3,
            shipped=2,
            cancelled=1,
            cancel_instructed=1,
        )
        ShipmentItem.objects.create(shipment=shipment, order_line=line, dr_shipment_item_id=f"si-{index}", quantity=2)
    charge = Charge.objects.create(order=order, dr_charge_id=f"ch-{dr_order_id}", amount="30.00", state="complete")
    ChargeOperation.objects.create(charge=charge, kind="capture", dr_id="cap-1", amount="20.00", state="complete")
    ChargeOperation.objects.create(charge=charge, kind="cancel", dr_id="can-1", amount="10.00", state="complete")
    return order


@pytest.fixture
def dr(settings):
    """DR mocked at the client's edge; failing reads are not retried, to keep the tests fast."""
    settings.DR_API_BASE_URL = DR_TEST_URL
    settings.DR_CLIENT_MAX_RETRIES = 0
    with responses.RequestsMock() as mocked:
        yield mocked


# --- authentication and permissions --------------------------------------------------------------


def test_anonymous_calls_are_401():
    make_order()
    assert APIClient().get("/api/orders/").status_code == 401
    assert APIClient().get("/api/orders/231388420336/").status_code == 401
    assert APIClient().post("/api/orders/231388420336/refresh/").status_code == 401


def test_a_wrong_token_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/orders/").status_code == 401


def test_reading_needs_the_view_permission():
    make_order()
    nobody = token_client(user_with("nobody"))
    assert nobody.get("/api/orders/").status_code == 403
    assert nobody.get("/api/orders/231388420336/").status_code == 403


def test_refreshing_needs_the_change_permission(reader):
    make_order()
    assert reader.post("/api/orders/231388420336/refresh/").status_code == 403


def test_session_auth_works_too(client):
    user_with("session-reader", "view_order")
    make_order()
    # django-axes needs the request in authenticate()
    client.login(request=HttpRequest(), username="session-reader", password="secret-pass-123")
    assert client.get("/api/orders/231388420336/").status_code == 200


# --- list ----------------------------------------------------------------------------------------


def test_the_list_is_newest_first_and_paginated(reader):
    now = timezone.now()
    make_order("1001", lines=1, created=now - timedelta(days=2))
    make_order("1002", lines=1, created=now)
    make_order("1003", lines=1, created=now - timedelta(days=1))

    body = reader.get("/api/orders/").json()

    assert body["count"] == 3 and body["next"] is None
    assert [order["dr_order_id"] for order in body["results"]] == ["1002", "1003", "1001"]
    first = body["results"][0]
    assert first["state"] == "accepted" and first["email"] == "ada@example.com"
    assert first["flags"] == {
        "capture_failed": False,
        "authorization_lapsed": False,
        "cancellation_rejected": False,
        "refund_failed": False,
        "dispute_open": False,
        "refund_waiting": False,
        "backordered": False,
        "unknown_sku": False,
        "needs_attention": False,
    }
    assert "lines" not in first


def test_the_list_filters_by_state_upstream_id_and_email(reader):
    make_order("1001", lines=1, state=Order.State.ACCEPTED, upstream_id="WEB-1", email="ada@example.com")
    make_order("1002", lines=1, state=Order.State.COMPLETE, upstream_id="WEB-2", email="ada@example.com")
    make_order("1003", lines=1, state=Order.State.COMPLETE, upstream_id="WEB-3", email="bob@example.com")

    def ids(**params):
        return sorted(order["dr_order_id"] for order in reader.get("/api/orders/", params).json()["results"])

    assert ids(state="complete") == ["1002", "1003"]
    assert ids(upstream_id="WEB-1") == ["1001"]
    assert ids(email="ADA@example.com") == ["1001", "1002"]
    assert ids(state="complete", email="ada@example.com") == ["1002"]


def test_q_searches_what_an_agent_types_as_the_admin_does(reader):
    make_order("231388420001", lines=1, upstream_id="WEB-1", email="ada@example.com", customer_name="Ada Lovelace")
    make_order("231388420002", lines=2, upstream_id="WEB-2", email="grace@example.com", customer_name="Grace Hopper")
    Shipment.objects.filter(order__dr_order_id="231388420002").update(tracking_number="1Z999AA10123456784")

    def ids(q, **params):
        answer = reader.get("/api/orders/", {"q": q, **params})
        assert answer.status_code == 200
        return sorted(order["dr_order_id"] for order in answer.json()["results"])

    assert ids("8842000") == ["231388420001", "231388420002"]  # part of the DR order id
    assert ids("420002") == ["231388420002"]
    assert ids("web-1") == ["231388420001"]
    assert ids("GRACE@") == ["231388420002"]
    assert ids("lovelace") == ["231388420001"]
    assert ids("sku-1") == ["231388420002"]  # a SKU: only the second order has a second line
    assert ids("1Z999AA10123456784") == ["231388420002"]
    assert ids("1Z999") == ["231388420001", "231388420002"]  # part of a tracking number
    assert ids("1Z999", email="ada@example.com") == ["231388420001"]  # with the other filters
    assert ids("ada hopper") == []


def test_an_unknown_state_filter_is_400_naming_the_field(reader):
    response = reader.get("/api/orders/", {"state": "shipped"})
    assert response.status_code == 400
    assert "state" in response.json() and "'shipped' is not one of" in response.json()["state"][0]


# --- detail --------------------------------------------------------------------------------------


def test_the_detail_shows_lines_fulfillment_orders_shipments_charges_and_flags(reader):
    make_order(lines=1, backordered=True)

    response = reader.get("/api/orders/231388420336/")

    assert response.status_code == 200
    body = response.json()
    assert body["flags"]["backordered"] is True and body["flags"]["needs_attention"] is True
    assert body["lines"] == [
        {
            "dr_item_id": "231388420336-0",
            "dr_sku_id": "sku-0",
            "name": "",
            "fulfillment_model": "distributed",
            "dr_state": "",
            "quantity": 3,
            "amount": "10.00",
            "tax_amount": "0.00",
            "tax_rate": "0.00000",
            "pending": 0,
            "backordered": 1,
            "shipped": 2,
            "fulfilled": 2,
            "captured": 0,  # no capture of its fulfillment is reported: no money is claimed
            "capture_failed": 0,
            "cancel_requested": 1,
            "cancelled": 1,
            "open_quantity": 0,
            "return_requested": 0,
            "returned": 0,
            "captured_amount": "0.00",
            "refunded_amount": "0.00",
        }
    ]
    (fulfillment_order,) = body["fulfillment_orders"]
    assert fulfillment_order["dr_fulfillment_order_id"] == "fo-231388420336"
    assert fulfillment_order["lines"][0]["order_item_id"] == "231388420336-0"
    assert fulfillment_order["lines"][0]["cancel_instructed"] == 1
    (shipment,) = body["shipments"]
    assert shipment["fulfillment_order_id"] == "fo-231388420336"
    assert shipment["tracking_number"] == "1Z999" and shipment["tracking_url"] == "https://ups.example/1Z999"
    assert shipment["items"] == [{"dr_shipment_item_id": "si-0", "order_item_id": "231388420336-0", "quantity": 2}]
    (charge,) = body["charges"]
    assert [capture["amount"] for capture in charge["captures"]] == ["20.00"]
    assert [cancel["amount"] for cancel in charge["cancels"]] == ["10.00"]
    assert charge["refunds"] == []


def test_an_unknown_order_is_404(reader):
    response = reader.get("/api/orders/999/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No order 999 is mirrored here."}


def test_the_detail_reads_in_the_same_number_of_queries_for_3_and_30_lines(reader):
    make_order("3000", lines=3)
    make_order("3001", lines=30)

    def queries_for(dr_order_id: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = reader.get(f"/api/orders/{dr_order_id}/")
        assert response.status_code == 200
        assert len(response.json()["lines"]) == len(response.json()["shipments"][0]["items"])
        return len(captured)

    queries_for("3000")  # warm the content-type cache the permission check uses
    assert queries_for("3000") == queries_for("3001")


# --- refresh -------------------------------------------------------------------------------------


def test_refresh_mirrors_drs_order_and_answers_with_it(operator, dr):
    make_order(lines=0, state=Order.State.ACCEPTED)
    fulfilled = dr_order(
        state="fulfilled",
        updatedTime="2026-11-21T10:00:00.000Z",
        stateTransitions={"accepted": "2026-11-20T10:00:01.000Z", "fulfilled": "2026-11-21T10:00:00.000Z"},
    )
    dr.get(f"{DR_TEST_URL}/orders/231388420336", json=fulfilled)

    response = operator.post("/api/orders/231388420336/refresh/")

    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "fulfilled"
    assert {line["dr_sku_id"] for line in body["lines"]} == {"dist-1", "orch-1"}
    assert Order.objects.get(dr_order_id="231388420336").state == Order.State.FULFILLED


def test_refresh_of_an_order_dr_does_not_have_is_404(operator, dr):
    dr.get(f"{DR_TEST_URL}/orders/404404", status=404, json=fixture("error_not_found.json"))

    response = operator.post("/api/orders/404404/refresh/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Digital River has no order 404404."}
    assert not Order.objects.filter(dr_order_id="404404").exists()


def test_refresh_when_dr_fails_is_502_with_the_reason_and_keeps_the_mirror(operator, dr):
    make_order(lines=1)
    dr.get(
        f"{DR_TEST_URL}/orders/231388420336",
        status=503,
        json={"type": "service_unavailable", "errors": [{"code": "service_unavailable", "message": "Try later."}]},
    )

    response = operator.post("/api/orders/231388420336/refresh/")

    assert response.status_code == 502
    detail = response.json()["detail"]
    assert detail.startswith("Digital River could not be asked:")
    assert "503" in detail and "Try later." in detail
    assert Order.objects.get(dr_order_id="231388420336").lines.count() == 1


# --- the schema ----------------------------------------------------------------------------------


def test_the_openapi_schema_documents_the_order_endpoints(reader):
    response = reader.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "get" in paths["/api/orders/"]
    assert {parameter["name"] for parameter in paths["/api/orders/"]["get"]["parameters"]} >= {
        "state",
        "upstream_id",
        "email",
        "page",
    }
    detail = paths["/api/orders/{dr_order_id}/"]["get"]
    assert detail["responses"]["200"]["content"]["application/json"]["examples"]
    refresh = paths["/api/orders/{dr_order_id}/refresh/"]["post"]
    assert {"200", "404", "502"} <= set(refresh["responses"])
    assert refresh["summary"]

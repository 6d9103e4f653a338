"""The order list exported as CSV: the rows the list shows (filters and search), every column an agent
reports on, and nothing a spreadsheet would run as a formula."""

import csv
import io

import pytest
from django.urls import reverse

from commerce.models import Order
from commerce.services import order_upsert
from tests.conftest import fixture
from tests.fulfillment.order_stories import order_data, story

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]


def exported(client, **query) -> list[dict[str, str]]:
    response = client.get(reverse("admin:commerce_order_export"), query)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_export_is_the_filtered_and_searched_list_with_every_column(admin_client):
    flagged = story()
    order_upsert(
        data=order_data(
            dr_order_id="231388420999",
            lines=1,
            email="grace@example.com",
            shipTo={**fixture("order.json")["shipTo"], "name": "=HYPERLINK(1)"},
        )
    )
    everything = exported(admin_client)
    assert {row["order id"] for row in everything} == {flagged.dr_order_id, "231388420999"}
    assert list(everything[0]) == [
        "order id",
        "upstream id",
        "placed",
        "state",
        "customer",
        "email",
        "total",
        "currency",
        "captured",
        "refunded",
        "attention flags",
    ]
    [row] = exported(admin_client, capture_failed__exact="1")
    order = Order.objects.get(pk=flagged.pk)
    assert row["order id"] == order.dr_order_id
    assert row["upstream id"] == order.upstream_id
    assert row["email"] == order.email and row["customer"] == order.customer_name
    assert row["total"] == str(order.total_amount) and row["currency"] == order.currency
    assert row["captured"] == str(order.captured_amount) and row["refunded"] == str(order.refunded_amount)
    assert row["state"] == order.get_state_display()
    assert row["placed"].startswith(str(order.dr_created_at.year))
    assert "Capture failed" in row["attention flags"] and "Backordered" in row["attention flags"]
    [found] = exported(admin_client, q="grace@")
    assert found["customer"] == "'=HYPERLINK(1)"  # shown as text, never run


def test_the_order_list_offers_the_export_with_its_own_filters(admin_client):
    story()
    html = admin_client.get(reverse("admin:commerce_order_changelist"), {"q": "1Z999"}).content.decode()
    assert f"{reverse('admin:commerce_order_export')}?q=1Z999" in html


def test_the_export_needs_the_right_to_view_orders(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:commerce_order_export")).status_code == 403


def test_an_order_found_by_its_dr_id_opens_its_page(admin_client):
    order = story()
    response = admin_client.get(reverse("admin:commerce_order_by_dr_id", args=[order.dr_order_id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:commerce_order_change", args=[order.pk])
    assert admin_client.get(reverse("admin:commerce_order_by_dr_id", args=["000"])).status_code == 404

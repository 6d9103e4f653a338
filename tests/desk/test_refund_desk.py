"""Refunds at the desk: the API (`POST /api/orders/<id>/refunds/`), the admin's form and confirmation,
"Retry refund", the refunds on the order page, in the order's JSON and in its timeline; and who may."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from commerce.models import Order, Refund
from commerce.refund_mirror import refund_mirror
from commerce.refunds import refund_execute, refund_plan
from digitalriver.models import Instruction
from tests.commerce.refund_stories import MANAGED, ORDER, captured_order, refund_event
from tests.conftest import restore_roles, token_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalog")]

URL = f"/api/orders/{ORDER}/refunds/"


def person(name: str, *roles: str) -> User:
    restore_roles()
    user = User.objects.create(username=name, is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


@pytest.fixture
def lead():
    return person("lena", "Customer service", "Refunds")


@pytest.fixture
def order():
    return captured_order()


# --- who may -------------------------------------------------------------------------------------


def test_customer_service_with_the_refunds_role_may_refund_and_alone_may_not(order):
    lead = token_client(person("lena", "Customer service", "Refunds"))
    agent = token_client(person("carl", "Customer service"))
    body = {"reason": "late", "amount": "1.00"}
    assert agent.post(URL, body, format="json").status_code == 403
    assert lead.post(URL, body, format="json").status_code == 202

    admin_url = reverse("admin:commerce_order_refund", args=[order.pk])
    for user, expected in ((User.objects.get(username="carl"), 403), (User.objects.get(username="lena"), 200)):
        client = Client()
        client.force_login(user)
        assert client.get(admin_url).status_code == expected


# --- the API ---------------------------------------------------------------------------------------


def test_the_api_queues_a_refund_of_units(order, lead):
    response = token_client(lead).post(
        URL, {"reason": "broken", "items": [{"item_id": MANAGED, "quantity": 1}]}, format="json"
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["state"], body["amount"], body["requested_by"]) == ("requested", "21.59", "lena")
    assert body["lines"] == [{"item_id": MANAGED, "name": "Managed widget", "quantity": 1, "amount": "21.59"}]
    assert Instruction.objects.get().payload["items"] == [{"itemId": MANAGED, "quantity": 1, "percent": 100}]


@pytest.mark.parametrize("body", [{"percent": 100}, {"type": "shipping"}, {"amount": "12.50"}])
def test_the_api_takes_each_kind(order, lead, body):
    assert token_client(lead).post(URL, {"reason": "x", **body}, format="json").status_code == 202


def test_the_api_refuses_more_than_is_available_with_409(order, lead):
    response = token_client(lead).post(URL, {"reason": "x", "amount": "80.00"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": f"Only 70.17 USD of order {ORDER} can still be refunded; you asked 80.00 USD."}
    assert not Instruction.objects.exists()


def test_the_api_refuses_in_dispute_with_409(order, lead):
    Order.objects.filter(pk=order.pk).update(dispute_open=True)
    response = token_client(lead).post(URL, {"reason": "x", "amount": "1.00"}, format="json")
    assert response.status_code == 409
    assert "in dispute" in response.json()["detail"]


def test_the_api_refuses_nothing_captured_with_409(lead):
    captured_order(captured="0")
    response = token_client(lead).post(URL, {"reason": "x", "amount": "1.00"}, format="json")
    assert response.status_code == 409 and "captured yet" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x", "amount": "1.00", "percent": 5}, "percent"),
        ({"reason": "x"}, "amount"),
        ({"reason": "x", "amount": "1.005"}, "amount"),
        ({"reason": "x", "amount": "-1"}, "amount"),
        ({"reason": "x", "percent": 101}, "percent"),
        ({"reason": "x", "items": [{"item_id": "nope", "quantity": 1}]}, "items"),
        ({"reason": "x", "type": "everything"}, "type"),
        ({"amount": "1.00"}, "reason"),
    ],
)
def test_the_api_names_the_malformed_field(order, lead, body, field):
    response = token_client(lead).post(URL, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_the_order_shows_its_refunds(order, lead):
    refund = refund_execute(plan=refund_plan(order=order, reason="late", amount=Decimal("33")), by=lead)
    refund_mirror(data=refund_event("event_refund_pending_information.json", refund))
    [shown] = token_client(lead).get(f"/api/orders/{ORDER}/").json()["refunds"]
    assert shown["state_words"] == "Waiting for the customer's bank details"
    assert shown["token_expires_at"] == "2026-12-21T20:37:21.087000Z"
    assert (shown["amount"], shown["refunded_amount"], shown["requested_by"]) == ("33.00", "0.00", "lena")


# --- the admin -------------------------------------------------------------------------------------


def test_the_form_confirms_how_much_goes_where_then_refunds(order, lead):
    client = Client()
    client.force_login(lead)
    url = reverse("admin:commerce_order_refund", args=[order.pk])
    form = client.get(url)
    assert form.status_code == 200 and "70.17 USD" in form.content.decode()
    line = order.lines.get(dr_item_id=MANAGED)
    data = {"what": "units", f"line_{line.pk}": "1", "reason": "broken"}
    confirm = client.post(url, data)
    assert "Refund 21.59 USD to Visa •••• 1111 for 1 \u00d7 Managed widget" in confirm.content.decode()
    assert not Refund.objects.exists()
    done = client.post(url, {**data, "confirm": "1", "plan": confirm.context["plan_fingerprint"]})
    assert done.status_code == 302 and done["Location"].endswith("#refunds")
    refund = Refund.objects.get()
    assert (refund.amount, refund.requested_by) == (Decimal("21.59"), lead)
    page = client.get(reverse("admin:commerce_order_change", args=[order.pk])).content.decode()
    assert 'id="order-refunds"' in page and "1 unit of Managed widget" in page
    assert "lena asked to refund 21.59 USD for 1 unit of Managed widget" in page  # the timeline
    technical = client.get(reverse("admin:commerce_order_change", args=[order.pk]) + "?technical=1").content.decode()
    assert "Queued: Ask DR to refund for 1 unit of Managed widget" not in page
    assert "Queued: Ask DR to refund for 1 unit of Managed widget" in technical


def test_the_form_shows_the_refusal(order, lead):
    client = Client()
    client.force_login(lead)
    url = reverse("admin:commerce_order_refund", args=[order.pk])
    response = client.post(url, {"what": "amount", "amount": "80", "reason": "x"})
    assert f"Only 70.17 USD of order {ORDER} can still be refunded; you asked 80.00 USD." in response.content.decode()


def test_a_failed_refund_is_retried_after_a_confirmation(order, lead):
    refund = refund_execute(plan=refund_plan(order=order, reason="late", amount=Decimal("27.01")))
    refund_mirror(data=refund_event("event_refund_failed.json", refund))
    client = Client()
    client.force_login(lead)
    page = client.get(reverse("admin:commerce_order_change", args=[order.pk])).content.decode()
    assert "Retry refund" in page and "expired_or_canceled_card" in page
    url = f"{reverse('admin:commerce_order_refund_retry', args=[order.pk])}?refund={refund.pk}"
    shown = client.get(url)
    assert "Refund 27.01 USD to Visa •••• 1111" in shown.content.decode()
    done = client.post(url, {"confirm": "1", "plan": shown.context["plan"].fingerprint})
    assert done.status_code == 302
    retry = Refund.objects.get(retry_of=refund)
    assert (retry.amount, retry.state) == (Decimal("27.01"), Refund.State.REQUESTED)
    again = client.get(url).content.decode()
    assert "already retried" in again

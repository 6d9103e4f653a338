"""Customer emails are plain text: what they quote arrives as written, never HTML-escaped. A tracking
link with `&` must still work and "O'Brien" must not arrive as `O&#x27;Brien`."""

import pytest
from django.core import mail

from commerce.models import Order
from tests.conftest import fixture, fulfillment_order

pytestmark = pytest.mark.django_db

NAME = "Siobhán O'Brien & <Co>"
TRACKING_URL = 'https://track.example/?tracknum=1Z999AA10123456784&lang=en&ref="mail"'
#: What Django's HTML escaping would have made of & ' " < >.
ESCAPED = ("&amp;", "&#x27;", "&quot;", "&lt;", "&gt;", "&#39;")


@pytest.fixture
def obrien(accepted_order):
    Order.objects.filter(pk=accepted_order.pk).update(customer_name=NAME)
    mail.outbox.clear()
    return accepted_order


def assert_plain(email) -> None:
    for entity in ESCAPED:
        assert entity not in email.body, f"{entity} in {email.body!r}"
        assert entity not in email.subject


def test_the_shipped_email_has_a_working_tracking_link_and_the_name_as_written(obrien, deliver):
    shipment = fixture("event_fulfillment_order_shipped.json")["data"]["object"]
    shipment["trackingUrl"] = TRACKING_URL
    deliver("fulfillment_order.shipped", shipment)
    [email] = mail.outbox
    assert f"Follow it here: {TRACKING_URL}\n" in email.body
    assert f"Hello {NAME}," in email.body
    assert_plain(email)


def test_the_backordered_email_has_the_name_as_written(obrien, deliver):
    deliver("fulfillment_order.backordered", fulfillment_order(pending=0, backordered=2))
    [email] = mail.outbox
    assert f"Hello {NAME}," in email.body
    assert_plain(email)


def test_the_cancelled_email_has_the_name_as_written(catalog, deliver, no_dr):
    order = fixture("order.json")
    order["shipTo"]["name"] = NAME
    deliver("order.accepted", order)
    released = fixture("event_fulfillment_created.json")["data"]["object"]
    released["items"][0].update(quantity=0, cancelQuantity=1)
    mail.outbox.clear()
    deliver("fulfillment.created", released)
    [email] = mail.outbox
    assert f"Hello {NAME}," in email.body
    assert_plain(email)


def test_the_capture_failed_email_quotes_the_customer_and_dr_as_written(obrien, deliver):
    charge = fixture("event_order_charge_capture_failed.json")["data"]["object"]
    deliver("order.charge.capture.failed", charge)
    [email] = mail.outbox
    assert f"Customer: {NAME} <ada@example.com>" in email.body
    assert_plain(email)

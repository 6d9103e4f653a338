"""The customer emails as a set: one email per customer-visible change, worded for who asked."""

import pytest
from django.core import mail

from commerce.models import OrderLine
from fulfillment.models import CancellationLine, CancellationRequest, Notification
from fulfillment.notifications import notify_cancelled
from tests.conftest import fulfillment_order

pytestmark = pytest.mark.django_db

DATE = "2026-12-01T00:00:00Z"


def subjects() -> list[str]:
    return [email.subject for email in mail.outbox]


def test_cancelling_one_of_two_backordered_units_sends_no_second_delay_email(accepted_order, deliver):
    deliver("fulfillment_order.backordered", fulfillment_order(pending=0, backordered=2, availableTime=DATE))
    mail.outbox.clear()
    deliver(
        "fulfillment_order.cancelled",
        fulfillment_order(pending=0, backordered=1, cancelled=1, availableTime=DATE, state="backordered"),
    )
    assert not any("delayed" in subject for subject in subjects())
    assert Notification.objects.filter(kind="backordered").count() == 1


def test_more_backordered_units_or_a_new_date_is_news(accepted_order, deliver):
    deliver("fulfillment_order.backordered", fulfillment_order(pending=1, backordered=1, availableTime=DATE))
    deliver("fulfillment_order.backordered", fulfillment_order(pending=0, backordered=2, availableTime=DATE))
    deliver(
        "fulfillment_order.backordered",
        fulfillment_order(pending=0, backordered=2, availableTime="2026-12-20T00:00:00Z"),
    )
    assert Notification.objects.filter(kind="backordered").count() == 3


def test_units_customer_service_cancelled_are_confirmed_without_doubting_the_customer(
    accepted_order, django_capture_on_commit_callbacks
):
    line = OrderLine.objects.filter(order=accepted_order).first()
    request = CancellationRequest.objects.create(order=accepted_order, route="fulfillment", reason="Asked by phone")
    CancellationLine.objects.create(request=request, order_line=line, quantity=1)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        notify_cancelled(order=accepted_order, released=[(line, 1)], source="test:asked")

    [email] = mail.outbox
    assert email.subject == "Your cancellation for order 231388420336 is done"
    assert "As arranged with our customer service" in email.body
    assert "did not ask" not in email.body


def test_units_the_warehouse_cancelled_are_apologised_for(accepted_order, django_capture_on_commit_callbacks):
    line = OrderLine.objects.filter(order=accepted_order).first()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        notify_cancelled(order=accepted_order, released=[(line, 1)], source="test:warehouse")

    [email] = mail.outbox
    assert email.subject == "Items of your order 231388420336 were cancelled"
    assert "We are sorry: we could not supply" in email.body
    assert "did not ask" not in email.body


def test_the_preview_page_shows_a_sample_of_every_email_kind(admin_client):
    page = admin_client.get("/admin/fulfillment/notification/preview/")
    assert page.status_code == 200
    html = page.content.decode()
    for kind in Notification.Kind:
        assert f'data-kind="{kind.value}"' in html, kind
    assert "Your cancellation for order 240012345336 is done" in html
    assert "We are sorry: we could not supply" in html
    assert "Tracking number: 1Z999AA10123456784" in html
    assert not Notification.objects.exists()  # nothing is written or sent
    assert (
        "/admin/fulfillment/notification/preview/"
        in admin_client.get("/admin/fulfillment/notification/").content.decode()
    )

"""A customer's link to their invoice (DR's order-management/files-and-file-links-1/file-links/
creating-a-file-link.md): DR makes it with POST /file-links {fileId, expiresTime}, and the customer
gets it by email once per link."""

import json
from datetime import timedelta

import pytest
import responses
from django.core import mail
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from commerce.documents import LINK_VALID_FOR
from commerce.models import Document, Order
from fulfillment.document_links import LinkRefused, document_link_send
from fulfillment.models import Notification
from tests.conftest import fixture
from tests.documents_support import DR, INVOICE_FILE, SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(accepted_order, deliver):
    deliver("order.invoice.created", fixture("event_order_invoice_created.json")["data"]["object"])
    mail.outbox.clear()
    return Document.objects.get()


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """document_link_send, with the email sent as it is right after the commit."""

    def send_link(document, by=None):
        with django_capture_on_commit_callbacks(execute=True):
            return document_link_send(document=document, by=by)

    return send_link


def test_the_customer_gets_the_link_by_email(invoice, dr_api, admin_user, send):
    link = fixture("file_link.json")
    dr_api.add(responses.POST, f"{DR}/file-links", json=link, status=201)
    sent = send(invoice, admin_user)
    assert sent.url == link["url"]
    [call] = dr_api.calls
    assert call.request.headers["Authorization"] == f"Bearer {SECRET}"
    body = json.loads(call.request.body)
    assert set(body) == {"fileId", "expiresTime"} and body["fileId"] == INVOICE_FILE
    expires = parse_datetime(body["expiresTime"])
    assert timezone.now() + LINK_VALID_FOR - timedelta(minutes=1) < expires <= timezone.now() + LINK_VALID_FOR
    [email] = mail.outbox
    assert email.to == ["ada@example.com"]
    assert email.subject == "Your invoice for order 231388420336"
    assert link["url"] in email.body
    assert "4 Dec 2026" in email.body  # DR's expiresTime, as the customer reads it
    assert "api.digitalriver.com" not in email.body, "DR's own URL needs our key: never the customer's"
    assert Notification.objects.get().kind == Notification.Kind.DOCUMENT_LINK


def test_one_link_is_emailed_once(invoice, dr_api, send):
    dr_api.add(responses.POST, f"{DR}/file-links", json=fixture("file_link.json"), status=201)
    send(invoice)
    send(invoice)  # DR answered with the same link: no second email
    assert len(mail.outbox) == 1 and Notification.objects.count() == 1


def test_a_new_link_is_a_new_email(invoice, dr_api, send):
    first, second = fixture("file_link.json"), {**fixture("file_link.json"), "id": "link-2", "url": "https://x/2"}
    dr_api.add(responses.POST, f"{DR}/file-links", json=first, status=201)
    dr_api.add(responses.POST, f"{DR}/file-links", json=second, status=201)
    send(invoice)
    send(invoice)
    assert [email.body.count("https://x/2") for email in mail.outbox] == [0, 1]


def test_no_email_address_no_link(invoice, dr_api):
    Order.objects.filter(pk=invoice.order_id).update(email="")
    with pytest.raises(LinkRefused, match="no email address"):
        document_link_send(document=Document.objects.select_related("order").get())
    assert len(dr_api.calls) == 0 and mail.outbox == []

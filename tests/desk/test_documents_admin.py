"""The order page's invoices and credit memos: listed with Download and "Send the customer a link",
the plain-words note when there is none, chargebacks in words, the PDF streamed through us, and the
link emailed once after a confirmation."""

import pytest
import responses
from django.contrib import messages
from django.core import mail
from django.urls import reverse

from commerce.documents import CREDIT_MEMOS_COME_LATER, INVOICE_COMES_LATER
from commerce.models import Document, Order
from desk.timeline import order_timeline
from tests.conftest import dr_order, fixture, user_with
from tests.documents_support import DR, INVOICE_FILE, PDF, SECRET, content_url
from tests.fulfillment.order_stories import change_url, customer_service

pytestmark = pytest.mark.django_db

CHARGEBACK = {
    "id": "0206802584_000010_3700005504",
    "createdTime": "2026-11-25T09:00:00Z",
    "currency": "USD",
    "amount": 25.0,
    "type": "non_fraud_chargeback",
    "orderId": "231388420336",
}


@pytest.fixture
def invoice(accepted_order, deliver):
    deliver("order.invoice.created", fixture("event_order_invoice_created.json")["data"]["object"])
    return Document.objects.get()


@pytest.fixture
def agent(client, django_user_model):
    client.force_login(customer_service(django_user_model))
    return client


def document_url(order: Order, file_id: str, name: str = "commerce_order_document") -> str:
    return reverse(f"admin:{name}", args=[order.pk, file_id])


def test_the_page_lists_the_invoice_with_its_two_links(agent, invoice):
    page = agent.get(change_url(invoice.order)).content.decode()
    assert 'id="order-documents"' in page
    assert "Invoice, 20 Nov 2026 — " in page
    assert document_url(invoice.order, INVOICE_FILE) in page
    assert document_url(invoice.order, INVOICE_FILE, "commerce_order_document_link") in page
    assert ">Send the customer a link</a>" in page
    assert CREDIT_MEMOS_COME_LATER in page


def test_with_no_document_the_page_says_when_they_come(agent, accepted_order):
    page = agent.get(change_url(accepted_order)).content.decode()
    assert 'id="order-documents"' not in page
    assert INVOICE_COMES_LATER in page and CREDIT_MEMOS_COME_LATER in page


def test_a_reader_sees_download_but_not_send(client, invoice):
    reader = user_with("reader", "view_order")
    reader.is_staff = True
    reader.save()
    client.force_login(reader)
    page = client.get(change_url(invoice.order)).content.decode()
    assert ">Download</a>" in page and "Send the customer a link" not in page
    response = client.get(document_url(invoice.order, INVOICE_FILE, "commerce_order_document_link"))
    assert response.status_code == 403


def test_a_chargeback_shows_on_the_page_and_in_the_timeline(agent, accepted_order, deliver):
    deliver("order.chargeback", CHARGEBACK)
    sentence = "Chargeback: 25.00 USD taken back by the customer&#x27;s bank"
    assert sentence in agent.get(change_url(accepted_order)).content.decode()
    sentences = [entry.sentence for entry in order_timeline(order=accepted_order)]
    assert "Chargeback: 25.00 USD taken back by the customer's bank (not reported as fraud)" in sentences


def test_the_timeline_says_the_invoice_is_ready(invoice):
    entries = [entry for entry in order_timeline(order=invoice.order) if entry.source == "document"]
    assert [entry.sentence for entry in entries] == ["Invoice ready to download or send to the customer"]


# --- download --------------------------------------------------------------------------------------


def test_download_streams_the_pdf_with_our_key(agent, invoice, dr_api, no_disk_writes):
    dr_api.add(responses.GET, content_url(INVOICE_FILE), body=PDF, content_type="application/pdf")
    response = agent.get(document_url(invoice.order, INVOICE_FILE))
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invoice-231388420336.pdf"'
    assert "no-store" in response["Cache-Control"].split(", ")  # the admin adds its own never-cache words
    [call] = dr_api.calls
    assert call.request.headers["Authorization"] == f"Bearer {SECRET}"


def test_another_orders_file_is_not_found(agent, invoice, dr_api):
    other = Order.objects.create(dr_order_id="231388420999", currency="USD")
    assert agent.get(document_url(other, INVOICE_FILE)).status_code == 404
    assert len(dr_api.calls) == 0


def test_dr_without_the_file_is_said_plainly(agent, invoice, dr_api):
    dr_api.add(responses.GET, content_url(INVOICE_FILE), json=fixture("error_not_found.json"), status=404)
    response = agent.get(document_url(invoice.order, INVOICE_FILE), follow=True)
    [message] = list(response.context["messages"])
    assert message.level == messages.ERROR
    assert "DR has no such file (yet)" in message.message


# --- send the customer a link ----------------------------------------------------------------------


def test_sending_a_link_asks_first_then_emails_once(agent, invoice, dr_api, django_capture_on_commit_callbacks):
    url = document_url(invoice.order, INVOICE_FILE, "commerce_order_document_link")
    question = agent.get(url).content.decode()
    assert "Email ada@example.com a link to the invoice, valid until " in question
    assert len(dr_api.calls) == 0
    dr_api.add(responses.POST, f"{DR}/file-links", json=fixture("file_link.json"), status=201)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(url, {"confirm": "yes"}, follow=True)
    [message] = list(response.context["messages"])
    assert message.message == "Emailed ada@example.com a link to the invoice, valid until 4 Dec 2026, 13:08 UTC."
    [email] = mail.outbox
    assert fixture("file_link.json")["url"] in email.body


def test_a_post_without_confirm_only_asks(agent, invoice, dr_api):
    response = agent.post(document_url(invoice.order, INVOICE_FILE, "commerce_order_document_link"))
    assert response.status_code == 200 and len(dr_api.calls) == 0 and mail.outbox == []


def test_no_email_address_no_link(agent, invoice, dr_api):
    Order.objects.filter(pk=invoice.order_id).update(email="")
    page = agent.get(document_url(invoice.order, INVOICE_FILE, "commerce_order_document_link")).content.decode()
    assert "The order has no email address" in page and 'name="confirm"' not in page


def test_the_order_backfills_what_the_page_lists(agent, catalog, no_dr):
    from commerce.services import order_upsert

    order = order_upsert(
        data=dr_order(creditMemoPDFs=[{"id": "memo-1", "url": "https://api.digitalriver.com/files/memo-1/content"}])
    )
    page = agent.get(change_url(order)).content.decode()
    assert "Credit memo, " in page and INVOICE_COMES_LATER in page

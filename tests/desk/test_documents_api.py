"""`GET /api/orders/<dr_order_id>/documents/<file_id>/`: the PDF streamed from DR as an attachment,
never cached; 404 for another order's file or a file DR has not made; the order's detail lists its
documents, what to say when there is none, and its chargebacks."""

import pytest
import responses
from drf_spectacular.generators import SchemaGenerator

from commerce.documents import CREDIT_MEMOS_COME_LATER, NO_SUCH_FILE
from commerce.models import Document, Order
from tests.conftest import fixture, token_client, user_with
from tests.documents_support import INVOICE_FILE, PDF, SECRET, content_url

pytestmark = pytest.mark.django_db

PATH = "/api/orders/{order}/documents/{file}/"


@pytest.fixture
def invoice(accepted_order, deliver):
    deliver("order.invoice.created", fixture("event_order_invoice_created.json")["data"]["object"])
    return Document.objects.get()


@pytest.fixture
def reader():
    return token_client(user_with("reader", "view_order"))


def url(order_id="231388420336", file_id=INVOICE_FILE) -> str:
    return PATH.format(order=order_id, file=file_id)


@pytest.mark.parametrize("accept", ["application/pdf", "application/json", "*/*"])
def test_the_pdf_is_streamed_as_an_attachment(reader, invoice, dr_api, no_disk_writes, accept):
    dr_api.add(responses.GET, content_url(INVOICE_FILE), body=PDF, content_type="application/pdf")
    response = reader.get(url(), HTTP_ACCEPT=accept)
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invoice-231388420336.pdf"'
    assert response["Cache-Control"] == "no-store"
    [call] = dr_api.calls
    assert call.request.headers["Authorization"] == f"Bearer {SECRET}"


def test_another_orders_file_is_404_without_asking_dr(reader, invoice, dr_api):
    Order.objects.create(dr_order_id="231388420999", currency="USD")
    response = reader.get(url(order_id="231388420999"))
    assert response.status_code == 404
    assert "has no document" in response.json()["detail"]
    assert len(dr_api.calls) == 0


def test_an_unknown_order_is_404(reader, db):
    assert reader.get(url(order_id="999")).status_code == 404


def test_dr_without_the_file_is_404_said_plainly(reader, invoice, dr_api):
    dr_api.add(responses.GET, content_url(INVOICE_FILE), json=fixture("error_not_found.json"), status=404)
    response = reader.get(url(), HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404
    assert response.json() == {"detail": NO_SUCH_FILE}


def test_dr_down_is_502(reader, invoice, dr_api):
    dr_api.add(responses.GET, content_url(INVOICE_FILE), json={"type": "service_unavailable"}, status=503)
    response = reader.get(url())
    assert response.status_code == 502 and "Digital River could not be asked" in response.json()["detail"]


def test_without_view_order_it_is_refused(invoice, dr_api):
    merchandiser = token_client(user_with("merch", "view_sku", app_label="catalog"))
    assert merchandiser.get(url()).status_code == 403
    assert len(dr_api.calls) == 0


def test_the_detail_lists_documents_note_and_chargebacks(reader, invoice, deliver):
    deliver(
        "order.chargeback",
        {"id": "st-1", "type": "fraud_chargeback", "amount": 25.0, "currency": "USD", "orderId": "231388420336"},
    )
    body = reader.get("/api/orders/231388420336/").json()
    [document] = body["documents"]
    assert document["dr_file_id"] == INVOICE_FILE and document["kind"] == "Invoice"
    assert document["download"] == url()
    assert body["documents_note"] == CREDIT_MEMOS_COME_LATER
    [chargeback] = body["chargebacks"]
    assert (chargeback["amount"], chargeback["kind"]) == ("25.00", "fraud_chargeback")
    assert chargeback["description"].startswith("Chargeback: 25.00 USD taken back by the customer's bank")


def test_the_schema_describes_the_download():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/orders/{dr_order_id}/documents/{file_id}/"]["get"]
    assert "application/pdf" in operation["responses"]["200"]["content"]
    assert {"404", "502"} <= set(operation["responses"])
    assert "invoice-<order>.pdf" in operation["description"]

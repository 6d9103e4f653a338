"""Invoices and credit memos (DR's order-management/accessing-invoices-and-credit-memos.md): recorded
once from their events and from the order's invoicePDFs[] / creditMemoPDFs[], in whatever order they
come; downloaded with our key as a stream; and what to say when there is none."""

import json
from decimal import Decimal

import pytest
import responses

from commerce.documents import (
    CREDIT_MEMOS_COME_LATER,
    INVOICE_COMES_LATER,
    NO_INVOICE_ZERO_TOTAL,
    NO_SUCH_FILE,
    DocumentUnavailable,
    document_download,
    documents_expected,
)
from commerce.models import Document, Order
from commerce.services import order_upsert
from digitalriver.models import ApiCall
from tests.conftest import dr_order, fixture
from tests.documents_support import (
    CREDIT_MEMO_EVENT,
    CREDIT_MEMO_FILE,
    DR,
    INVOICE_EVENT,
    INVOICE_FILE,
    PDF,
    SECRET,
    as_in_order,
    content_url,
)

pytestmark = pytest.mark.django_db


def invoice_event() -> dict:
    return fixture("event_order_invoice_created.json")["data"]["object"]


def credit_memo_event() -> dict:
    return fixture("event_order_credit_memo_created.json")["data"]["object"]


def test_the_events_carry_the_file_not_the_order():
    """DR's page: "data.object contains an id and a fileId, both of which are identical"."""
    for event in (INVOICE_EVENT, CREDIT_MEMO_EVENT):
        obj = event["data"]["object"]
        assert obj["id"] == obj["fileId"] and "items" not in obj
        assert set(obj) == {"id", "fileId", "orderId", "customerId", "purpose", "invoiceURL"}


def test_an_invoice_event_is_recorded_once_however_often_it_comes(accepted_order, deliver):
    for _ in range(3):
        deliver("order.invoice.created", invoice_event())
    document = Document.objects.get()
    assert document.order == accepted_order
    assert document.purpose == Document.Purpose.INVOICE
    assert (document.dr_file_id, document.dr_id) == (INVOICE_FILE, INVOICE_FILE)
    assert document.url == content_url(INVOICE_FILE).replace(DR, "https://api.digitalriver.com")


def test_a_credit_memo_event_is_a_credit_memo(accepted_order, deliver):
    deliver("order.credit_memo.created", credit_memo_event())
    assert Document.objects.get().purpose == Document.Purpose.CREDIT_MEMO


def test_the_same_event_delivered_twice_records_one_document(accepted_order, post_event):
    for _ in range(2):
        assert post_event(INVOICE_EVENT).status_code in (200, 202)
    assert Document.objects.count() == 1


def test_the_order_backfills_its_documents_once(catalog):
    data = dr_order(invoicePDFs=[as_in_order(INVOICE_FILE)], creditMemoPDFs=[as_in_order(CREDIT_MEMO_FILE)])
    order_upsert(data=data)
    order_upsert(data=data)
    documents = {document.dr_file_id: document for document in Document.objects.all()}
    assert set(documents) == {INVOICE_FILE, CREDIT_MEMO_FILE}
    assert documents[INVOICE_FILE].purpose == Document.Purpose.INVOICE
    assert documents[CREDIT_MEMO_FILE].purpose == Document.Purpose.CREDIT_MEMO
    assert documents[INVOICE_FILE].dr_id == ""  # the order does not say the invoice's own id


def test_an_event_after_the_backfill_adds_the_invoice_id(catalog, deliver, no_dr):
    order_upsert(data=dr_order(invoicePDFs=[as_in_order(INVOICE_FILE)]))
    deliver("order.invoice.created", invoice_event())
    document = Document.objects.get()
    assert document.dr_id == INVOICE_FILE
    assert document.dr_created_at is not None


def test_an_event_before_the_backfill_keeps_one_document(accepted_order, deliver):
    deliver("order.invoice.created", invoice_event())
    deliver("order.complete", dr_order(state="complete", invoicePDFs=[as_in_order(INVOICE_FILE)]))
    document = Document.objects.get()
    assert document.dr_id == INVOICE_FILE and document.order == accepted_order


def test_an_event_about_an_order_we_never_saw_fetches_it_first(catalog, deliver, dr_api):
    dr_api.add(responses.GET, f"{DR}/orders/231388420336", json=dr_order(invoicePDFs=[as_in_order(INVOICE_FILE)]))
    deliver("order.invoice.created", invoice_event())
    document = Document.objects.get()
    assert document.order.dr_order_id == "231388420336" and document.dr_id == INVOICE_FILE


# --- what to say when there is none ------------------------------------------------------------------


def test_no_document_yet_says_when_they_come(accepted_order):
    assert documents_expected(order=accepted_order) == f"{INVOICE_COMES_LATER} {CREDIT_MEMOS_COME_LATER}"


def test_a_zero_total_has_no_invoice(accepted_order):
    Order.objects.filter(pk=accepted_order.pk).update(total_amount=Decimal("0"))
    assert documents_expected(order=Order.objects.get()).startswith(NO_INVOICE_ZERO_TOTAL)


def test_with_an_invoice_only_the_credit_memos_are_explained(accepted_order, deliver):
    deliver("order.invoice.created", invoice_event())
    assert documents_expected(order=accepted_order) == CREDIT_MEMOS_COME_LATER
    deliver("order.credit_memo.created", credit_memo_event())
    assert documents_expected(order=accepted_order) == ""


# --- download ---------------------------------------------------------------------------------------


@pytest.fixture
def invoice(accepted_order, deliver):
    deliver("order.invoice.created", invoice_event())
    return Document.objects.get()


def test_download_streams_the_pdf_with_our_key_and_writes_nothing(invoice, dr_api, no_disk_writes):
    dr_api.add(
        responses.GET,
        content_url(INVOICE_FILE),
        body=PDF,
        content_type="application/pdf",
        headers={"x-dr-requestid": "req-pdf-1"},
    )
    content = document_download(document=invoice)
    chunks = list(content.chunks)
    assert b"".join(chunks) == PDF
    assert len(chunks) > 1, "read in chunks as it arrives, not whole"
    assert (content.content_type, content.filename) == ("application/pdf", "invoice-231388420336.pdf")
    [call] = dr_api.calls
    assert call.request.headers["Authorization"] == f"Bearer {SECRET}"
    assert no_disk_writes == []
    logged = ApiCall.objects.get(path=f"/files/{INVOICE_FILE}/content")
    assert (logged.method, logged.status, logged.request_id) == ("GET", 200, "req-pdf-1")
    assert logged.subject == "order:231388420336"
    assert "%PDF" not in logged.response_body and "not kept" in logged.response_body
    assert SECRET not in json.dumps([logged.path, logged.query, logged.request_body, logged.response_body])


def test_a_dr_404_is_said_plainly(invoice, dr_api):
    dr_api.add(responses.GET, content_url(INVOICE_FILE), json=fixture("error_not_found.json"), status=404)
    with pytest.raises(DocumentUnavailable) as refused:
        document_download(document=invoice)
    assert str(refused.value) == NO_SUCH_FILE
    assert str(refused.value).startswith("DR has no such file (yet)")
    assert ApiCall.objects.get(path=f"/files/{INVOICE_FILE}/content").status == 404


def test_credit_memos_are_named_apart(accepted_order, deliver):
    deliver("order.credit_memo.created", credit_memo_event())
    second = {**credit_memo_event(), "id": "memo-2", "fileId": "memo-2"}
    deliver("order.credit_memo.created", second)
    from commerce.documents import document_filename

    names = [document_filename(document) for document in Document.objects.order_by("recorded_at", "id")]
    assert names == ["credit-memo-231388420336-1.pdf", "credit-memo-231388420336-2.pdf"]

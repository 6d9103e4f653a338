"""DR's invoices and credit memos of an order: recorded from DR's events and from the order itself,
downloaded through us with our key, and shared with the customer as a link DR makes.

Source: DR's page order-management/accessing-invoices-and-credit-memos.md. An invoice or credit
memo is a DR *file*; ``order.invoice.created`` / ``order.credit_memo.created`` carry
``{id, fileId, orderId, customerId, purpose, invoiceURL}`` ("an id and a fileId, both of which are
identical"), and the order lists the same files in ``invoicePDFs[]`` / ``creditMemoPDFs[]``
(``{id, url, liveMode}``). The URLs need our secret key: never show them to a customer; a customer
gets a file link instead (order-management/files-and-file-links-1/file-links/creating-a-file-link.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from django.utils import timezone

from core.types import JSONObject
from digitalriver import errors
from digitalriver.client import calls_about, get_client

from .models import Document, Order, order_subject
from .services import dr_time, order_locked

Purpose = Document.Purpose

#: Which list of DR's order holds which kind of document.
ORDER_LISTS = (("invoicePDFs", Purpose.INVOICE), ("creditMemoPDFs", Purpose.CREDIT_MEMO))

#: How long a customer's link works. DR asks only for "a future timestamp" (creating-a-file-link.md
#: names no longest time); a week gives the customer time to open the email without leaving an
#: invoice reachable for ever.
LINK_VALID_FOR = timedelta(days=7)

NO_SUCH_FILE = "DR has no such file (yet): it may still be making it. Try again in a few minutes."
NO_INVOICE_ZERO_TOTAL = "No invoice: the order's total is zero."
INVOICE_COMES_LATER = "DR makes the invoice after the first capture; it can take up to an hour."
CREDIT_MEMOS_COME_LATER = "Credit memos come after each completed refund."


class DocumentUnavailable(Exception):
    """DR cannot give the document now; the message says why in plain words."""


@dataclass(frozen=True)
class DocumentContent:
    """A document's PDF as DR streams it, with what a browser needs to save it."""

    chunks: Iterator[bytes]
    content_type: str
    filename: str
    length: int | None = None


@dataclass(frozen=True)
class FileLink:
    """A link a customer can open without our key, until ``expires_at``."""

    dr_id: str
    url: str
    expires_at: datetime


# --- recording -------------------------------------------------------------------------------------


def document_record(*, data: JSONObject, at: datetime | None = None) -> Document:
    """Record the file of an ``order.invoice.created`` / ``order.credit_memo.created`` event.

    Idempotent and order-independent: the file id is unique, so a duplicate event changes nothing,
    and an event after the order's backfill only adds what the order did not say (the invoice id).
    An order we never heard of is fetched first (which backfills its documents as well).
    """
    file_id = str(data.get("fileId") or data.get("id") or "")
    dr_order_id = str(data.get("orderId") or "")
    if not file_id or not dr_order_id:
        raise ValueError("the document names no file id or no order id")
    purpose = data.get("purpose")
    if purpose not in Purpose.values:
        purpose = Purpose.INVOICE if "invoice" in str(purpose or "") else Purpose.CREDIT_MEMO
    with order_locked(dr_order_id=dr_order_id) as order:
        document, created = Document.objects.get_or_create(
            dr_file_id=file_id,
            defaults={
                "order": order,
                "purpose": purpose,
                "dr_id": str(data.get("id") or ""),
                "url": str(data.get("invoiceURL") or ""),
                "dr_created_at": at,
            },
        )
        if not created:
            changed = _fill_blanks(
                document,
                dr_id=str(data.get("id") or ""),
                url=str(data.get("invoiceURL") or ""),
                dr_created_at=at,
            )
            if changed:
                document.save(update_fields=changed)
    return document


def documents_backfill(*, order: Order, data: JSONObject) -> list[Document]:
    """The files DR's order lists (``invoicePDFs[]``, ``creditMemoPDFs[]``; ``id`` is the file id),
    recorded once each. Runs inside ``order_upsert``, which holds the order's lock."""
    recorded = []
    for key, purpose in ORDER_LISTS:
        for pdf in data.get(key) or []:
            if not isinstance(pdf, dict) or not pdf.get("id"):
                continue
            document, created = Document.objects.get_or_create(
                dr_file_id=str(pdf["id"]),
                defaults={"order": order, "purpose": purpose, "url": str(pdf.get("url") or "")},
            )
            if not created and _fill_blanks(document, url=str(pdf.get("url") or "")):
                document.save(update_fields=["url"])
            recorded.append(document)
    return recorded


def _fill_blanks(document: Document, **values: object) -> list[str]:
    """Set the fields DR left out before; never overwrite what we already know."""
    changed = []
    for field, value in values.items():
        if value and not getattr(document, field):
            setattr(document, field, value)
            changed.append(field)
    return changed


# --- what to say when there is none ----------------------------------------------------------------


def documents_expected(*, order: Order) -> str:
    """Why a document the agent looks for is not there yet, in words for the customer ("" when the
    order has both an invoice and a credit memo). Reads ``order.documents.all()`` (prefetchable)."""
    purposes = {document.purpose for document in order.documents.all()}
    said = []
    if Purpose.INVOICE not in purposes:
        said.append(NO_INVOICE_ZERO_TOTAL if order.total_amount == Decimal("0") else INVOICE_COMES_LATER)
    if Purpose.CREDIT_MEMO not in purposes:
        said.append(CREDIT_MEMOS_COME_LATER)
    return " ".join(said)


def document_filename(document: Document) -> str:
    """``invoice-<order>.pdf``; credit memos numbered when the order has several."""
    order_id = document.order.dr_order_id
    if document.purpose == Purpose.INVOICE:
        return f"invoice-{order_id}.pdf"
    memos = list(
        Document.objects.filter(order_id=document.order_id, purpose=Purpose.CREDIT_MEMO)
        .order_by("recorded_at", "id")
        .values_list("pk", flat=True)
    )
    number = memos.index(document.pk) + 1 if document.pk in memos and len(memos) > 1 else 0
    return f"credit-memo-{order_id}-{number}.pdf" if number else f"credit-memo-{order_id}.pdf"


# --- DR calls --------------------------------------------------------------------------------------


def document_download(*, document: Document) -> DocumentContent:
    """The PDF from ``GET /files/{id}/content`` with our key, streamed as it arrives
    (order-management/files-and-file-links-1/files.md#downloading-a-file-for-internal-use): nothing
    is kept in memory or written to disk, and the call log keeps the call without the content.

    Raises DocumentUnavailable when DR answers 404 (the file is not made yet, or never was), and the
    client's errors otherwise.
    """
    path = f"/files/{quote(document.dr_file_id, safe='')}/content"
    try:
        with calls_about(order_subject(document.order.dr_order_id)):
            download = get_client().download(path)
    except errors.NotFound as exc:
        raise DocumentUnavailable(NO_SUCH_FILE) from exc
    content_type = download.content_type.split(";")[0].strip() or "application/pdf"
    if content_type in ("application/octet-stream", "binary/octet-stream"):
        content_type = "application/pdf"  # DR's files of invoices and credit memos are PDFs
    return DocumentContent(
        chunks=download.chunks(),
        content_type=content_type,
        filename=document_filename(document),
        length=download.length,
    )


def document_link_create(*, document: Document, now: datetime | None = None) -> FileLink:
    """``POST /file-links {fileId, expiresTime}``: a URL the customer can open without our key
    (creating-a-file-link.md). Each call makes a new link; DR keeps every link on the file."""
    expires = (now or timezone.now()) + LINK_VALID_FOR
    body = {"fileId": document.dr_file_id, "expiresTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
    with calls_about(order_subject(document.order.dr_order_id)):
        link = get_client().post("/file-links", body)
    if not isinstance(link, dict) or not link.get("url"):
        raise errors.DigitalRiverError("DR made no link: its answer had no url", method="POST", path="/file-links")
    return FileLink(
        dr_id=str(link.get("id") or ""),
        url=str(link["url"]),
        expires_at=dr_time(link.get("expiresTime")) or expires,
    )

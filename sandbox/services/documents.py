"""Invoices and credit memos as small real PDFs, their events, and file links.

DR issues an invoice once an order's first capture completes (none for a zero total) and a credit
memo after each completed refund (order-management/accessing-invoices-and-credit-memos.md); both
are files (`GET /files/{id}`, `GET /files/{id}/content` with the secret key) that a file link
(`POST /file-links`) shares without the key until it expires.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..errors import Errors, not_found
from ..ids import uuid_id
from ..models import File, FileLink, Order, Refund
from ..timefmt import parse_dr_time
from ..types import JSONObject
from .events import event_emit


def pdf_bytes(title: str, lines: list[str]) -> bytes:
    """A one-page PDF 1.4 with a title and lines of Helvetica text: enough for any PDF reader."""

    def text(value: str) -> str:
        return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    commands = ["BT", "/F1 18 Tf", "50 780 Td", f"({text(title)}) Tj", "/F1 11 Tf"]
    for line in lines:
        commands += ["0 -18 Td", f"({text(line)}) Tj"]
    commands.append("ET")
    stream = "\n".join(commands).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def document_event_object(file: File) -> JSONObject:
    """`data.object` of order.invoice.created / order.credit_memo.created: not an order.

    `customerId`: sandbox orders are guest checkouts, so it is null (DR's example shows a customer's id).
    """
    return {
        "id": file.dr_id,
        "fileId": file.dr_id,
        "orderId": file.order.dr_id,
        "customerId": None,
        "purpose": file.purpose,
        "invoiceURL": file.url,
    }


def _order_lines(order: Order) -> list[str]:
    lines = [f"Order {order.dr_id}    {order.created_time:%Y-%m-%d}", f"Bill to: {order.email}", ""]
    for item in order.items.all():
        lines.append(f"{item.quantity} x {item.sku_id}: {item.amount} + tax {item.tax_amount} {order.currency}")
    lines += [
        f"Shipping: {order.total_shipping} {order.currency}",
        f"Tax: {order.total_tax} {order.currency}",
        f"Total: {order.total_amount} {order.currency}",
        f"Captured: {order.captured_amount} {order.currency}",
    ]
    return lines


def invoice_issue(*, order: Order) -> File | None:
    """The invoice of an order's first completed capture; none for a zero total, never twice."""
    if order.total_amount <= 0 or order.files.filter(purpose=File.Purpose.INVOICE).exists():
        return None
    file_id = uuid_id()
    file = File.objects.create(
        dr_id=file_id,
        order=order,
        purpose=File.Purpose.INVOICE,
        file_name=f"invoice-{order.dr_id}.pdf",
        title="customer invoice",
        content=pdf_bytes("Invoice (Digital River sandbox)", _order_lines(order)),
    )
    event_emit(type="order.invoice.created", obj=document_event_object(file), order_id=order.dr_id)
    return file


def credit_memo_issue(*, refund: Refund) -> File:
    order = refund.order
    lines = [
        f"Order {order.dr_id}",
        f"Refund {refund.dr_id}{f' ({refund.type})' if refund.type else ''}",
        f"Refunded: {refund.refunded_amount} {refund.currency}",
        f"Reason: {refund.reason or '-'}",
    ]
    lines += [f"{part.quantity or ''} x {part.order_item.sku_id}: {part.amount}" for part in refund.items.all()]
    file = File.objects.create(
        dr_id=uuid_id(),
        order=order,
        refund=refund,
        purpose=File.Purpose.CREDIT_MEMO,
        file_name=f"credit-memo-{order.dr_id}-{refund.pk}.pdf",
        title="customer credit memo",
        content=pdf_bytes("Credit memo (Digital River sandbox)", lines),
    )
    event_emit(type="order.credit_memo.created", obj=document_event_object(file), order_id=order.dr_id)
    return file


def file_link_create(*, body: JSONObject, public_url: Callable[[str], str]) -> FileLink:
    """`POST /file-links {fileId, expiresTime}` (+ `metadata`, which creating-a-file-link.md allows)."""
    errors = Errors()
    for key in body:
        if key not in ("fileId", "expiresTime", "metadata"):
            errors.add("unknown_parameter", key, f"'{key}' is not a known parameter.")
    file_id: Any = body.get("fileId")
    if not file_id:
        errors.missing("fileId")
    elif not isinstance(file_id, str):
        errors.invalid("fileId", "'fileId' must be a string.")
    expires: datetime | None = None
    if not body.get("expiresTime"):
        errors.missing("expiresTime")
    else:
        expires = parse_dr_time(body["expiresTime"])
        if expires is None:
            errors.invalid("expiresTime", "'expiresTime' must be an ISO 8601 date-time.")
        elif expires <= timezone.now():
            errors.invalid("expiresTime", "'expiresTime' must be in the future.")
    if "metadata" in body and not isinstance(body["metadata"], dict):
        errors.invalid("metadata", "'metadata' must be an object.")
    errors.raise_if_any()
    assert expires is not None
    with transaction.atomic():
        file = File.objects.filter(dr_id=file_id).first()
        if file is None:
            raise not_found("fileId", file_id)
        link_id = uuid_id()
        return FileLink.objects.create(
            dr_id=link_id, file=file, expires_time=expires, url=public_url(link_id), metadata=body.get("metadata") or {}
        )

"""Customer service's invoices and credit memos: the order page's list (with what to say when there is
none, and the order's chargebacks), the PDF streamed from DR through us, and "send the customer a
link" with a confirmation. The API's download (`GET /api/orders/<id>/documents/<file_id>/`) answers
through ``api_download``. Every DR call is commerce's or fulfillment's; this module only shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from commerce.chargebacks import chargeback_sentence
from commerce.documents import LINK_VALID_FOR, DocumentUnavailable, document_download, documents_expected
from commerce.models import Chargeback, Document, Order
from digitalriver.errors import DigitalRiverError
from fulfillment.document_links import LinkRefused, document_link_expiry_words, document_link_send, document_name

if TYPE_CHECKING:
    from .admin import OrderAdmin

#: Sending a customer a link writes (an email, a link at DR): the right to act on orders, as for refresh.
SEND_LINK_PERMISSIONS = ("commerce.view_order", "commerce.change_order")


@dataclass(frozen=True)
class DocumentRow:
    document: Document
    label: str  # "Invoice"
    made_at: datetime
    download_url: str
    send_link_url: str


@dataclass(frozen=True)
class DocumentsSection:
    """What the order page shows under "Invoices and credit memos"."""

    rows: list[DocumentRow]
    note: str  # why one is missing, in words for the customer ("" when none is)
    chargebacks: list[tuple[Chargeback, str]]
    can_send_link: bool


def can_send_link(user: AbstractUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.has_perms(SEND_LINK_PERMISSIONS))


def documents_section(*, order: Order, user: AbstractUser | AnonymousUser) -> DocumentsSection:
    documents = list(order.documents.all())
    rows = [
        DocumentRow(
            document=document,
            label=document.get_purpose_display(),
            made_at=document.dr_created_at or document.recorded_at,
            download_url=reverse("admin:commerce_order_document", args=[order.pk, document.dr_file_id]),
            send_link_url=reverse("admin:commerce_order_document_link", args=[order.pk, document.dr_file_id]),
        )
        for document in documents
    ]
    return DocumentsSection(
        rows=rows,
        note=documents_expected(order=order),
        chargebacks=[(chargeback, chargeback_sentence(chargeback)) for chargeback in order.chargebacks.all()],
        can_send_link=can_send_link(user),
    )


def document_of(order: Order, file_id: str) -> Document | None:
    """The order's document with this DR file id; another order's file is not this order's."""
    return Document.objects.select_related("order").filter(order=order, dr_file_id=file_id).first()


def pdf_response(document: Document) -> StreamingHttpResponse:
    """The PDF passed on chunk by chunk as DR sends it. Raises DocumentUnavailable, DigitalRiverError."""
    content = document_download(document=document)
    response = StreamingHttpResponse(content.chunks, content_type=content.content_type)
    response["Content-Disposition"] = f'attachment; filename="{content.filename}"'
    response["Cache-Control"] = "no-store"
    if content.length is not None:
        response["Content-Length"] = str(content.length)
    return response


# --- the admin: the order page's links ---------------------------------------------------------------


def admin_urls(model_admin: OrderAdmin) -> list[URLPattern]:
    """The download and the link's confirmation, under the order's admin URL."""

    def view(method: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        def bound(request: HttpRequest, object_id: str, file_id: str) -> HttpResponseBase:
            return method(model_admin, request, object_id, file_id)

        return model_admin.admin_site.admin_view(bound)

    return [
        path("<path:object_id>/documents/<str:file_id>/", view(download_view), name="commerce_order_document"),
        path(
            "<path:object_id>/documents/<str:file_id>/send-link/",
            view(send_link_view),
            name="commerce_order_document_link",
        ),
    ]


def _order_and_document(model_admin: OrderAdmin, request: HttpRequest, object_id: str, file_id: str) -> Document:
    order = model_admin.get_object(request, unquote(object_id))
    if order is None:
        raise Http404("No such order")
    if not model_admin.has_view_permission(request, order):
        raise PermissionDenied
    document = document_of(order, file_id)
    if document is None:
        raise Http404(f"Order {order.dr_order_id} has no document {file_id}")
    return document


def _back_to_documents(order: Order) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse('admin:commerce_order_change', args=[order.pk])}#documents")


def _dr_failure(exc: Exception) -> str:
    if isinstance(exc, DocumentUnavailable):
        return str(exc)
    if isinstance(exc, ImproperlyConfigured):
        return f"This server cannot call Digital River: {exc}. Tell an operator."
    if isinstance(exc, DigitalRiverError) and exc.transient:
        return f"Digital River could not be reached. Try again in a few minutes. ({exc})"
    return f"Digital River refused: {exc}"


def download_view(model_admin: OrderAdmin, request: HttpRequest, object_id: str, file_id: str) -> HttpResponseBase:
    """Whoever may view the order may download its documents."""
    document = _order_and_document(model_admin, request, object_id, file_id)
    try:
        return pdf_response(document)
    except (DocumentUnavailable, DigitalRiverError, ImproperlyConfigured) as exc:
        text = f"Could not download the {document_name(document)}: {_dr_failure(exc)}"
        model_admin.message_user(request, text, messages.ERROR)
        return _back_to_documents(document.order)


def send_link_view(model_admin: OrderAdmin, request: HttpRequest, object_id: str, file_id: str) -> HttpResponse:
    """GET (or a POST without "confirm") asks "Email <email> a link to the invoice, valid until …?";
    the confirmed POST asks DR for the link and emails it."""
    if not can_send_link(request.user):
        raise PermissionDenied
    document = _order_and_document(model_admin, request, object_id, file_id)
    order = document.order
    name = document_name(document)
    if request.method == "POST" and "confirm" in request.POST:
        try:
            link = document_link_send(document=document, by=request.user)
        except (LinkRefused, DigitalRiverError, ImproperlyConfigured) as exc:
            reason = str(exc) if isinstance(exc, LinkRefused) else _dr_failure(exc)
            model_admin.message_user(request, f"No link was sent: {reason}", messages.ERROR)
        else:
            until = document_link_expiry_words(link.expires_at)
            text = f"Emailed {order.email} a link to the {name}, valid until {until}."
            model_admin.message_user(request, text, messages.SUCCESS)
        return _back_to_documents(order)
    until = document_link_expiry_words(timezone.now() + LINK_VALID_FOR)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Send the customer a link: order {order.dr_order_id}",
        "opts": model_admin.opts,
        "original": order,
        "document": document,
        "question": f"Email {order.email or '(no email address)'} a link to the {name}, valid until {until}?",
        "has_email": bool(order.email),
    }
    return TemplateResponse(request, "admin/commerce/order/document_link.html", context)


# --- the API ------------------------------------------------------------------------------------------


def api_download(*, order: Order, file_id: str) -> StreamingHttpResponse | Response:
    document = document_of(order, file_id)
    if document is None:
        raise NotFound(f"Order {order.dr_order_id} has no document with file id {file_id}.")
    try:
        return pdf_response(document)
    except DocumentUnavailable as exc:
        raise NotFound(str(exc)) from exc
    except DigitalRiverError as exc:
        return Response({"detail": f"Digital River could not be asked: {exc}"}, status=status.HTTP_502_BAD_GATEWAY)


DOWNLOAD_SCHEMA: dict[str, Any] = {
    "summary": "Download an invoice or credit memo of the order (PDF)",
    "description": "Streams the PDF from Digital River (`GET /files/{id}/content`, with our key) as it "
    "arrives: nothing is kept here. `file_id` is the document's DR file id, listed under `documents` "
    "in the order. The answer is an attachment named `invoice-<order>.pdf` or `credit-memo-<order>.pdf`, "
    "never cached. DR makes the invoice after the first capture (it can take up to an hour) and a "
    "credit memo after each completed refund; none for an order whose total is zero.",
    "request": None,
    "responses": {
        (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
        404: OpenApiResponse(
            description="No such order, the order has no document with this file id, or DR has no such "
            "file (yet); `detail` says which."
        ),
        502: OpenApiResponse(description="Digital River could not be asked; `detail` says why."),
    },
    "examples": [
        OpenApiExample(
            "DR has not made it yet",
            value={"detail": "DR has no such file (yet): it may still be making it. Try again in a few minutes."},
            response_only=True,
            status_codes=["404"],
        )
    ],
}

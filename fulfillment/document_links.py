"""Sending the customer a link to their invoice or credit memo: DR makes the link
(``POST /file-links``, commerce.documents), and the customer gets one email per link."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format

from commerce.documents import FileLink, document_link_create
from commerce.models import Document
from commerce.services import lock_order
from core.types import Actor

from .models import Notification
from .notifications import is_mailable, notification_write

logger = logging.getLogger(__name__)


class LinkRefused(Exception):
    """A link cannot be sent (no email address to send it to); the message says why."""


def document_name(document: Document) -> str:
    """ "invoice" or "credit memo", as the email and the page say it."""
    return document.get_purpose_display().lower()


def document_link_expiry_words(expires_at: datetime) -> str:
    """ "4 Dec 2026, 10:00 UTC" """
    return date_format(timezone.localtime(expires_at), "j M Y, H:i T")


def document_link_send(*, document: Document, by: Actor = None) -> FileLink:
    """Ask DR for a customer link to the document and email it to the order's customer, once per
    link (the email's key is DR's link id: a second "send" makes a new link and a new email)."""
    order = document.order
    if not is_mailable(order.email):
        raise LinkRefused(f"Order {order.dr_order_id} has no email address to send the link to.")
    link = document_link_create(document=document)
    with transaction.atomic():
        order = lock_order(order=order)
        notification_write(
            order=order,
            kind=Notification.Kind.DOCUMENT_LINK,
            key=f"document_link:{link.dr_id or link.url}",
            to=order.email,
            context={
                "document_name": document_name(document),
                "link": link,
                "expires": document_link_expiry_words(link.expires_at),
            },
        )
    logger.info("%s link of %s sent to the customer by %s", document_name(document), order.dr_order_id, by or "system")
    return link

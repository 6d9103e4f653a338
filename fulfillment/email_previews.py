"""A rendered sample of every email the app sends, for the admin's read-only preview page.

The samples are made-up orders (nothing is read from or written to the database), rendered with the
same templates and the same render function as the real emails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.utils import timezone

from .document_links import document_link_expiry_words
from .models import Notification
from .notifications import email_render

Kind = Notification.Kind


@dataclass(frozen=True)
class EmailPreview:
    kind: str
    label: str
    variant: str  # which case of the kind this sample shows ("" when it has one)
    to: str
    subject: str
    body: str


def _samples(now: datetime) -> list[tuple[str, str, dict[str, Any]]]:
    keyboard = SimpleNamespace(name="Mechanical keyboard", dr_sku_id="KEYB-1")
    mouse = SimpleNamespace(name="Wireless mouse", dr_sku_id="MOUSE-1")
    refund = SimpleNamespace(
        refunded_amount="59.99", amount="59.99", currency="USD", token_expires_at=now + timedelta(days=30)
    )
    warehouse = {
        "name": "DR returns centre",
        "address": {
            "line1": "10380 Bren Road West",
            "postalCode": "55343",
            "city": "Minnetonka",
            "state": "MN",
            "country": "US",
        },
    }
    shipment = SimpleNamespace(
        tracking_company="UPS",
        tracking_number="1Z999AA10123456784",
        tracking_url="https://www.ups.com/track?tracknum=1Z999AA10123456784",
    )
    return [
        (Kind.SHIPPED, "", {"shipment": shipment, "items": [SimpleNamespace(quantity=2, order_line=keyboard)]}),
        (
            Kind.BACKORDERED,
            "",
            {"line": SimpleNamespace(backordered=1, order_line=mouse, available_time=now + timedelta(days=10))},
        ),
        (Kind.CANCELLED, "customer service cancelled them", {"released": [(mouse, 1)], "asked": True}),
        (Kind.CANCELLED, "the warehouse or DR cancelled them", {"released": [(mouse, 1)], "asked": False}),
        (Kind.CAPTURE_FAILED, "", {"reason": "The authorization expired."}),
        (
            Kind.RETURN_APPROVED,
            "",
            {"lines": [SimpleNamespace(quantity=1, order_line=keyboard)], "location": warehouse},
        ),
        (Kind.REFUND_COMPLETED, "", {"refund": refund, "what_for": "1 x Mechanical keyboard"}),
        (Kind.REFUND_NEEDS_BANK_DETAILS, "", {"refund": refund, "what_for": "1 x Mechanical keyboard"}),
        (
            Kind.DOCUMENT_LINK,
            "",
            {
                "document_name": "invoice",
                "link": SimpleNamespace(url="https://files.digitalriver.com/links/sample"),
                "expires": document_link_expiry_words(now + timedelta(days=7)),
            },
        ),
    ]


def email_previews() -> list[EmailPreview]:
    """Every kind of email, each case of it once, rendered for a sample order."""
    now = timezone.now()
    order = SimpleNamespace(
        dr_order_id="240012345336",
        upstream_id="WEB-1001",
        customer_name="Ada Lovelace",
        email="ada@example.com",
        payment_method="Visa ending 1111",
    )
    previews = []
    for kind, variant, context in _samples(now):
        subject, body = email_render(kind=kind, context={"order": order, **context})
        to = settings.OPERATIONS_EMAIL if kind == Kind.CAPTURE_FAILED else order.email
        previews.append(EmailPreview(kind, Kind(kind).label, variant, to, subject, body))
    return previews

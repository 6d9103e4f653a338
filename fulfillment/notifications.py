"""Emails to the customer (shipped, backordered, cancelled) and to operations (capture failed).

The rules of the set, so that one action never sends two emails that contradict each other:

- one email per customer-visible change: a backorder email goes out only when more units are
  backordered than the customer last heard of, or the expected date moved. Units leaving the
  backorder (cancelled, shipped) are told by the cancellation or shipment email alone, so cancelling
  1 of 2 backordered units sends "cancelled" and not also "delayed" about the unit left;
- the wording fits who asked: units customer service cancelled (a cancellation request covers
  them) are confirmed as arranged; units the warehouse or DR cancelled are apologised for.

Each email is written as a row in the same transaction as the change it reports, keyed by what it
is about, so an event delivered three times sends one email. It is sent after commit; a row whose
sending failed is tried again by the periodic sweep.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.template.loader import render_to_string
from django.utils import timezone

from commerce.models import Order, OrderLine
from core.db import insert_unless_exists
from core.emails import stored_emails_send
from core.jobs import enqueue_gathered_on_commit

from .models import FulfillmentOrderLine, Notification, Return, Shipment, ShipmentItem

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
Kind = Notification.Kind


def notify_shipped(*, shipment: Shipment, items: list[ShipmentItem] | None = None) -> Notification | None:
    """``items``: the shipment's items with their order lines, when the caller has just written them."""
    if items is None:
        items = list(shipment.items.select_related("order_line"))
    return notification_write(
        order=shipment.order,
        kind=Kind.SHIPPED,
        key=f"shipped:{shipment.pk}",
        to=shipment.order.email,
        context={"shipment": shipment, "items": items},
    )


def notify_backordered(*, line: FulfillmentOrderLine) -> Notification | None:
    available = line.available_time.isoformat() if line.available_time else "unknown"
    if not backorder_is_news(line=line, available=available):
        return None
    order = line.order_line.order
    return notification_write(
        order=order,
        kind=Kind.BACKORDERED,
        key=f"backordered:{line.dr_item_id}:{line.backordered}:{available}",
        to=order.email,
        context={"line": line},
    )


def backorder_is_news(*, line: FulfillmentOrderLine, available: str) -> bool:
    """Whether the customer hears of this line's backorder: more units than the last email said,
    or a new expected date. Fewer units is no news here (the cancellation or shipment says so)."""
    last = (
        Notification.objects.filter(kind=Kind.BACKORDERED, key__startswith=f"backordered:{line.dr_item_id}:")
        .order_by("-created_at", "-id")
        .values_list("key", flat=True)
        .first()
    )
    if last is None:
        return line.backordered > 0
    _, _, told_units, told_available = last.split(":", 3)
    if line.backordered > int(told_units):
        return True
    return line.backordered > 0 and available != told_available


def cancelled_by_customer_service(*, order: Order, released: list[tuple[OrderLine, int]]) -> bool:
    """Whether every released line is one customer service asked to cancel (the customer asked, or
    agreed); otherwise the warehouse or DR cancelled the units and the email apologises."""
    from .models import CancellationLine, CancellationRequest

    line_ids = {line.pk for line, _ in released}
    asked = set(
        CancellationLine.objects.filter(request__order=order, order_line_id__in=line_ids)
        .exclude(request__state__in=[CancellationRequest.State.REJECTED, CancellationRequest.State.FAILED])
        .values_list("order_line_id", flat=True)
    )
    return bool(line_ids) and asked == line_ids


def notify_cancelled(*, order: Order, released: list[tuple[OrderLine, int]], source: str) -> Notification | None:
    """``released`` is a list of (OrderLine, units); ``source`` names the release (one email each)."""
    context = {"released": released, "asked": cancelled_by_customer_service(order=order, released=released)}
    return notification_write(
        order=order, kind=Kind.CANCELLED, key=f"cancelled:{source}", to=order.email, context=context
    )


def notify_capture_failed(*, order: Order, source: str, reason: str = "") -> Notification | None:
    return notification_write(
        order=order,
        kind=Kind.CAPTURE_FAILED,
        key=f"capture_failed:{source}",
        to=settings.OPERATIONS_EMAIL,
        context={"reason": reason},
    )


def notify_return_approved(*, ret: Return) -> Notification | None:
    """The warehouse approved a return: where to send the goods, and what (once per return)."""
    return notification_write(
        order=ret.order,
        kind=Kind.RETURN_APPROVED,
        key=f"return_approved:{ret.pk}",
        to=ret.order.email,
        context={"ret": ret, "lines": list(ret.lines.select_related("order_line")), "location": ret.location or {}},
    )


def notification_write(*, order: Order, kind: str, key: str, to: str, context: dict[str, Any]) -> Notification | None:
    """Write the email unless one with this key is stored (an earlier or concurrent delivery of the
    same event wrote it): one INSERT … ON CONFLICT DO NOTHING, no look-up first and no savepoint."""
    if not is_mailable(to):
        return None
    subject, body = email_render(kind=kind, context={"order": order, **context})
    notification = Notification(order=order, kind=kind, key=key, to=to, subject=subject, body=body)
    if not insert_unless_exists(notification, unique_field="key"):
        return None
    from .tasks import send_notifications

    enqueue_gathered_on_commit(send_notifications, notification.pk)
    return notification


def email_render(*, kind: str, context: dict[str, Any]) -> tuple[str, str]:
    """The subject (the template's first line) and the body of one email."""
    # Plain text: rendered without HTML escaping (the "text" template engine in settings).
    text = render_to_string(f"emails/{kind}.txt", context, using="text")
    subject, _, body = text.partition("\n")
    return subject.strip(), body.strip() + "\n"


def is_mailable(address: str) -> bool:
    """Whether an email can be sent there at all (DR's copy of an address is stored as it came)."""
    try:
        validate_email(address)
    except ValidationError:
        if address:
            logger.warning("not emailing %r: not an email address", address[:100])
        return False
    return True


def notifications_send(*, notification_ids: list[int]) -> list[Notification]:
    """Send the emails not sent yet, together (``core.emails.stored_emails_send``)."""
    return stored_emails_send(model=Notification, pks=notification_ids, max_attempts=MAX_ATTEMPTS)


def notifications_sweep() -> int:
    """Send emails whose first try failed or whose job was lost."""
    due = Notification.objects.filter(
        sent_at=None, attempts__lt=MAX_ATTEMPTS, created_at__lt=timezone.now() - timedelta(minutes=1)
    ).values_list("pk", flat=True)
    return len(notifications_send(notification_ids=list(due[:200])))

"""DR's refund events: each mirrors the refund (commerce.refund_mirror), counts the lines' ledger
again, and tells the customer once per refund when the money is back or when DR needs their bank
details (order-management/returns-and-refunds-1/refunds/issuing-refunds.md and
handling-refunds-for-asynchronous-payment-methods.md in DigitalRiver/GitBook).

DR documents no ``refund.expired`` event (events-1/all-event-types.md lists none): an expired refund
is learnt from the refund object's ``state`` (``GET /refunds``), which ``refund_mirror`` follows.
The ``order.charge.refund.*`` events carry the charge (``.complete``) or the order (``.failed``,
events-1/event-types.md): both are mirrored through ``services.charge_reported``.
"""

from __future__ import annotations

from django.db import transaction

from commerce.models import Refund
from commerce.refunds import refund_mirror, units_words
from commerce.services import lock_order
from core.types import JSONObject
from digitalriver.models import WebhookEvent
from digitalriver.registry import event_handler

from . import services
from .ledger import ledger_recount
from .models import Notification
from .notifications import notification_write

REFUND_EVENTS = ("refund.pending", "refund.pending_information", "refund.complete", "refund.failed")
CHARGE_REFUND_EVENTS = ("order.charge.refund.pending", "order.charge.refund.complete", "order.charge.refund.failed")


@event_handler(*REFUND_EVENTS)
def refund_changed(event: WebhookEvent) -> None:
    refund_follow(data=event.data_object, event_type=event.type)


def refund_follow(*, data: JSONObject, event_type: str | None = None) -> Refund:
    """DR's refund (an event's, or as reconcile reads it): mirrored, the ledger counted again, and
    the customer told once when it completes or needs their bank details."""
    refund = refund_mirror(data=data, event_type=event_type)
    with transaction.atomic():
        order = lock_order(order=refund.order)
        ledger_recount(order=order)
        refund = Refund.objects.get(pk=refund.pk)
        if refund.state == Refund.State.SUCCEEDED:
            notify_refund_completed(refund=refund)
        elif refund.state == Refund.State.PENDING_INFORMATION:
            notify_refund_needs_bank_details(refund=refund)
    return refund


@event_handler(*CHARGE_REFUND_EVENTS)
def charge_refund_changed(event: WebhookEvent) -> None:
    services.charge_reported(event_type=event.type, data=event.data_object)


def notify_refund_completed(*, refund: Refund) -> Notification | None:
    """Once per refund: how much came back, in which currency, and what for."""
    return notification_write(
        order=refund.order,
        kind=Notification.Kind.REFUND_COMPLETED,
        key=f"refund_completed:{refund.pk}",
        to=refund.order.email,
        context={"refund": refund, "what_for": units_words(refund)},
    )


def notify_refund_needs_bank_details(*, refund: Refund) -> Notification | None:
    """Once per refund and expiry date: DR emails the customer a form; we say why and until when."""
    expires = refund.token_expires_at.isoformat() if refund.token_expires_at else "unknown"
    return notification_write(
        order=refund.order,
        kind=Notification.Kind.REFUND_NEEDS_BANK_DETAILS,
        key=f"refund_needs_bank_details:{refund.pk}:{expires}",
        to=refund.order.email,
        context={"refund": refund, "what_for": units_words(refund)},
    )

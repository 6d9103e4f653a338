"""One function per DR event type about an order's documents and chargebacks; each hands the
event's object to a service."""

from digitalriver.models import WebhookEvent
from digitalriver.registry import event_handler

from .chargebacks import chargeback_record
from .documents import document_record


@event_handler("order.invoice.created", "order.credit_memo.created")
def document_created(event: WebhookEvent) -> None:
    """data.object is the file, not the order (order-management/accessing-invoices-and-credit-memos.md)."""
    document_record(data=event.data_object, at=event.dr_created_at)


@event_handler("order.chargeback")
def order_chargeback(event: WebhookEvent) -> None:
    data = event.payload.get("data") if isinstance(event.payload, dict) else None
    previous = data.get("previousAttributes") if isinstance(data, dict) else None
    chargeback_record(
        event_id=event.dr_event_id,
        data=event.data_object,
        previous=previous if isinstance(previous, dict) else None,
        at=event.dr_created_at,
    )

"""One function per DR event type; each hands the event's object to a service."""

from digitalriver.models import WebhookEvent
from digitalriver.registry import event_handler

from . import cancellations, return_mirror, services, shipments

ORDER_EVENTS = (
    "order.pending_payment",
    "order.review_opened",
    "order.accepted",
    "order.blocked",
    "order.cancelled",
    "order.fulfilled",
    "order.complete",
    "order.refunded",
    "order.dispute",
    "order.dispute.resolved",
)


@event_handler(*ORDER_EVENTS)
def order_changed(event: WebhookEvent) -> None:
    services.order_mirror(data=event.data_object)


@event_handler("fulfillment_order.pending", "fulfillment_order.backordered", "fulfillment_order.cancelled")
def fulfillment_order_changed(event: WebhookEvent) -> None:
    services.fulfillment_order_event(event_type=event.type, data=event.data_object, as_of=event.dr_created_at)


@event_handler("fulfillment_order.shipped")
def fulfillment_order_shipped(event: WebhookEvent) -> None:
    shipments.warehouse_shipment_mirror(data=event.data_object)


@event_handler("fulfillment.created")
def fulfillment_created(event: WebhookEvent) -> None:
    shipments.dr_fulfillment_mirror(data=event.data_object)


@event_handler(
    "order.charge.capture.complete",
    "order.charge.capture.failed",
    "order.charge.cancel.complete",
    "order.charge.failed",
    "order.charge.reauth.failed",
)
def charge_changed(event: WebhookEvent) -> None:
    services.charge_reported(event_type=event.type, data=event.data_object)


@event_handler(
    "fulfillment_cancellation.created", "fulfillment_cancellation.accepted", "fulfillment_cancellation.rejected"
)
def fulfillment_cancellation_changed(event: WebhookEvent) -> None:
    cancellations.cancellation_answered(data=event.data_object)


@event_handler(
    "fulfillment_return.created",
    "fulfillment_return.pending",
    "fulfillment_return.accepted",
    "fulfillment_return.rejected",
    "return.created",
    "return.updated",
    "return.accepted",
)
def return_changed(event: WebhookEvent) -> None:
    ret = return_mirror.return_mirror(data=event.data_object, event_type=event.type)
    return_mirror.return_refund_automatically(ret=ret)

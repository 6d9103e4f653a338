from typing import Any

from celery import shared_task

from .notifications import notification_send, notifications_sweep
from .reconcile import orders_reconcile


@shared_task(name="fulfillment.tasks.reconcile_orders")
def reconcile_orders() -> dict[str, Any]:
    """The daily reconcile; its summary ends up in the task's log line."""
    return orders_reconcile().as_dict()


@shared_task(name="fulfillment.tasks.send_notification")
def send_notification(notification_id: int) -> None:
    notification_send(notification_id=notification_id)


@shared_task(name="fulfillment.tasks.sweep_notifications")
def sweep_notifications() -> int:
    return notifications_sweep()

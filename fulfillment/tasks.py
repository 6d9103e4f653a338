import logging
from typing import Any

from celery import shared_task

from .notifications import notification_send, notifications_sweep
from .reconcile import orders_reconcile

logger = logging.getLogger(__name__)


@shared_task(name="fulfillment.tasks.reconcile_orders")
def reconcile_orders() -> dict[str, Any]:
    """The daily reconcile; its summary ends up in the task's log line."""
    return orders_reconcile().as_dict()


@shared_task(name="fulfillment.tasks.send_notifications")
def send_notifications(notification_ids: list[int]) -> None:
    """The emails written meanwhile, gathered into one message (core.jobs.Gatherer), sent one after
    the other; one that fails unexpectedly does not keep the others waiting for the sweep."""
    for notification_id in notification_ids:
        try:
            notification_send(notification_id=notification_id)
        except Exception:
            logger.exception("sending notification %s failed; the sweep will try it again", notification_id)


@shared_task(name="fulfillment.tasks.sweep_notifications")
def sweep_notifications() -> int:
    return notifications_sweep()

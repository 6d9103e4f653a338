import logging
from typing import Any

from celery import shared_task

from .notifications import notifications_send, notifications_sweep
from .reconcile import orders_reconcile

logger = logging.getLogger(__name__)


@shared_task(name="fulfillment.tasks.reconcile_orders")
def reconcile_orders() -> dict[str, Any]:
    """The daily reconcile; its summary ends up in the task's log line."""
    return orders_reconcile().as_dict()


@shared_task(name="fulfillment.tasks.send_notifications")
def send_notifications(notification_ids: list[int]) -> None:
    """The emails written meanwhile, gathered into one message (core.jobs.Gatherer), sent together;
    what is left unsent (the mail server refused one, or this job failed) is the sweep's."""
    try:
        notifications_send(notification_ids=notification_ids)
    except Exception:
        logger.exception("sending notifications %s failed; the sweep will try them again", notification_ids)


@shared_task(name="fulfillment.tasks.sweep_notifications")
def sweep_notifications() -> int:
    return notifications_sweep()

from celery import shared_task

from .reconcile import orders_reconcile


@shared_task(name="fulfillment.tasks.reconcile_orders")
def reconcile_orders() -> dict:
    """The daily reconcile; its summary ends up in the task's log line."""
    return orders_reconcile().as_dict()

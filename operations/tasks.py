from celery import shared_task
from django.conf import settings

from . import retention
from .alerts import operations_alert_run


@shared_task(name="operations.tasks.send_operations_alert")
def send_operations_alert() -> int | None:
    """The periodic digest; returns the number of the alert sent, if any, for the task's log line."""
    alert = operations_alert_run()
    return alert.number if alert is not None else None


@shared_task(name="operations.tasks.prune_records")
def prune_records() -> dict[str, int]:
    """The daily clean-up of old events, calls and attempts; returns the rows deleted per table."""
    return retention.prune_records(days=settings.RETENTION_DAYS).counts

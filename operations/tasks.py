from celery import shared_task

from .alerts import operations_alert_run


@shared_task(name="operations.tasks.send_operations_alert")
def send_operations_alert() -> int | None:
    """The periodic digest; returns the number of the alert sent, if any, for the task's log line."""
    alert = operations_alert_run()
    return alert.number if alert is not None else None

from celery import shared_task

from . import services


@shared_task(name="catalog.tasks.check_drift_all")
def check_drift_all() -> dict[str, int]:
    """The daily scan: every pushed SKU against DR; the counts end up in the task's log line."""
    return services.skus_drift_fetch().counts()

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def _refuse_to_start_half_configured(**kwargs: Any) -> None:
    from core.checks import require_secret_key

    require_secret_key()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender: Any = None, **kwargs: Any) -> None:
    """A task keeps its database connection the way a web request does: closed when older than
    CONN_MAX_AGE or broken, else reused. Celery's own Django fixup would close it around every task
    (celery/fixups/django.py) unless CELERY_DB_REUSE_MAX is set, which settings.py does: a new
    PostgreSQL session for each task was most of a worker's time in a burst (issue 14)."""
    from django.db import close_old_connections

    # A task applied in this process (tests, the embedded mode) runs inside its caller's work,
    # maybe its transaction: its connection is the caller's to keep.
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        close_old_connections()

"""Run the Celery beat schedule inside this process, for the embedded mode that has no beat."""

import logging
import threading
from datetime import timedelta

from celery import current_app as app
from celery.schedules import schedule as every
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


def start_periodic_jobs(*, tick_seconds: float = 1.0) -> threading.Event:
    """Start a daemon thread that runs each beat entry when due; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(stop, tick_seconds), name="periodic-jobs", daemon=True)
    thread.start()
    return stop


def _loop(stop: threading.Event, tick_seconds: float) -> None:
    entries = {}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        when = entry["schedule"]
        if isinstance(when, int | float | timedelta):
            when = every(run_every=when)
        entries[name] = (entry["task"], when)
    last_run = dict.fromkeys(entries, timezone.now())
    while not stop.wait(tick_seconds):
        for name, (task_name, when) in entries.items():
            due, _ = when.is_due(last_run[name])
            if not due:
                continue
            last_run[name] = timezone.now()
            try:
                close_old_connections()
                app.tasks[task_name].apply(throw=True)
            except Exception:
                logger.exception("periodic job %s failed", name)
            finally:
                close_old_connections()

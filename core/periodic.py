"""Run the Celery beat schedule inside this process, for the embedded mode that has no beat."""

import logging
import threading
from datetime import timedelta

from celery import Task
from celery import current_app as app
from celery.exceptions import NotRegistered
from celery.schedules import BaseSchedule
from celery.schedules import schedule as every
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)


def start_periodic_jobs(*, tick_seconds: float = 1.0) -> threading.Event:
    """Start a daemon thread that runs each beat entry when due; set the returned event to stop it.

    Every scheduled task is looked up before the loop starts: Celery registers an app's tasks only
    when its ``tasks`` module is imported, which in a fresh process with no traffic yet nothing
    else does (tests/core/test_periodic.py starts a cold process to prove each job runs).
    """
    entries = scheduled_jobs()
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(stop, tick_seconds, entries), name="periodic-jobs", daemon=True)
    thread.start()
    return stop


def scheduled_jobs() -> dict[str, tuple[Task, BaseSchedule]]:
    """The beat schedule as (task, schedule) by entry name; a task that does not exist stops the start."""
    app.loader.import_default_modules()  # runs the apps' task autodiscovery now, not on first use
    entries = {}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        when = entry["schedule"]
        if isinstance(when, int | float | timedelta):
            when = every(run_every=when)
        try:
            task = app.tasks[entry["task"]]
        except NotRegistered as exc:
            raise ImproperlyConfigured(f"the periodic job {name} names no task: {entry['task']}") from exc
        entries[name] = (task, when)
    return entries


def _loop(stop: threading.Event, tick_seconds: float, entries: dict[str, tuple[Task, BaseSchedule]]) -> None:
    last_run = dict.fromkeys(entries, timezone.now())
    while not stop.wait(tick_seconds):
        for name, (task, when) in entries.items():
            due, _ = when.is_due(last_run[name])
            if not due:
                continue
            last_run[name] = timezone.now()
            try:
                close_old_connections()
                task.apply(throw=True)
            except Exception:
                logger.exception("periodic job %s failed", name)
            finally:
                close_old_connections()

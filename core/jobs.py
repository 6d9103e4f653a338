"""Run a Celery task once the current transaction commits, wherever tasks run in this deployment.

With a broker the task goes to the Celery workers. Without one (the embedded default) it runs in
this process on a single background thread, so that a request never waits for it; tests run it
inline. A job that is lost with its process is not lost for good: the periodic sweeps find the
rows it was meant to handle.
"""

import logging
import queue
import threading
import time
from typing import Any

from celery import Task
from django.conf import settings
from django.db import close_old_connections, transaction

logger = logging.getLogger(__name__)

_pending: queue.Queue[tuple[Task, tuple[Any, ...]]] = queue.Queue()
_worker_lock = threading.Lock()
_worker: threading.Thread | None = None


def enqueue_on_commit(task: Task, *args: Any, countdown: float = 0) -> None:
    """Run ``task(*args)`` after commit, no sooner than ``countdown`` seconds (inline: at once)."""
    transaction.on_commit(lambda: run_task(task, *args, countdown=countdown))


def run_task(task: Task, *args: Any, countdown: float = 0) -> None:
    mode = settings.TASKS_MODE
    if mode == "celery":
        # None is Celery's own default (no delay); celery-types only admits a float.
        task.apply_async(args=args, countdown=countdown or None)  # type: ignore[arg-type]
    elif mode == "inline":
        task.apply(args=args, throw=True)
    elif countdown:
        timer = threading.Timer(countdown, _put, args=(task, args))
        timer.daemon = True
        timer.start()
    else:
        _put(task, args)


def _put(task: Task, args: tuple[Any, ...]) -> None:
    _ensure_worker()
    _pending.put((task, args))


def _ensure_worker() -> None:
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="in-process-jobs", daemon=True)
            _worker.start()


def _work() -> None:
    while True:
        task, args = _pending.get()
        try:
            close_old_connections()
            task.apply(args=args, throw=True)
        except Exception:
            logger.exception("in-process job %s%r failed", task.name, args)
        finally:
            close_old_connections()
            _pending.task_done()


def jobs_wait(timeout: float) -> bool:
    """Wait until this process's background thread has run every job handed to it (a command that
    exits sooner would lose them to its daemon thread until a sweep found their rows); False if some
    were still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while _pending.unfinished_tasks:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True

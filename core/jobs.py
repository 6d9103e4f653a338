"""Run a Celery task once the current transaction commits, wherever tasks run in this deployment.

With a broker the task goes to the Celery workers. Without one (the embedded default) it runs in
this process on a single background thread, so that a request never waits for it; tests run it
inline. A job that is lost with its process is not lost for good: the periodic sweeps find the
rows it was meant to handle.
"""

import atexit
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


def enqueue_gathered_on_commit(task: Task, item: Any) -> None:
    """Run ``task(items)`` after commit, ``item`` among the items handed over for ``task`` meanwhile.

    With a broker the caller does not publish: this process's Gatherer thread sends what has gathered
    as one message. Without one the task runs as any other job (run_task), for ``[item]``.
    """
    transaction.on_commit(
        lambda: gatherer.add(task, item) if settings.TASKS_MODE == "celery" else run_task(task, [item])
    )


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


class Gatherer:
    """Sends the items handed over for a task as one message ``task(items)``, from one thread per
    process, no more often than every GATHER_SECONDS per process while items keep coming.

    Made for the webhook endpoint, where the broker publish was the largest part of a delivery
    (README, webhook ingest): a Celery publish costs about 0.45 ms of CPU whatever it carries, so in a
    burst the events gathered over 50 ms share one; when deliveries are rare the first goes at once,
    and no answer waits for the broker, slow or away.

    What it gives up: items handed over and not yet sent are lost if the process dies at that moment
    (kill -9, out of memory), as a job was when the process died between the commit and its publish;
    at a normal exit they are sent (atexit). A message the broker refuses is tried again a few times,
    then given up. Either way the rows were committed first, so the sweeps find them (the inbox
    sweep: events nobody claimed for UNCLAIMED_GRACE); sending an item twice is harmless, the task
    only acts on a row it can claim.
    """

    GATHER_SECONDS = 0.05
    #: Items of one message at most: the worker runs them one after the other.
    MAX_ITEMS = 50
    #: Pauses between tries of a message the broker refused (Celery's own retry policy comes first).
    RETRY_PAUSES = (0.1, 0.5, 2.0)

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._pending: dict[Task, list[Any]] = {}
        self._sending = False
        self._last_send = 0.0
        self._thread: threading.Thread | None = None

    def add(self, task: Task, item: Any) -> None:
        with self._changed:
            if self._thread is None or not self._thread.is_alive():
                if self._thread is None:
                    atexit.register(self.flush, 5.0)
                self._thread = threading.Thread(target=self._run, name="job-gatherer", daemon=True)
                self._thread.start()
            self._pending.setdefault(task, []).append(item)
            self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every item handed over has been sent or given up; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending or self._sending:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._changed.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending:
                    self._changed.wait()
            time.sleep(max(0.0, self._last_send + self.GATHER_SECONDS - time.monotonic()))
            with self._changed:
                gathered, self._pending, self._sending = self._pending, {}, True
            self._last_send = time.monotonic()
            try:
                for task, items in gathered.items():
                    for start in range(0, len(items), self.MAX_ITEMS):
                        self._send(task, items[start : start + self.MAX_ITEMS])
            finally:
                with self._changed:
                    self._sending = False
                    self._changed.notify_all()

    def _send(self, task: Task, items: list[Any]) -> None:
        for pause in (*self.RETRY_PAUSES, None):
            try:
                task.apply_async(args=(items,))
                return
            except Exception:
                if pause is None:
                    logger.exception(
                        "could not send %s for %d items; the sweeps will find their rows", task.name, len(items)
                    )
                    return
                logger.warning("sending %s failed; trying again in %s s", task.name, pause, exc_info=True)
                time.sleep(pause)


gatherer = Gatherer()

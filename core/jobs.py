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


def enqueue_on_commit(task: Task, *args: Any, countdown: float = 0, batched: bool = False) -> None:
    """Run ``task(*args)`` after commit, no sooner than ``countdown`` seconds (inline: at once).

    ``batched``: with a broker, the caller does not wait for it: the task is handed to this
    process's publisher thread, which sends what has gathered in one round trip (BatchPublisher).
    """
    transaction.on_commit(lambda: run_task(task, *args, countdown=countdown, batched=batched))


def run_task(task: Task, *args: Any, countdown: float = 0, batched: bool = False) -> None:
    mode = settings.TASKS_MODE
    if mode == "celery" and batched and not countdown:
        publisher.submit(task, args)
    elif mode == "celery":
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


class BatchPublisher:
    """Publishes Celery tasks for this process from one thread, a batch per broker round trip.

    Made for the webhook endpoint, where publishing in the request cost more than the rest of it
    (README, webhook ingest): with its own Redis client and round trip, each apply_async took about
    0.45 ms of CPU; in one pipeline with the others that gathered meanwhile, about half that, off the
    request thread, and a broker that is slow or away no longer holds the answer back. The thread
    wakes on the first job and takes whatever has gathered, so a lone job waits for nothing.

    What it gives up: a job handed over here and not yet published is lost if the process dies at
    that moment (kill -9, out of memory), as a job was when the process died between the commit and
    its publish; at a normal exit the jobs still queued are published (atexit). A batch the broker
    refuses is tried again a few times, then given up. Either way the rows were committed first, so
    the sweeps find them (the inbox sweep: events nobody claimed for UNCLAIMED_GRACE); publishing a
    job twice is harmless, a job only acts on a row it can claim.
    """

    MAX_BATCH = 500
    #: Pauses between tries of a batch the broker refused (Celery's own retry policy is per message).
    RETRY_PAUSES = (0.1, 0.5, 2.0)

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Task, tuple[Any, ...]]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, task: Task, args: tuple[Any, ...]) -> None:
        self._ensure_thread()
        self._jobs.put((task, args))

    def flush(self, timeout: float) -> bool:
        """Wait until every job handed over has been published or given up; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks:
            if time.monotonic() >= deadline or self._thread is None or not self._thread.is_alive():
                return False
            time.sleep(0.01)
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                if self._thread is None:
                    atexit.register(self.flush, 5.0)
                self._thread = threading.Thread(target=self._run, name="broker-publisher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < self.MAX_BATCH:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._publish(batch)
            finally:
                for _ in batch:
                    self._jobs.task_done()

    def _publish(self, batch: list[tuple[Task, tuple[Any, ...]]]) -> None:
        for pause in (*self.RETRY_PAUSES, None):
            try:
                with batch[0][0].app.producer_or_acquire() as producer, producer.batch(max_size=len(batch)):
                    for task, args in batch:
                        task.apply_async(args=args, producer=producer)
                return
            except Exception:
                if pause is None:
                    logger.exception("could not publish %d jobs; the sweeps will find their rows", len(batch))
                    return
                logger.warning("publishing %d jobs failed; trying again in %s s", len(batch), pause, exc_info=True)
                time.sleep(pause)


publisher = BatchPublisher()

"""Jobs handed to the in-process thread (the embedded mode) can be waited for: a command such as
`manage.py demo` that exits right after queueing a call would otherwise lose it to its daemon thread
until a periodic sweep found the row."""

import threading

import pytest
from celery import shared_task

from core.jobs import jobs_wait, run_task

release = threading.Event()
ran: list[int] = []


@shared_task
def _slow_job(value: int) -> None:
    release.wait(5)
    ran.append(value)


def test_jobs_wait_returns_once_every_job_handed_to_the_thread_has_run(settings):
    settings.TASKS_MODE = "thread"
    release.clear()
    ran.clear()
    run_task(_slow_job, 7)

    assert jobs_wait(0.2) is False, "the job is still running"
    release.set()
    assert jobs_wait(5) is True
    assert ran == [7]


def test_each_kind_of_work_has_a_queue_and_a_plain_worker_consumes_them_all():
    """A burst of events must not hold instructions behind it (issue 14): each kind is routed to its
    own queue, and a worker started without -Q listens on every one of them."""
    from config.celery import app

    routed = {
        name: app.amqp.router.route({}, name)["queue"].name
        for name in (
            "digitalriver.tasks.process_webhook_event",
            "digitalriver.tasks.process_webhook_events",
            "digitalriver.tasks.send_instruction",
            "fulfillment.tasks.send_notifications",
            "digitalriver.tasks.sweep_outbox",
            "operations.tasks.prune_records",
        )
    }
    assert routed == {
        "digitalriver.tasks.process_webhook_event": "events",
        "digitalriver.tasks.process_webhook_events": "events",
        "digitalriver.tasks.send_instruction": "instructions",
        "fulfillment.tasks.send_notifications": "emails",
        "digitalriver.tasks.sweep_outbox": "sweeps",
        "operations.tasks.prune_records": "periodic",
    }
    consumed = {queue.name for queue in app.amqp.queues.consume_from.values()}
    assert set(routed.values()) <= consumed


@pytest.mark.postgres  # SQLite's test database lives in memory: Django never closes it
@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_from_one_task_to_the_next():
    """Celery's Django fixup closed the connection around every task: a new PostgreSQL session per
    task was most of a worker's time in a burst (issue 14, bench/pipeline_throughput.py)."""
    from types import SimpleNamespace

    from celery.fixups.django import DjangoWorkerFixup
    from django.db import connection

    from config.celery import app

    fixup = DjangoWorkerFixup(app)
    connection.ensure_connection()
    session = connection.connection
    task = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    for _ in range(10):
        fixup.on_task_prerun(task)
        fixup.on_task_postrun(task)
    assert connection.connection is session

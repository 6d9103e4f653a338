"""The publisher thread the webhook endpoint hands its jobs to: it publishes them without the caller
waiting, several in one go, tries a refused batch again and never dies of a broker that is away
(the committed rows are the sweeps' then). Kombu's in-memory broker stands in for Redis."""

import logging
import threading
from contextlib import contextmanager

import pytest
from celery import Celery

from core.jobs import BatchPublisher, run_task

APP = Celery("publisher-test", broker="memory://", set_as_current=False)
APP.conf.task_default_queue = "publisher-test"


@APP.task(name="tests.publisher.probe")
def probe(value):
    return value


@pytest.fixture
def app():
    published(APP)  # an empty queue: nothing left by an earlier test
    return APP


def published(app) -> list:
    """The args of every message waiting in the in-memory queue, oldest first."""
    args = []
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue("publisher-test")
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                break
            args.append(tuple(message.payload[0]))  # protocol 2: (args, kwargs, embed)
            message.ack()
        queue.close()
    return args


def test_jobs_are_published_in_order_from_the_thread(app):
    publisher = BatchPublisher()
    for value in range(50):
        publisher.submit(probe, (value,))
    assert publisher.flush(10)
    assert published(app) == [(value,) for value in range(50)]


def test_the_caller_does_not_wait_for_the_broker(app, monkeypatch):
    """A broker that hangs holds the publisher thread, not the request that handed the job over."""
    publisher = BatchPublisher()
    release = threading.Event()
    original = app.producer_or_acquire

    @contextmanager
    def slow_producer(*args, **kwargs):
        release.wait(10)
        with original(*args, **kwargs) as producer:
            yield producer

    monkeypatch.setattr(app, "producer_or_acquire", slow_producer)
    publisher.submit(probe, (1,))  # returns although the broker does not answer
    assert publisher.flush(0.2) is False
    release.set()
    assert publisher.flush(10)
    assert published(app) == [(1,)]


def test_a_refused_batch_is_tried_again(app, monkeypatch, caplog):
    publisher = BatchPublisher()
    publisher.RETRY_PAUSES = (0.01, 0.01)
    original = app.producer_or_acquire
    refusals = iter([ConnectionError("broker away")])

    def flaky(*args, **kwargs):
        refusal = next(refusals, None)
        if refusal is not None:
            raise refusal
        return original(*args, **kwargs)

    monkeypatch.setattr(app, "producer_or_acquire", flaky)
    with caplog.at_level(logging.WARNING, logger="core.jobs"):
        publisher.submit(probe, (7,))
        assert publisher.flush(10)
    assert published(app) == [(7,)]
    assert "trying again" in caplog.text


def test_a_batch_the_broker_keeps_refusing_is_logged_and_the_thread_goes_on(app, monkeypatch, caplog):
    publisher = BatchPublisher()
    publisher.RETRY_PAUSES = (0.01,)
    original = app.producer_or_acquire
    monkeypatch.setattr(app, "producer_or_acquire", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("away")))
    with caplog.at_level(logging.ERROR, logger="core.jobs"):
        publisher.submit(probe, (1,))
        assert publisher.flush(10)
    assert "could not publish 1 jobs; the sweeps will find their rows" in caplog.text

    monkeypatch.setattr(app, "producer_or_acquire", original)
    publisher.submit(probe, (2,))
    assert publisher.flush(10)
    assert published(app) == [(2,)]


def test_only_celery_mode_hands_jobs_to_the_thread(app, settings, monkeypatch):
    """Inline (the tests) and the embedded thread run the task as before; a delayed job is not batched."""
    handed = []
    monkeypatch.setattr("core.jobs.publisher.submit", lambda task, args: handed.append(args))
    settings.TASKS_MODE = "inline"
    run_task(probe, 1, batched=True)
    settings.TASKS_MODE = "celery"
    run_task(probe, 2, batched=True)
    run_task(probe, 3)
    run_task(probe, 4, batched=True, countdown=5)
    assert handed == [(2,)]
    assert published(app) == [(3,), (4,)]  # published at once: the worker holds it until its eta

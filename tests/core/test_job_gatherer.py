"""The thread the webhook endpoint hands its jobs to (core.jobs.Gatherer): the caller does not wait
for the broker; items that keep coming share one message; a refused message is tried again, and a
broker that stays away costs a log line, not the thread (the committed rows are the sweeps' then).
Kombu's in-memory broker stands in for Redis."""

import logging
import threading

import pytest
from celery import Celery

from core.jobs import Gatherer, enqueue_gathered_on_commit

APP = Celery("gatherer-test", broker="memory://", set_as_current=False)
APP.conf.task_default_queue = "gatherer-test"


@APP.task(name="tests.gatherer.probe")
def probe(items):
    return items


def sent() -> list:
    """The items of every message waiting in the in-memory queue, oldest first."""
    messages = []
    with APP.connection_for_read() as connection:
        queue = connection.SimpleQueue("gatherer-test")
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                break
            messages.append(message.payload[0][0])  # protocol 2: (args, kwargs, embed); args = (items,)
            message.ack()
        queue.close()
    return messages


@pytest.fixture(autouse=True)
def _empty_queue():
    sent()


def test_a_lone_item_is_sent_at_once_as_a_list():
    gatherer = Gatherer()
    gatherer.add(probe, 1)
    assert gatherer.flush(5)
    assert sent() == [[1]]


def test_items_that_keep_coming_share_a_message(monkeypatch):
    gatherer = Gatherer()
    gatherer.GATHER_SECONDS = 0.3
    gatherer.add(probe, 0)
    assert gatherer.flush(5)  # sent at once: nothing was sent just before
    for item in range(1, 6):
        gatherer.add(probe, item)  # within 0.3 s of that send: they wait for each other
    assert gatherer.flush(5)
    assert sent() == [[0], [1, 2, 3, 4, 5]]


def test_a_message_holds_at_most_max_items():
    gatherer = Gatherer()
    gatherer.MAX_ITEMS = 2
    gatherer.GATHER_SECONDS = 0.3
    gatherer.add(probe, 0)
    assert gatherer.flush(5)
    for item in range(1, 6):
        gatherer.add(probe, item)
    assert gatherer.flush(5)
    assert sent() == [[0], [1, 2], [3, 4], [5]]


def test_the_caller_does_not_wait_for_the_broker(monkeypatch):
    """A broker that hangs holds the gatherer's thread, not the request that handed the item over."""
    gatherer = Gatherer()
    release = threading.Event()
    original = probe.apply_async

    def slow(*args, **kwargs):
        release.wait(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(probe, "apply_async", slow)
    gatherer.add(probe, 1)  # returns although the broker does not answer
    assert gatherer.flush(0.2) is False
    release.set()
    assert gatherer.flush(10)
    assert sent() == [[1]]


def test_a_refused_message_is_tried_again(monkeypatch, caplog):
    gatherer = Gatherer()
    gatherer.RETRY_PAUSES = (0.01, 0.01)
    original = probe.apply_async
    refusals = iter([ConnectionError("broker away")])

    def flaky(*args, **kwargs):
        refusal = next(refusals, None)
        if refusal is not None:
            raise refusal
        return original(*args, **kwargs)

    monkeypatch.setattr(probe, "apply_async", flaky)
    with caplog.at_level(logging.WARNING, logger="core.jobs"):
        gatherer.add(probe, 7)
        assert gatherer.flush(10)
    assert sent() == [[7]]
    assert "trying again" in caplog.text


def test_a_message_the_broker_keeps_refusing_is_logged_and_the_thread_goes_on(monkeypatch, caplog):
    gatherer = Gatherer()
    gatherer.RETRY_PAUSES = (0.01,)
    original = probe.apply_async

    def away(*args, **kwargs):
        raise ConnectionError("away")

    monkeypatch.setattr(probe, "apply_async", away)
    with caplog.at_level(logging.ERROR, logger="core.jobs"):
        gatherer.add(probe, 1)
        assert gatherer.flush(10)
    assert "could not send tests.gatherer.probe for 1 items; the sweeps will find their rows" in caplog.text

    monkeypatch.setattr(probe, "apply_async", original)
    gatherer.add(probe, 2)
    assert gatherer.flush(10)
    assert sent() == [[2]]


@pytest.mark.django_db
def test_without_a_broker_the_task_runs_for_the_one_item(settings, monkeypatch, django_capture_on_commit_callbacks):
    """Inline (the tests) and the embedded thread run it as any other job, with ``[item]``."""
    handed = []
    monkeypatch.setattr("core.jobs.gatherer.add", lambda task, item: handed.append(item))
    ran = []
    monkeypatch.setattr(probe, "apply", lambda args, throw: ran.append(args))
    settings.TASKS_MODE = "inline"
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_gathered_on_commit(probe, 1)
    settings.TASKS_MODE = "celery"
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_gathered_on_commit(probe, 2)
    assert ran == [([1],)]
    assert handed == [2]

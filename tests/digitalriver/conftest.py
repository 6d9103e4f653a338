import threading
import time

import pytest

from digitalriver import registry


class RecordingHandler:
    """An event handler that records each call; set ``error`` to make it fail, ``delay`` to make it slow."""

    def __init__(self):
        self.calls: list[str] = []
        self.error: Exception | None = None
        self.delay = 0.0
        self._lock = threading.Lock()

    def __call__(self, event):
        with self._lock:
            self.calls.append(event.dr_event_id)
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error


HANDLED_TYPE = "test.inbox.handled"


@pytest.fixture
def handler():
    """A handler registered for HANDLED_TYPE for the duration of one test."""
    recorder = RecordingHandler()
    registry.register_event_handler(HANDLED_TYPE, recorder)
    yield recorder
    registry.unregister_event_handler(HANDLED_TYPE)

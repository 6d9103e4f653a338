"""The contract with DR's spec, checked at the edges of every test (imported by tests/conftest.py).

- every request body the DR client sends (to the sandbox, or to a `responses` mock) is checked
  against the request schema of its operation in DR's spec;
- every answer of the sandbox's API, and every event the sandbox delivers, is checked against the
  spec's response schemas, so the client and the emulator cannot drift away from DR together.

A breach fails the test that caused it, naming the operation and the field. Tests of the client's
transport that send made-up bodies on purpose opt out with the ``dr_contract_off`` fixture.
"""

from __future__ import annotations

import json
import threading

import pytest

from .schemas import contract


class Breaches:
    def __init__(self):
        self._lock = threading.Lock()
        self.found: list[str] = []
        self.enabled = True

    def add(self, messages: list[str]) -> None:
        if messages and self.enabled:
            with self._lock:
                self.found.extend(messages)


@pytest.fixture
def dr_contract_off(request):
    """For tests of the client's transport that send bodies DR would refuse, on purpose."""
    breaches = request.getfixturevalue("dr_contract")
    breaches.enabled = False
    return breaches


@pytest.fixture(autouse=True)
def dr_contract(monkeypatch, request):
    from digitalriver.client import DigitalRiverClient
    from sandbox import delivery
    from sandbox.views import base

    breaches = Breaches()
    the_contract = contract()
    send_once = DigitalRiverClient._send_once

    def checked_send_once(self, method, path, params, json_body, timeout):
        breaches.add(the_contract.request_errors(method, path, json_body))
        return send_once(self, method, path, params, json_body, timeout)

    open_stream_once = DigitalRiverClient._open_stream_once

    def checked_open_stream_once(self, path, accept):
        # A file download (GET /files/{id}/content) streams instead of going through _send_once.
        breaches.add(the_contract.request_errors("GET", path, None))
        return open_stream_once(self, path, accept)

    answer = base.answer

    def checked_answer(request, handlers, kwargs):
        response = answer(request, handlers, kwargs)
        if not response.get("Content-Type", "").startswith("application/json") and response.content:
            # A file's content is its bytes (a PDF), whatever the spec's FileContent says.
            return response
        api_path = request.path[len(base.API_PREFIX) :] if request.path.startswith(base.API_PREFIX) else request.path
        body = json.loads(response.content) if response.content else None
        breaches.add(
            [f"sandbox: {m}" for m in the_contract.answer_errors(request.method, api_path, response.status_code, body)]
        )
        return response

    post = delivery._post

    def checked_post(delivery_row, session, note=""):
        breaches.add([f"sandbox event: {m}" for m in the_contract.event_errors(delivery_row.event.envelope)])
        return post(delivery_row, session, note)

    monkeypatch.setattr(DigitalRiverClient, "_send_once", checked_send_once)
    monkeypatch.setattr(DigitalRiverClient, "_open_stream_once", checked_open_stream_once)
    monkeypatch.setattr(base, "answer", checked_answer)
    monkeypatch.setattr(delivery, "_post", checked_post)
    yield breaches
    if breaches.found:
        unique = list(dict.fromkeys(breaches.found))
        pytest.fail("DR's spec was not kept:\n  " + "\n  ".join(unique[:30]), pytrace=False)

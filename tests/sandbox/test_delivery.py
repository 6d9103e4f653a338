"""Deliveries reach the project's real webhook inbox, and the background loop runs by itself."""

import time

import pytest

from digitalriver.models import WebhookEvent
from sandbox.delivery import deliver_due, start_background_delivery, stop_background_delivery
from sandbox.models import DeliveryAttempt, Event


def test_the_inbox_accepts_the_sandbox_signature(api, live_server, settings, place, skus):
    settings.SANDBOX_DEFAULT_WEBHOOK_URL = f"{live_server.url}/webhooks/digitalriver/"
    order = place((skus["distributed"], 1))
    assert deliver_due() == 1
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code in (200, 202), attempt.error
    stored = WebhookEvent.objects.get(dr_event_id=Event.objects.get().dr_id)
    assert stored.type == "order.accepted"
    assert stored.payload["data"]["object"]["id"] == order.dr_id


def test_background_loop_delivers_and_is_started_once(api, receiver, place, skus):
    # Written before the loop starts: SQLite's in-memory test database fails concurrent writers
    # at once instead of making them wait.
    place((skus["distributed"], 1))
    thread = start_background_delivery(interval=0.05)
    try:
        assert start_background_delivery() is thread
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.types() == ["order.accepted"]
    finally:
        stop_background_delivery()
    assert not thread.is_alive()


def test_sandbox_deliver_once(api, receiver, place, skus):
    from io import StringIO

    from django.core.management import call_command

    place((skus["distributed"], 1))
    out = StringIO()
    call_command("sandbox_deliver", "--once", stdout=out)
    assert out.getvalue().strip() == "1 sent"
    assert receiver.types() == ["order.accepted"]


@pytest.mark.postgres
def test_concurrent_delivery_passes_send_each_event_once(api, receiver, place, skus):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    for _ in range(12):
        place((skus["distributed"], 1))

    def one_pass(_):
        try:
            return deliver_due()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        sent = sum(pool.map(one_pass, range(3)))
    assert sent == 12
    ids = [event["id"] for event in receiver.events()]
    assert len(ids) == 12 and len(set(ids)) == 12

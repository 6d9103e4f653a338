"""A real Celery worker on a real broker processes what the web side queues (run by .ci/run)."""

import json
import time

import pytest
import responses
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.test import Client

from config.celery import app
from digitalriver import registry
from digitalriver.models import Instruction, WebhookEvent
from digitalriver.services.outbox import instruction_enqueue
from tests.conftest import make_event, signed_headers

pytestmark = [
    pytest.mark.celery,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="needs CELERY_BROKER_URL (make test-celery)"),
]


@pytest.fixture
def celery_worker(settings):
    settings.TASKS_MODE = "celery"
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def seen_orders():
    seen = []
    registry.register_event_handler("test.celery_probe", lambda event: seen.append(event.data_object["id"]))
    yield seen
    registry.unregister_event_handler("test.celery_probe")


def test_worker_processes_a_delivered_event(celery_worker, seen_orders):
    body = json.dumps(make_event("test.celery_probe", {"id": "240001"})).encode()
    response = Client().post(
        "/webhooks/digitalriver/", data=body, content_type="application/json", **signed_headers(body)
    )
    assert response.status_code == 202
    event = WebhookEvent.objects.get()
    assert wait_for(lambda: WebhookEvent.objects.get(pk=event.pk).state == WebhookEvent.State.PROCESSED)
    assert seen_orders == ["240001"]


@responses.activate
def test_worker_sends_an_instruction_after_commit(celery_worker, echo_performer):
    responses.post("https://dr.invalid/fulfillments", json={"id": "ful_1"}, status=201)
    from django.db import transaction

    with transaction.atomic():
        # A body DR's spec accepts: the contract check at the client's edge holds in the worker too.
        body = {"orderId": "240002", "items": [{"itemId": "164470560336", "quantity": 1}]}
        instruction = instruction_enqueue(kind="test.echo", subject="order:240002", payload=body)
    assert wait_for(lambda: Instruction.objects.get(pk=instruction.pk).state == Instruction.State.DONE)
    assert Instruction.objects.get(pk=instruction.pk).result == {"id": "ful_1"}
    assert len(responses.calls) == 1

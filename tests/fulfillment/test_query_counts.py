"""Round trips to the database per event and per instruction on the busiest path (issue 14).

A sale's burst is bound by these counts: each statement is a round trip and the ORM's work to build
it. The figures are fixed here so that a change that adds statements to the path shows up as a
failing test, to be justified (and the figure raised) or removed. They count what PostgreSQL and
SQLite both see, BEGIN, COMMIT and savepoints included, with DR answering through `responses`.
"""

import json

import pytest
import responses
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from digitalriver.models import Instruction, WebhookEvent
from digitalriver.services import inbox, outbox
from tests.conftest import fixture, make_event, signed_headers

pytestmark = pytest.mark.django_db(transaction=True)

DR = "https://dr.test"


@pytest.fixture
def queued_only(settings, monkeypatch):
    """Jobs are not run after commit: each step below is run, and counted, on its own."""
    from core import jobs

    monkeypatch.setattr(jobs, "run_task", lambda *args, **kwargs: None)
    settings.DR_API_BASE_URL = DR
    # A running worker has every content type cached (the transition log names one); so do we,
    # whichever test ran before.
    ContentType.objects.clear_cache()
    ContentType.objects.get_for_models(*apps.get_models())


def post(client, event: dict) -> WebhookEvent:
    body = json.dumps(event).encode()
    response = client.post(
        "/webhooks/digitalriver/", data=body, content_type="application/json", **signed_headers(body)
    )
    assert response.status_code == 202
    return WebhookEvent.objects.get(dr_event_id=event["id"])


def statements(action) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [query["sql"] for query in captured.captured_queries]


def send_waiting(kind: str) -> list[str]:
    instruction = Instruction.objects.get(kind=kind, state=Instruction.State.PENDING)
    sent = statements(lambda: outbox.instruction_send(instruction_id=instruction.pk))
    assert Instruction.objects.get(pk=instruction.pk).state == Instruction.State.DONE
    return sent


def test_an_accepted_order_and_its_shipment_cost_a_fixed_number_of_statements(client, catalog, queued_only):
    accepted = post(client, make_event("order.accepted", fixture("order.json")))
    processing = statements(lambda: inbox.webhook_event_process(event_id=accepted.pk))
    assert WebhookEvent.objects.get(pk=accepted.pk).state == WebhookEvent.State.PROCESSED
    # Claim (one UPDATE that reads the event back), the order (one look-up, one INSERT, its state
    # change) with 2 lines and a charge, the instruction, the outcome. A new order has no ledger to
    # count, no attention item to clear, no charge to look up and no line to read back.
    assert len(processing) == 13, "\n".join(processing)
    assert sum(sql.startswith("COMMIT") for sql in processing) == 1  # claim and outcome are autocommit

    with responses.RequestsMock() as dr:
        dr.post(f"{DR}/fulfillment-orders", json=fixture("fulfillment_order.json"), status=201)
        sending = send_waiting("fulfillment.create_fulfillment_order")
    # Claim (one UPDATE that reads the row back), then one transaction with the call log, the attempt
    # and the fulfillment order (the performer's hook: no savepoint around it or the call log).
    assert len(sending) == 14, "\n".join(sending)
    assert sum(sql.startswith("COMMIT") for sql in sending) == 1

    shipped_event = fixture("event_fulfillment_order_shipped.json")
    shipped_event["data"]["object"]["items"][0]["quantity"] = 2
    shipped = post(client, shipped_event)
    shipping = statements(lambda: inbox.webhook_event_process(event_id=shipped.pk))
    assert WebhookEvent.objects.get(pk=shipped.pk).state == WebhookEvent.State.PROCESSED
    assert len(shipping) == 15, "\n".join(shipping)

    with responses.RequestsMock() as dr:
        dr.post(f"{DR}/fulfillments", json=fixture("fulfillment.json"), status=201)
        capturing = send_waiting("fulfillment.post_fulfillment")
    assert len(capturing) == 14, "\n".join(capturing)
    assert sum(sql.startswith("COMMIT") for sql in capturing) == 1


def test_a_duplicate_job_for_an_event_already_processed_costs_one_statement(client, catalog, queued_only):
    accepted = post(client, make_event("order.accepted", fixture("order.json")))
    inbox.webhook_event_process(event_id=accepted.pk)
    again = statements(lambda: inbox.webhook_event_process(event_id=accepted.pk))
    assert len(again) == 1 and again[0].startswith("UPDATE"), again

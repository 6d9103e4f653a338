"""What one webhook delivery costs, fixed: the queries it makes, and the one walk over its payload that
checks it can be stored and redacts it. bench/webhook_ingest.py measures the rest (README, webhook ingest)."""

import copy
import json

import pytest

from core.redaction import REDACTED
from digitalriver.models import WebhookEvent
from digitalriver.services import inbox
from digitalriver.tasks import process_webhook_events
from tests.conftest import make_event
from tests.digitalriver.conftest import HANDLED_TYPE
from tests.digitalriver.test_inbox import SECRET, URL, cartridge_header

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.DR_WEBHOOK_SECRETS = [SECRET]
    settings.DR_WEBHOOK_TOLERANCE_SECONDS = 300


@pytest.fixture
def post(client):
    """POST a signed event; its processing job is queued on commit and not run here."""

    def send(event):
        body = json.dumps(event).encode()
        return client.post(
            URL, data=body, content_type="application/json", HTTP_DIGITALRIVER_SIGNATURE=cartridge_header(body)
        )

    return send


def test_a_new_event_is_one_query(post, django_assert_num_queries, django_capture_on_commit_callbacks):
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: no look-up first, no BEGIN or COMMIT of its own."""
    event = make_event("order.accepted")
    with django_capture_on_commit_callbacks() as jobs, django_assert_num_queries(1) as queries:
        response = post(event)
    assert response.status_code == 202
    assert response.json() == {"id": event["id"], "status": "accepted"}
    assert "ON CONFLICT" in queries.captured_queries[0]["sql"] or "OR IGNORE" in queries.captured_queries[0]["sql"]
    assert WebhookEvent.objects.get().dr_event_id == event["id"]
    assert len(jobs) == 1  # its processing, queued for after commit


def test_a_redelivery_is_two_queries_answers_duplicate_and_stores_nothing(
    post, django_assert_num_queries, django_capture_on_commit_callbacks
):
    event = make_event("order.accepted")
    assert post(event).status_code == 202
    before = WebhookEvent.objects.values().get()

    with django_capture_on_commit_callbacks() as jobs, django_assert_num_queries(2):  # the INSERT, then the row
        response = post(event)

    assert response.status_code == 200
    assert response.json() == {"id": event["id"], "status": "duplicate"}
    assert WebhookEvent.objects.values().get() == before
    assert jobs == []  # nothing queued again


def test_with_a_broker_the_answer_does_not_wait_for_the_publish(
    post, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The event's id goes to this process's gatherer thread after commit (core.jobs.Gatherer)."""
    settings.TASKS_MODE = "celery"
    handed = []
    monkeypatch.setattr("core.jobs.gatherer.add", lambda task, item: handed.append((task.name, item)))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(make_event("order.accepted"))
    assert response.status_code == 202
    assert handed == [("digitalriver.tasks.process_webhook_events", WebhookEvent.objects.get().pk)]


def test_the_receipt_is_a_saved_row():
    """The event the store hands back is the stored row: saving it again updates, never inserts."""
    receipt = inbox.webhook_event_store(
        payload=make_event("order.accepted"), body="{}", headers={}, source=WebhookEvent.Source.WEBHOOK
    )
    assert receipt.created and receipt.event.pk == WebhookEvent.objects.get().pk
    assert not receipt.event._state.adding
    receipt.event.save()
    assert WebhookEvent.objects.count() == 1


# --- the one walk -----------------------------------------------------------------------------------


def nested(levels: int) -> dict:
    """An object whose innermost list holds a scalar at ``levels`` + 1 (the payload itself is level 1)."""
    value: object = 1
    for _ in range(levels - 1):
        value = [value]
    return {"data": value}


def test_a_payload_with_nothing_to_redact_is_the_same_object():
    payload = make_event("order.accepted", obj={"id": "1", "lines": [{"n": 1.5, "t": "\u00fc", "ok": None}]})
    assert inbox._storable(payload) is payload


def test_redaction_copies_and_leaves_the_parsed_payload_alone():
    payload = {"id": "e", "list": [1, {"a": 2, "clientSecret": "s", "z": 3}], "token": {"x": 1}, "after": "x"}
    original = copy.deepcopy(payload)
    stored = inbox._storable(payload)
    redacted = {"a": 2, "clientSecret": REDACTED, "z": 3}
    assert stored == {"id": "e", "list": [1, redacted], "token": REDACTED, "after": "x"}
    assert list(stored) == list(payload)  # key order kept: the stored body is written from it
    assert payload == original


def test_a_value_already_redacted_is_not_a_change():
    """The body is rewritten only when something was redacted: otherwise it is kept byte for byte."""
    payload = {"id": "e", "clientSecret": REDACTED}
    assert inbox._storable(payload) is payload


def test_nesting_limit_counts_every_value():
    """The limit is the one the earlier walk had: a scalar at level 65 is as deep as a list there."""
    assert inbox._storable(nested(inbox.MAX_JSON_DEPTH - 1))
    with pytest.raises(inbox.InvalidEvent, match="deeper"):
        inbox._storable(nested(inbox.MAX_JSON_DEPTH))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"a": [{"b": float("nan")}]}, "NaN"),
        ({"a": {"clientSecret": float("inf")}}, "NaN"),  # checked before it is redacted, as before
        ({"a\x00": 1}, "NUL"),
        ({"a": ["x\x00"]}, "NUL"),
        ({"a": "\ud800"}, "surrogate"),
        ({"\udfff": 1}, "surrogate"),
    ],
)
def test_what_a_json_column_cannot_take_is_refused(payload, reason):
    with pytest.raises(inbox.InvalidEvent, match=reason):
        inbox._storable(payload)


# --- the gathered processing job ----------------------------------------------------------------------


def test_events_gathered_into_one_job_are_processed_in_turn_and_one_failure_stops_none(
    handler, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():  # their own jobs are not run
        first, second = (
            inbox.webhook_event_store(payload=make_event(HANDLED_TYPE), body="{}", headers={}, source="webhook").event
            for _ in range(2)
        )
    original = inbox.webhook_event_process

    def process(*, event_id):
        if event_id == first.pk:
            raise RuntimeError("database went away")
        return original(event_id=event_id)

    monkeypatch.setattr(inbox, "webhook_event_process", process)
    process_webhook_events.apply(args=([first.pk, second.pk],), throw=True)

    assert handler.calls == [second.dr_event_id]
    assert WebhookEvent.objects.get(pk=second.pk).state == WebhookEvent.State.PROCESSED
    assert WebhookEvent.objects.get(pk=first.pk).state == WebhookEvent.State.RECEIVED  # the sweep's
    assert f"processing webhook event {first.pk} failed" in caplog.text

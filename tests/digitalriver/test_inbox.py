"""The webhook inbox end to end: POST /webhooks/digitalriver/, storage, processing, replay, sweep."""

import base64
import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from digitalriver.models import WebhookEvent
from digitalriver.services import inbox
from tests.conftest import in_threads, make_event
from tests.digitalriver.conftest import HANDLED_TYPE

URL = "/webhooks/digitalriver/"
SECRET = "whsec_inbox_primary_0123456789"
OLD_SECRET = "whsec_inbox_old_9876543210"


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.DR_WEBHOOK_SECRETS = [SECRET]
    settings.DR_WEBHOOK_TOLERANCE_SECONDS = 300


def digest(secret: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).digest()


def cartridge_header(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    return f"{ts}, {base64.b64encode(digest(secret, ts, body)).decode()}"


def encode(event) -> bytes:
    return event if isinstance(event, bytes) else json.dumps(event).encode()


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a body with the given DigitalRiver-Signature header (signed correctly when not given).

    Jobs queued on commit run before it returns unless ``run_jobs=False`` (a job lost with its process).
    """

    def post(event, header=..., *, run_jobs=True, **extra):
        body = encode(event)
        if header is ...:
            header = cartridge_header(body)
        if header is not None:
            extra["HTTP_DIGITALRIVER_SIGNATURE"] = header
        if not run_jobs:
            return client.post(URL, data=body, content_type="application/json", **extra)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, data=body, content_type="application/json", **extra)

    return post


def reason(response) -> str:
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert isinstance(error, str) and error
    return error


# --- accepting ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_new_event_answers_202_and_stores_one_row_with_redacted_headers(deliver):
    event = make_event("order.accepted", obj={"id": "231388420336", "state": "accepted"})
    body = encode(event)
    response = deliver(
        body,
        HTTP_AUTHORIZATION="Bearer sk_test_supersecret123",
        HTTP_COOKIE="sessionid=cookie-value-xyz",
        HTTP_X_TRACE="trace-1",
    )

    assert response.status_code == 202, response.content
    assert response.json() == {"id": event["id"], "status": "accepted"}
    row = WebhookEvent.objects.get()
    assert row.dr_event_id == event["id"]
    assert row.type == "order.accepted"
    assert row.body == body.decode()
    assert row.payload == event
    assert row.source == WebhookEvent.Source.WEBHOOK
    assert row.live_mode is False
    assert row.dr_created_at is not None and row.dr_created_at.year == 2026
    assert row.received_at is not None
    headers = {name.lower(): value for name, value in row.headers.items()}
    assert headers["authorization"] == "[redacted]"
    assert headers["cookie"] == "[redacted]"
    assert headers["x-trace"] == "trace-1"
    assert "digitalriver-signature" in headers
    stored = json.dumps(row.headers)
    assert "supersecret123" not in stored
    assert "cookie-value-xyz" not in stored


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(
            lambda body, ts: f"{ts}, {base64.b64encode(digest(SECRET, ts, body)).decode()}", id="cartridge-b64"
        ),
        pytest.param(lambda body, ts: f"{ts}, {digest(SECRET, ts, body).hex()}", id="cartridge-hex"),
        pytest.param(
            lambda body, ts: f"t={ts},v0={base64.b64encode(digest(SECRET, ts, body)).decode()}", id="t-v0-b64"
        ),
        pytest.param(lambda body, ts: f"t={ts},v0={digest(SECRET, ts, body).hex()}", id="t-v0-hex"),
        pytest.param(
            lambda body, ts: f"t={ts},v0={digest('other', ts, body).hex()},v0={digest(SECRET, ts, body).hex()}",
            id="several-signatures",
        ),
    ],
)
def test_signature_forms_are_accepted_by_the_endpoint(deliver, make_header):
    body = encode(make_event("something.unknown"))
    response = deliver(body, make_header(body, int(time.time())))
    assert response.status_code == 202, response.content
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("signing_secret", [SECRET, OLD_SECRET])
def test_either_of_two_configured_secrets_is_accepted(deliver, settings, signing_secret):
    settings.DR_WEBHOOK_SECRETS = [OLD_SECRET, SECRET]
    body = encode(make_event("something.unknown"))
    assert deliver(body, cartridge_header(body, signing_secret)).status_code == 202
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_tolerance_comes_from_settings(deliver, settings):
    settings.DR_WEBHOOK_TOLERANCE_SECONDS = 60
    old = encode(make_event("something.unknown"))
    response = deliver(old, cartridge_header(old, timestamp=int(time.time()) - 120))
    assert response.status_code == 400
    assert "too old" in reason(response)
    recent = encode(make_event("something.unknown"))
    assert deliver(recent, cartridge_header(recent, timestamp=int(time.time()) - 30)).status_code == 202
    assert WebhookEvent.objects.count() == 1


# --- refusing ----------------------------------------------------------------------------------


def _valid() -> bytes:
    return encode(make_event(HANDLED_TYPE))


def _signed(body: bytes, **kwargs):
    return body, cartridge_header(body, **kwargs)


def _tampered():
    body = _valid()
    tampered = body.replace(b'"accepted"', b'"cancelled"')
    assert tampered != body
    return tampered, cartridge_header(body)


def _event_without(key):
    event = make_event(HANDLED_TYPE)
    del event[key]
    return _signed(encode(event))


def _event_with(**fields):
    return _signed(encode({**make_event(HANDLED_TYPE), **fields}))


def _data(raw: str) -> bytes:
    return f'{{"id": "{uuid.uuid4()}", "type": "{HANDLED_TYPE}", "data": {raw}}}'.encode()


BAD_DELIVERIES = {
    # signature
    "missing-header": (lambda: (_valid(), None), "missing"),
    "empty-header": (lambda: (_valid(), ""), "missing"),
    "tampered-body": (_tampered, "does not match"),
    "wrong-secret": (lambda: _signed(_valid(), secret="whsec_someone_else_000"), "does not match"),
    "stale-timestamp": (lambda: _signed(_valid(), timestamp=int(time.time()) - 301 - 5), "too old"),
    "future-timestamp": (lambda: _signed(_valid(), timestamp=int(time.time()) + 301 + 5), "future"),
    "no-signature-in-header": (lambda: (_valid(), str(int(time.time()))), "no signature"),
    "garbage-header": (lambda: (_valid(), "hello"), None),
    "unicode-digit-timestamp": (
        lambda: (_valid(), "\u00b2, " + base64.b64encode(b"x" * 32).decode()),
        "no timestamp",
    ),
    "huge-timestamp": (lambda: (_valid(), "9" * 5000 + ", " + base64.b64encode(b"x" * 32).decode()), "no timestamp"),
    # body
    "malformed-json": (lambda: _signed(b'{"id": "x", "type": '), "not valid JSON"),
    "empty-body": (lambda: _signed(b""), "not valid JSON"),
    "not-utf8": (lambda: _signed(b'{"id": "\xff\xfe"}'), "UTF-8"),
    "json-array": (lambda: _signed(b'[{"id": "x", "type": "order.accepted"}]'), "JSON object"),
    "json-string": (lambda: _signed(b'"order.accepted"'), "JSON object"),
    "json-number": (lambda: _signed(b"42"), "JSON object"),
    "json-null": (lambda: _signed(b"null"), "JSON object"),
    "missing-id": (lambda: _event_without("id"), "'id'"),
    "missing-type": (lambda: _event_without("type"), "'type'"),
    "numeric-id": (lambda: _event_with(id=12345), "'id'"),
    "blank-id": (lambda: _event_with(id="  "), "'id'"),
    "null-type": (lambda: _event_with(type=None), "'type'"),
    "overlong-id": (lambda: _event_with(id="x" * 101), "longer than"),
    # valid JSON a JSON column cannot take
    "nan": (lambda: _signed(_data('{"object": {"amount": NaN}}')), "NaN"),
    "infinity": (lambda: _signed(_data('{"object": {"amount": -Infinity}}')), "NaN"),
    "float-overflow": (lambda: _signed(_data('{"object": {"amount": 1e400}}')), "NaN"),
    "nul-escape": (lambda: _signed(_data('{"object": {"name": "a\\u0000b"}}')), "NUL"),
    "nul-in-key": (lambda: _signed(_data('{"object": {"a\\u0000": 1}}')), "NUL"),
    "lone-surrogate": (lambda: _signed(_data('{"object": {"name": "\\ud800"}}')), "surrogate"),
    "deep-nesting": (lambda: _signed(_data("[" * 100 + "]" * 100)), "deeper"),
    "parser-stack-nesting": (lambda: _signed(_data("[" * 100_000 + "]" * 100_000)), "not valid JSON"),
    "huge-integer": (lambda: _signed(_data("1" * 5000)), "not valid JSON"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_DELIVERIES), ids=list(BAD_DELIVERIES))
def test_bad_delivery_answers_400_with_a_reason_and_stores_nothing(deliver, handler, case):
    build, expected = BAD_DELIVERIES[case]
    body, header = build()
    response = deliver(body, header)
    assert response.status_code == 400, response.content
    if expected:
        assert expected in reason(response)
    else:
        reason(response)
    assert WebhookEvent.objects.count() == 0
    assert handler.calls == []


@pytest.mark.django_db
@pytest.mark.parametrize("size", [2 * 1024 * 1024, 1024 * 1024 + 1])
def test_body_over_one_megabyte_answers_413_and_stores_nothing(deliver, settings, size):
    event = make_event("something.unknown")
    event["padding"] = ""
    body = encode(event)
    event["padding"] = "x" * (size - len(body))
    body = encode(event)
    assert len(body) == size
    response = deliver(body)  # correctly signed: only the size is wrong
    assert response.status_code == 413
    assert "larger than" in reason(response)
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_body_of_exactly_one_megabyte_is_accepted(deliver):
    event = make_event("something.unknown", padding="")
    event["padding"] = "x" * (1024 * 1024 - len(encode(event)))
    assert len(encode(event)) == 1024 * 1024
    assert deliver(event).status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize("length", ["abc", "\u00b2", "-1"])
def test_bad_content_length_is_not_a_500(client, length):
    response = client.post(URL, data=b"{}", content_type="application/json", CONTENT_LENGTH=length)
    assert response.status_code in (400, 413)
    reason(response)
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_only_post_is_allowed(client):
    assert client.get(URL).status_code == 405
    assert WebhookEvent.objects.count() == 0


# --- duplicates --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_duplicate_id_answers_200_and_changes_nothing(deliver, handler):
    event = make_event(HANDLED_TYPE)
    assert deliver(event, HTTP_X_DELIVERY="first").status_code == 202
    before = WebhookEvent.objects.values().get()

    again = {**event, "data": {"object": {"id": "999", "state": "cancelled"}}, "type": "order.cancelled"}
    response = deliver(again, HTTP_X_DELIVERY="second")

    assert response.status_code == 200
    assert response.json() == {"id": event["id"], "status": "duplicate"}
    assert WebhookEvent.objects.values().get() == before
    assert before["state"] == WebhookEvent.State.PROCESSED
    assert handler.calls == [event["id"]]


# --- processing --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_type_ends_ignored(deliver):
    deliver(make_event("something.nobody.handles"))
    row = WebhookEvent.objects.get()
    assert row.state == WebhookEvent.State.IGNORED
    assert row.processed_at is not None
    assert row.attempts == 1
    assert row.error == ""


@pytest.mark.django_db
def test_registered_handler_runs_once_and_row_ends_processed(deliver, handler):
    event = make_event(HANDLED_TYPE)
    assert deliver(event).status_code == 202
    row = WebhookEvent.objects.get()
    assert handler.calls == [event["id"]]
    assert row.state == WebhookEvent.State.PROCESSED
    assert row.processed_at is not None
    assert row.attempts == 1
    assert row.lease_expires_at is None


@pytest.mark.django_db
def test_event_waits_in_received_until_its_job_runs(deliver, handler):
    """The answer comes before processing: nothing runs inside the request itself."""
    assert deliver(make_event(HANDLED_TYPE), run_jobs=False).status_code == 202
    assert WebhookEvent.objects.get().state == WebhookEvent.State.RECEIVED
    assert handler.calls == []


@pytest.mark.django_db
def test_processing_twice_runs_the_handler_once(deliver, handler):
    deliver(make_event(HANDLED_TYPE))
    row = WebhookEvent.objects.get()
    assert inbox.webhook_event_process(event_id=row.pk) is None
    assert inbox.webhook_event_process(event_id=row.pk) is None
    assert len(handler.calls) == 1
    row = WebhookEvent.objects.get(pk=row.pk)  # protected FSM field: no refresh_from_db
    assert row.attempts == 1


@pytest.mark.django_db
def test_event_held_by_another_worker_is_left_alone(deliver, handler):
    deliver(make_event(HANDLED_TYPE), run_jobs=False)
    row = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=row.pk).update(lease_expires_at=timezone.now() + timedelta(minutes=1))
    assert inbox.webhook_event_process(event_id=row.pk) is None
    assert handler.calls == []
    WebhookEvent.objects.filter(pk=row.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert inbox.webhook_event_process(event_id=row.pk).state == WebhookEvent.State.PROCESSED
    assert len(handler.calls) == 1


@pytest.fixture
def failed_event(deliver, handler):
    """An event whose handler raised; the handler is then fixed."""
    handler.error = RuntimeError("stock service unreachable 42")
    event = make_event(HANDLED_TYPE)
    assert deliver(event).status_code == 202  # the failure happens after the answer
    row = WebhookEvent.objects.get()
    handler.error = None
    return row


@pytest.mark.django_db
def test_failing_handler_marks_row_failed_with_error_and_traceback(failed_event, handler):
    row = failed_event
    assert row.state == WebhookEvent.State.FAILED
    assert row.error == "RuntimeError: stock service unreachable 42"
    assert row.traceback.startswith("Traceback (most recent call last):")
    assert "conftest.py" in row.traceback and "raise self.error" in row.traceback  # where it was raised
    assert "RuntimeError: stock service unreachable 42" in row.traceback
    assert row.lease_expires_at is None
    assert row.processed_at is None
    # nothing lost: the delivery is kept exactly as received
    assert row.payload["type"] == HANDLED_TYPE
    assert json.loads(row.body) == row.payload
    assert handler.calls == [row.dr_event_id]


@pytest.mark.django_db
def test_a_failed_event_is_not_processed_again_without_a_replay(failed_event, handler):
    assert inbox.webhook_event_process(event_id=failed_event.pk) is None
    assert len(handler.calls) == 1


@pytest.mark.django_db
def test_replay_service_processes_a_failed_event_once_the_handler_is_fixed(
    failed_event, handler, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.webhook_events_replay(events=WebhookEvent.objects.all()) == 1
    row = WebhookEvent.objects.get()
    assert row.state == WebhookEvent.State.PROCESSED
    assert row.error == "" and row.traceback == ""
    assert row.attempts == 2
    assert handler.calls == [row.dr_event_id, row.dr_event_id]


@pytest.mark.django_db
def test_replay_leaves_an_event_a_worker_holds_alone(deliver, handler, django_capture_on_commit_callbacks):
    deliver(make_event(HANDLED_TYPE), run_jobs=False)
    WebhookEvent.objects.update(lease_expires_at=timezone.now() + timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True) as jobs:
        assert inbox.webhook_events_replay(events=WebhookEvent.objects.all()) == 0
    assert jobs == []
    assert handler.calls == []
    assert WebhookEvent.objects.get().state == WebhookEvent.State.RECEIVED


@pytest.mark.django_db
def test_replay_queues_a_waiting_event_whose_job_was_lost(deliver, handler, django_capture_on_commit_callbacks):
    deliver(make_event(HANDLED_TYPE), run_jobs=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.webhook_events_replay(events=WebhookEvent.objects.all()) == 1
    assert len(handler.calls) == 1
    assert WebhookEvent.objects.get().state == WebhookEvent.State.PROCESSED


@pytest.mark.django_db
def test_admin_replay_action(failed_event, handler, admin_client, django_capture_on_commit_callbacks):
    changelist = reverse("admin:digitalriver_webhookevent_changelist")
    assert admin_client.get(changelist).status_code == 200
    detail = admin_client.get(reverse("admin:digitalriver_webhookevent_change", args=[failed_event.pk]))
    assert detail.status_code == 200
    assert b"stock service unreachable 42" in detail.content

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            changelist, {"action": "replay", "_selected_action": [failed_event.pk]}, follow=True
        )

    assert response.status_code == 200
    assert b"1 event queued for processing" in response.content
    row = WebhookEvent.objects.get()
    assert row.state == WebhookEvent.State.PROCESSED
    assert len(handler.calls) == 2


@pytest.mark.django_db
def test_replay_events_command_failed(failed_event, handler, deliver):
    deliver(make_event(HANDLED_TYPE))  # processed: --failed must not touch it
    ok = WebhookEvent.objects.get(state=WebhookEvent.State.PROCESSED)
    out = io.StringIO()

    call_command("replay_events", "--failed", stdout=out)

    assert "replayed 1 of 1 events: 1 processed" in out.getvalue()
    failed_event = WebhookEvent.objects.get(pk=failed_event.pk)  # protected FSM field: no refresh_from_db
    assert failed_event.state == WebhookEvent.State.PROCESSED
    assert failed_event.attempts == 2
    ok = WebhookEvent.objects.get(pk=ok.pk)  # protected FSM field: no refresh_from_db
    assert ok.attempts == 1
    assert handler.calls.count(failed_event.dr_event_id) == 2
    assert handler.calls.count(ok.dr_event_id) == 1


@pytest.mark.django_db
def test_replay_events_command_reports_a_handler_that_still_fails(failed_event, handler):
    handler.error = ValueError("still broken")
    out, err = io.StringIO(), io.StringIO()
    call_command("replay_events", "--failed", stdout=out, stderr=err)
    assert "1 failed" in out.getvalue()
    assert f"{failed_event.dr_event_id} ({HANDLED_TYPE}) failed: ValueError: still broken" in err.getvalue()
    row = WebhookEvent.objects.get()
    assert row.state == WebhookEvent.State.FAILED
    assert row.error == "ValueError: still broken"
    assert "ValueError: still broken" in row.traceback


@pytest.mark.django_db
def test_replay_events_command_by_ids_and_type(deliver, handler):
    first, second = make_event(HANDLED_TYPE), make_event(HANDLED_TYPE)
    deliver(first)
    deliver(second)
    deliver(make_event("something.unknown"))

    call_command("replay_events", "--ids", first["id"], stdout=io.StringIO())
    assert handler.calls == [first["id"], second["id"], first["id"]]

    out = io.StringIO()
    call_command("replay_events", "--type", "something.unknown", stdout=out)
    assert "1 ignored" in out.getvalue()
    assert len(handler.calls) == 3

    out = io.StringIO()
    call_command("replay_events", "--ids", "no-such-event", stdout=out)
    assert "no stored event matches" in out.getvalue()


def test_replay_events_command_needs_a_selection():
    with pytest.raises(CommandError):
        call_command("replay_events")


# --- order id ----------------------------------------------------------------------------------

ORDER = "231388420336"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("event_type", "obj", "expected"),
    [
        ("order.accepted", {"id": ORDER, "state": "accepted"}, ORDER),
        ("order.complete", {"id": ORDER, "upstreamId": "our-order-7"}, ORDER),
        ("order.invoice.created", {"id": "inv_1", "orderId": ORDER}, ORDER),
        ("order.charge.capture.complete", {"id": "chg_1", "orderId": ORDER, "state": "complete"}, ORDER),
        ("order.charge.failed", {"id": "chg_2", "orderId": ORDER}, ORDER),
        (
            "fulfillment_order.pending",
            {"id": "fo_123", "upstreamId": ORDER, "items": [{"id": "1", "upstreamId": "99"}]},
            ORDER,
        ),
        ("fulfillment_order.cancelled", {"id": "fo_123", "upstreamId": ORDER, "state": "cancelled"}, ORDER),
        (
            "fulfillment_order.shipped",
            {
                "id": "shp_1",
                "fulfillmentOrderId": "fo_123",
                "fulfillmentOrderUpstreamId": ORDER,
                "items": [{"id": "si_1", "fulfillmentOrderItemUpstreamId": "99", "quantity": 1}],
            },
            ORDER,
        ),
        ("fulfillment.created", {"id": "ful_1", "orderId": ORDER}, ORDER),
        ("fulfillment_cancellation.accepted", {"id": "fc_1", "fulfillmentOrderId": "fo_1", "upstreamId": ORDER}, ORDER),
        ("sku.updated", {"id": "sku_1", "upstreamId": "not-an-order"}, ""),
        ("order.accepted", {"id": True}, ""),
        ("order.accepted", {}, ""),
    ],
)
def test_order_id_column(deliver, event_type, obj, expected):
    assert deliver(make_event(event_type, obj=obj)).status_code == 202
    assert WebhookEvent.objects.get().order_id == expected


@pytest.mark.django_db
@pytest.mark.parametrize("data", [None, "text", {"object": "text"}, {"object": [1]}])
def test_odd_envelopes_are_stored_without_an_order_id(deliver, data):
    event = make_event("order.accepted")
    event["data"] = data
    assert deliver(event).status_code == 202
    assert WebhookEvent.objects.get().order_id == ""


# --- sweep -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sweep_picks_up_an_event_whose_job_was_lost(deliver, handler):
    deliver(make_event(HANDLED_TYPE), run_jobs=False)
    row = WebhookEvent.objects.get()

    assert inbox.inbox_sweep() == 0  # too recent: its own job may still be on its way
    assert handler.calls == []

    WebhookEvent.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(minutes=2))
    assert inbox.inbox_sweep() == 1
    assert handler.calls == [row.dr_event_id]
    row = WebhookEvent.objects.get(pk=row.pk)  # protected FSM field: no refresh_from_db
    assert row.state == WebhookEvent.State.PROCESSED

    assert inbox.inbox_sweep() == 0
    assert len(handler.calls) == 1


@pytest.mark.django_db
def test_sweep_takes_over_an_expired_lease_but_not_a_live_one(deliver, handler):
    deliver(make_event(HANDLED_TYPE), run_jobs=False)
    old = timezone.now() - timedelta(minutes=10)
    WebhookEvent.objects.update(received_at=old, lease_expires_at=timezone.now() + timedelta(minutes=1))
    assert inbox.inbox_sweep() == 0
    WebhookEvent.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert inbox.inbox_sweep() == 1
    assert WebhookEvent.objects.get().state == WebhookEvent.State.PROCESSED
    assert len(handler.calls) == 1


@pytest.mark.django_db
def test_sweep_takes_over_a_dead_workers_event_without_waiting_for_the_grace(deliver, handler):
    # Received a moment ago and claimed by a worker that died: its lease ran out, nothing else to wait for.
    deliver(make_event(HANDLED_TYPE), run_jobs=False)
    WebhookEvent.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert inbox.inbox_sweep() == 1
    assert WebhookEvent.objects.get().state == WebhookEvent.State.PROCESSED


# --- PostgreSQL: concurrent deliveries ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("both_insert", [True, False], ids=["both-reach-the-insert-together", "free-race"])
def test_concurrent_deliveries_of_one_id_store_one_row_and_process_once(handler, monkeypatch, both_insert):
    handler.delay = 0.05
    if both_insert:
        # Hold each delivery just before its INSERT until both got there, so that both race on the
        # unique index.
        both_checked = threading.Barrier(2)
        original = inbox.redact_headers

        def redact_after_both_checked(headers):
            both_checked.wait(timeout=10)
            return original(headers)

        monkeypatch.setattr(inbox, "redact_headers", redact_after_both_checked)
    event = make_event(HANDLED_TYPE)
    body = encode(event)
    header = cartridge_header(body)

    def post(_index):
        return Client().post(URL, data=body, content_type="application/json", HTTP_DIGITALRIVER_SIGNATURE=header)

    responses = in_threads(2, post)

    assert sorted(response.status_code for response in responses) == [200, 202]
    assert WebhookEvent.objects.filter(dr_event_id=event["id"]).count() == 1
    assert WebhookEvent.objects.get().state == WebhookEvent.State.PROCESSED
    assert handler.calls == [event["id"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_processing_of_one_event_runs_the_handler_once(handler):
    handler.delay = 0.2
    receipt = inbox.webhook_event_store(
        payload=make_event(HANDLED_TYPE), body="{}", headers={}, source=WebhookEvent.Source.WEBHOOK
    )
    # transactional_db runs on-commit jobs at once: the event is processed already; put it back.
    assert handler.calls == [receipt.event.dr_event_id]
    handler.calls.clear()
    assert inbox.webhook_events_replay(events=[receipt.event], enqueue=False) == 1

    results = in_threads(4, lambda _index: inbox.webhook_event_process(event_id=receipt.event.pk))

    assert sum(result is not None for result in results) == 1
    assert handler.calls == [receipt.event.dr_event_id]
    row = WebhookEvent.objects.get()
    assert row.state == WebhookEvent.State.PROCESSED
    assert row.attempts == 2

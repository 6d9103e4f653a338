"""The inbox keeps no payment secret: a delivery's `clientSecret`s (of its sources and its payment
session), card data and credentials are redacted in both the stored `body` and `payload`, after the
signature was checked on the raw body as DR signed it. The stored body stays JSON and says what the
payload says; a delivery with nothing to redact is kept byte for byte; events polled from
`GET /events` are stored the same way."""

import copy
import io
import json
import uuid

import pytest
from django.core.management import call_command

from core.redaction import REDACTED
from digitalriver.models import WebhookEvent
from digitalriver.services import inbox
from tests.conftest import make_event
from tests.digitalriver.conftest import HANDLED_TYPE
from tests.digitalriver.test_inbox import SECRET, URL, cartridge_header

pytestmark = pytest.mark.django_db

SOURCE_SECRET = "src_0f1e2d3c_secret_Zy9Xw8Vu7Ts6"
SESSION_SECRET = "sess_5a6b7c8d_secret_Qp4Rs3Tu2Vw1"
CARD = "4111111111111111"
CVV = "737"
SECRETS = (SOURCE_SECRET, SESSION_SECRET, CARD, '"737"')


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.DR_WEBHOOK_SECRETS = [SECRET]
    settings.DR_WEBHOOK_TOLERANCE_SECONDS = 300


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a body (an event or bytes) with the given signature header, or one signed over the body."""

    def post(event, header: str | None = None):
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                URL,
                data=body,
                content_type="application/json",
                HTTP_DIGITALRIVER_SIGNATURE=header or cartridge_header(body),
            )

    return post


def order_with_payment_secrets() -> dict:
    return {
        "id": "231388420336",
        "state": "accepted",
        "trackingNumber": "1Z999AA10123456784",
        "payment": {
            "sources": [
                {
                    "id": "src_1",
                    "type": "creditCard",
                    "clientSecret": SOURCE_SECRET,
                    "creditCard": {"brand": "Visa", "lastFourDigits": "1111", "number": CARD, "cvv": CVV},
                }
            ],
            "session": {"id": "ses_1", "amountContributed": 70.17, "clientSecret": SESSION_SECRET},
        },
        "items": [{"id": "231388420336-1", "quantity": 2, "amount": 70.17}],
        "note": "Gift — ümlauts stay as they are",
    }


def event_with_secrets() -> dict:
    return make_event(HANDLED_TYPE, obj=order_with_payment_secrets())


def assert_no_secret(row: WebhookEvent) -> None:
    for secret in SECRETS:
        assert secret not in row.body
        assert secret not in json.dumps(row.payload)


def test_payment_secrets_are_redacted_in_the_stored_body_and_payload(deliver, handler):
    event = event_with_secrets()
    response = deliver(json.dumps(event, indent=2).encode())
    assert response.status_code == 202, response.content

    row = WebhookEvent.objects.get()
    assert_no_secret(row)
    assert json.loads(row.body) == row.payload  # the body is still JSON, and the same
    obj = row.data_object
    assert obj["payment"]["sources"][0]["clientSecret"] == REDACTED
    assert obj["payment"]["session"]["clientSecret"] == REDACTED
    assert obj["payment"]["sources"][0]["creditCard"] == {
        "brand": "Visa",
        "lastFourDigits": "1111",
        "number": REDACTED,
        "cvv": REDACTED,
    }
    # Everything else is what DR sent.
    expected = copy.deepcopy(event)
    expected["data"]["object"]["payment"] = obj["payment"]
    assert row.payload == expected
    assert row.state == WebhookEvent.State.PROCESSED and handler.calls == [event["id"]]


def test_the_signature_is_checked_on_the_raw_body_before_redaction(deliver):
    raw = json.dumps(event_with_secrets()).encode()
    redacted = json.dumps(inbox._storable(json.loads(raw))).encode()
    assert redacted != raw

    # Signed over what the inbox will store, not over what DR sent: refused.
    refused = deliver(raw, cartridge_header(redacted))
    assert refused.status_code == 400
    assert not WebhookEvent.objects.exists()
    # Signed over the raw body: accepted, and stored redacted.
    assert deliver(raw, cartridge_header(raw)).status_code == 202
    assert_no_secret(WebhookEvent.objects.get())


def test_a_delivery_with_nothing_to_redact_is_kept_byte_for_byte(deliver):
    body = b'{"id": "evt-plain-1",  "type": "order.accepted", "data": {"object": {"id": "1", "note": "\\u00fc"}}}'
    assert deliver(body).status_code == 202
    assert WebhookEvent.objects.get().body == body.decode()


def test_a_duplicate_delivery_is_answered_from_the_redacted_row(deliver):
    event = event_with_secrets()
    assert deliver(event).status_code == 202
    assert deliver(event).status_code == 200
    assert WebhookEvent.objects.count() == 1
    assert_no_secret(WebhookEvent.objects.get())


def test_events_stored_without_a_delivery_are_redacted_too():
    """What reconcile pulls from GET /events goes through the same store."""
    event = event_with_secrets()
    receipt = inbox.webhook_event_store(
        payload=event, body=json.dumps(event), headers={}, source=WebhookEvent.Source.POLLED
    )
    assert receipt.created
    assert_no_secret(WebhookEvent.objects.get())


def test_replaying_a_redacted_event_runs_its_handler(deliver, handler):
    event = event_with_secrets()
    deliver(event)
    call_command("replay_events", "--ids", event["id"], stdout=io.StringIO())
    assert handler.calls == [event["id"], event["id"]]


def test_the_helper_redacts_values_under_secret_keys_only():
    data = {
        "clientSecret": {"nested": "x"},
        "items": [{"token": "t", "number": 5, "trackingNumber": "4111111111111111"}],
        "id": str(uuid.uuid4()),
    }
    assert inbox._storable(data) == {
        "clientSecret": REDACTED,
        "items": [{"token": REDACTED, "number": REDACTED, "trackingNumber": "4111111111111111"}],
        "id": data["id"],
    }

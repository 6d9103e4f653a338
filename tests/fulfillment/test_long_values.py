"""DR sets no length on most of what it sends: a string longer than we expected (an 813-character
tracking URL, a 206-character ship-to name) is stored, and the event ends processed, on PostgreSQL,
which, unlike SQLite, refuses a value longer than its column."""

import json
import uuid

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digitalriver.models import WebhookEvent
from tests.conftest import fixture, fulfillment_order, make_event, signed_headers

# SQLite ignores lengths: the postgres marker skips these on it.
pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# The ids that tie an event to the order under test: another value is another order (which the flow
# would fetch from DR), not a longer value of this one. Every other string gets the long value.
LINKS = frozenset(
    {
        "orderId",
        "upstreamId",
        "fulfillmentOrderId",
        "fulfillmentOrderUpstreamId",
        "fulfillmentOrderItemId",
        "fulfillmentOrderItemUpstreamId",
        "itemId",
    }
)
ORDER = "231388420336"


def charge() -> dict:
    return fixture("event_order_charge_capture_failed.json")["data"]["object"]


# (event type, DR's documented object, whether its own top-level id links it to our order)
EVENTS = [
    ("order.accepted", lambda: fixture("order.json"), True),
    ("order.complete", lambda: fixture("order.json"), True),
    ("fulfillment_order.pending", fulfillment_order, True),
    ("fulfillment_order.backordered", lambda: fulfillment_order(pending=0, backordered=2), True),
    ("fulfillment_order.cancelled", lambda: fulfillment_order(pending=0, cancelled=2), True),
    ("fulfillment_order.shipped", lambda: fixture("shipment.json"), False),
    ("fulfillment.created", lambda: fixture("fulfillment.json"), False),
    ("order.charge.capture.complete", charge, False),
    ("order.charge.capture.failed", charge, False),
    ("fulfillment_cancellation.accepted", lambda: fixture("fulfillment_cancellation.json"), False),
]


def lengthened(value, long: str, *, keep_id: bool, top: bool = True):
    """Every string of DR's object replaced by ``long``, except the linking ids."""
    if isinstance(value, dict):
        return {
            key: item
            if key in LINKS or (top and keep_id and key == "id") or (key == "id" and not top and keep_id)
            else lengthened(item, long, keep_id=keep_id, top=False)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [lengthened(item, long, keep_id=keep_id, top=False) for item in value]
    return long if isinstance(value, str) else value


LONG_TEXT = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_categories=("Cs",)),
    min_size=101,
    max_size=900,
)


@pytest.mark.parametrize(("event_type", "obj", "keep_id"), EVENTS, ids=[event[0] for event in EVENTS])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(long=LONG_TEXT)
def test_every_string_of_a_handled_event_may_be_long_and_the_event_ends_processed(
    event_type, obj, keep_id, long, client, catalog, no_dr, django_capture_on_commit_callbacks
):
    with transaction.atomic():
        deliveries = [make_event("order.accepted", fixture("order.json"))]
        if event_type != "order.accepted":
            deliveries.append(make_event("fulfillment_order.pending", fulfillment_order()))
        data = lengthened(obj(), long, keep_id=keep_id)
        deliveries.append(make_event(event_type, data, event_id=str(uuid.uuid4())))
        for event in deliveries:
            body = json.dumps(event).encode()
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(
                    "/webhooks/digitalriver/", data=body, content_type="application/json", **signed_headers(body)
                )
            assert response.status_code == 202, response.content
            stored = WebhookEvent.objects.get(dr_event_id=event["id"])
            assert stored.state == WebhookEvent.State.PROCESSED, (event["type"], stored.traceback[-1500:])
        transaction.set_rollback(True)

"""The bad network on demand: API faults through the control endpoint, delivery faults."""

import random
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.utils import timezone

from sandbox.delivery import deliver_due
from sandbox.models import Delivery, DeliveryAttempt, Sku

from .conftest import sku_body
from .test_api_catalog import error_of


def test_error_rate_is_observed(api, control):
    # The live server runs in this process, so a seed makes the draw repeatable; the bound still
    # holds for any seed but for about 1 in 200,000 (binomial(200, 0.2): 40 ± 5.7, bound ± 26).
    random.seed(20261127)
    control(error_rate=0.2)
    statuses = [api.get("/skus", limit=1).status_code for _ in range(200)]
    failures = [status for status in statuses if status != 200]
    assert set(failures) <= {500, 503}
    assert abs(len(failures) / len(statuses) - 0.2) <= 0.13, len(failures)
    failed = next(response for response in (api.get("/skus") for _ in range(50)) if response.status_code != 200)
    assert error_of(failed)[0] in ("internal_server_error", "service_unavailable")


def test_latency_is_observed(api, control):
    started = time.monotonic()
    api.get("/skus")
    baseline = time.monotonic() - started
    control(latency_ms=250)
    started = time.monotonic()
    assert api.get("/skus").status_code == 200
    assert time.monotonic() - started >= 0.25 > baseline


def test_a_share_of_calls_is_slow(api, control):
    control(slow_rate=0.5, slow_ms=120)
    durations = []
    for _ in range(30):
        started = time.monotonic()
        assert api.get("/skus").status_code == 200
        durations.append(time.monotonic() - started)
    slow = [d for d in durations if d >= 0.12]
    assert 5 <= len(slow) <= 25, len(slow)  # about half; binomial(30, 0.5) lands here but for 1 in 3,000
    assert len(slow) < len(durations)


def test_next_calls_to_a_path_answer_a_status(api, control):
    control(next_calls={"path": "/skus/a", "status": 503, "count": 2})
    assert [api.get("/skus/a").status_code for _ in range(3)] == [503, 503, 404]
    assert api.get("/skus").status_code == 200
    control(next_calls=[{"path": r"^/orders/\d+$", "regex": True, "status": 429, "count": 1, "method": "GET"}])
    assert api.get("/orders").status_code == 200
    throttled = api.get("/orders/123")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert error_of(throttled)[0] == "too_many_requests"
    assert api.get("/orders/123").status_code == 404
    assert control()["rules"] == []


def test_errors_after_processing_are_ambiguous(api, control):
    control(error_rate=1, error_after_processing=1, error_statuses=[502])
    response = api.put("/skus/ghost-write", sku_body())
    assert response.status_code == 502
    assert Sku.objects.filter(dr_id="ghost-write").exists()


def test_control_endpoint_reads_validates_and_resets(live_server, control):
    url = f"{live_server.url}/sandbox/control/"
    auth = {"Authorization": f"Bearer {settings.DR_SECRET_KEY}"}
    assert requests.get(url, timeout=5).status_code == 403
    state = control(latency_ms=5, drop_rate=0.5, next_calls={"path": "/x", "status": 500, "count": 3})
    assert state["latency_ms"] == 5 and state["drop_rate"] == 0.5 and state["rules"][0]["count"] == 3
    assert requests.get(url, headers=auth, timeout=5).json() == state
    for bad in ({"error_rate": 2}, {"nope": 1}, {"next_calls": {"path": "/x", "status": 200}}):
        response = requests.post(url, json=bad, headers=auth, timeout=5)
        assert response.status_code == 400, bad
    reset = control(reset=True)
    assert reset["latency_ms"] == 0 and reset["drop_rate"] == 0 and reset["rules"] == []
    assert reset["error_statuses"] == [500, 503]


def test_duplicates_are_sent_as_configured(api, receiver, place, skus, control):
    control(duplicate_rate=1)
    for _ in range(3):
        place((skus["distributed"], 1))
    assert deliver_due() == 6
    ids = [event["id"] for event in receiver.events()]
    assert len(ids) == 6 and len(set(ids)) == 3 and all(ids.count(event_id) == 2 for event_id in ids)
    assert DeliveryAttempt.objects.filter(note="duplicate").count() == 3


def test_reordered_deliveries(api, receiver, place, skus, control):
    control(reorder=True)
    orders = [place((skus["distributed"], 1)).dr_id for _ in range(12)]
    deliver_due()
    received = [event["data"]["object"]["id"] for event in receiver.events()]
    assert sorted(received) == sorted(orders)
    assert received != orders


def test_delayed_deliveries_arrive_after_later_events(api, receiver, place, skus, control):
    control(delay_rate=1, delay_seconds=30)
    first = place((skus["distributed"], 1)).dr_id
    control(delay_rate=0)
    second = place((skus["distributed"], 1)).dr_id
    deliver_due()
    assert [event["data"]["object"]["id"] for event in receiver.events()] == [second]
    deliver_due(now=timezone.now() + timedelta(seconds=31))
    assert [event["data"]["object"]["id"] for event in receiver.events()] == [second, first]


def test_dropped_deliveries_are_lost_but_listed_in_events(api, receiver, place, skus, control):
    control(drop_rate=1)
    order = place((skus["distributed"], 1))
    assert deliver_due() == 0
    assert receiver.received == []
    assert Delivery.objects.get().state == Delivery.State.DROPPED
    assert api.get("/events").json()["data"][0]["data"]["object"]["id"] == order.dr_id


def test_rate_limit_answers_429_with_retry_after(api, control):
    control(rate_limit_per_second=5)
    responses = [api.get("/skus", limit=1) for _ in range(15)]
    statuses = [response.status_code for response in responses]
    # Fifteen quick calls span one second, or at worst two: 5 to 10 of them get through.
    assert 5 <= statuses.count(200) <= 10 and statuses.count(429) == 15 - statuses.count(200)
    limited = next(response for response in responses if response.status_code == 429)
    assert limited.headers["Retry-After"] == "1"
    assert error_of(limited) == ("too_many_requests", [("too_many_requests", None)])
    control(rate_limit_per_second=0)
    assert api.get("/skus").status_code == 200


def test_an_ambiguous_failure_can_be_reconciled(api, place, skus, control):
    order = place((skus["distributed"], 2))
    item = api.get(f"/orders/{order.dr_id}").json()["items"][0]["id"]
    control(error_rate=1, error_after_processing=1, error_statuses=[503])
    response = api.post("/fulfillments", {"orderId": order.dr_id, "items": [{"itemId": item, "quantity": 1}]})
    assert response.status_code == 503
    control(reset=True)
    sent = api.get("/fulfillments", orderId=order.dr_id).json()["data"]
    assert [line["quantity"] for line in sent[0]["items"]] == [1]


def test_made_up_errors_say_so_in_their_code(api, control):
    # Teammates' tests tell the bad network's answers from DR's own by this code.
    control(next_calls={"path": "/skus", "status": 400, "count": 1})
    response = api.get("/skus")
    assert error_of(response) == ("bad_request", [("sandbox_400", None)])

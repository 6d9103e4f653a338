"""The DR client at its HTTP edge: typed errors, retries, rate limit, pagination, headers, call log.

HTTP is mocked with ``responses`` (which replaces the transport adapter's ``send``), time with a
fake clock whose ``sleep`` only moves the clock forward and records what it was asked for.
"""

import email.utils
import http.client
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from digitalriver import client as client_module
from digitalriver import errors
from digitalriver.client import DigitalRiverClient, calls_about, get_client, last_request_id, reset_client
from digitalriver.models import ApiCall
from digitalriver.ratelimit import RateLimiter

# The transport under test: made-up bodies to made-up paths of a mocked DR, on purpose; DR's spec is
# checked on what the app really sends (tests/contract/hooks.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("dr_contract_off")]

BASE = "https://dr.test"
KEY = "sk_test_clientkey_5f3a9c1e7b"
RETRY_CAP = 30.0


class FakeTime:
    """A clock that only moves when something sleeps; every sleep is recorded."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def make_client(fake_time):
    def make(**options) -> DigitalRiverClient:
        defaults = {
            "base_url": BASE,
            "secret_key": KEY,
            "timeout": 0.5,
            "rate_limit": 1000.0,  # high enough that the limiter never waits unless a test wants it
            "max_retries": 3,
            "retry_after_cap": RETRY_CAP,
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
        }
        return DigitalRiverClient(**{**defaults, **options})

    return make


@pytest.fixture
def dr():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def error_body(error_type: str, *details: tuple[str, str, str]) -> dict:
    return {
        "type": error_type,
        "errors": [{"code": code, "parameter": parameter, "message": message} for code, parameter, message in details],
    }


def refused() -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens: the connection was never made."""
    reason = urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, f"{BASE}/x", reason))


def dropped() -> requests.exceptions.ConnectionError:
    """What requests raises when the server closes the connection after the request went out."""
    reason = http.client.RemoteDisconnected("Remote end closed connection without response")
    return requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", reason))


# --- typed errors -------------------------------------------------------------------------------------


def test_bad_request_carries_status_type_every_error_and_request_id(make_client, dr):
    body = error_body(
        "bad_request",
        ("invalid_parameter", "items[0].quantity", "Quantity must be a positive integer."),
        ("missing_parameter", "shipFrom", "shipFrom is required."),
    )
    dr.post(f"{BASE}/fulfillment-orders", status=400, json=body, headers={"x-dr-requestid": "req-400"})

    with pytest.raises(errors.BadRequest) as caught:
        make_client().post("/fulfillment-orders", {"items": [{"quantity": 0}]})

    exc = caught.value
    assert exc.status == 400
    assert exc.error_type == "bad_request"
    assert exc.errors == (
        errors.ErrorDetail("invalid_parameter", "items[0].quantity", "Quantity must be a positive integer."),
        errors.ErrorDetail("missing_parameter", "shipFrom", "shipFrom is required."),
    )
    assert exc.codes == ["invalid_parameter", "missing_parameter"]
    assert exc.first_code == "invalid_parameter"
    assert exc.request_id == "req-400"
    assert (exc.method, exc.path) == ("POST", "/fulfillment-orders")
    assert "Quantity must be a positive integer." in exc.message and "shipFrom is required." in exc.message
    assert "items[0].quantity" in str(exc) and "400" in str(exc)
    assert not exc.transient and not exc.effect_uncertain


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (401, "unauthorized", errors.AuthenticationError),
        (403, "forbidden", errors.AuthenticationError),
        (404, "not_found", errors.NotFound),
        (400, "bad_request", errors.BadRequest),
    ],
)
def test_client_errors_map_to_their_class_and_a_get_is_not_retried(
    make_client, dr, fake_time, status, error_type, expected
):
    dr.get(
        f"{BASE}/orders/240",
        status=status,
        json=error_body(error_type, (error_type, "", "Nope.")),
        headers={"x-dr-requestid": f"req-{status}"},
    )

    with pytest.raises(expected) as caught:
        make_client().get("/orders/240")

    assert type(caught.value) is expected
    assert caught.value.status == status
    assert caught.value.error_type == error_type
    assert caught.value.request_id == f"req-{status}"
    assert not caught.value.transient
    assert len(dr.calls) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    "code",
    [
        "order_fulfilled",
        # DR's OpenAPI file, info.description "Error codes": "The specified orderId is already complete."
        "order_already_complete",
        "order_complete",
        "order_cancelled",
    ],
)
def test_conflict_codes_meaning_the_effect_already_holds(make_client, dr, code):
    dr.post(f"{BASE}/fulfillments", status=409, json=error_body("conflict", (code, "orderId", "Already.")))

    with pytest.raises(errors.Conflict) as caught:
        make_client().post("/fulfillments", {"orderId": "240"})

    assert caught.value.codes == [code]
    assert caught.value.already_done is True


@pytest.mark.parametrize(
    ("error", "item_ids", "settled"),
    [
        (
            ("item_fulfilled", "items[1].itemId", "Resource '222' is fulfilled."),
            ["111", "222"],
            {"222": "item_fulfilled"},
        ),
        (("item_cancelled", "itemId", "Resource '111' is cancelled."), ["111", "222"], {"111": "item_cancelled"}),
        (("item_fulfilled", "itemId", "Resource is fulfilled."), ["111"], {"111": "item_fulfilled"}),
        (("item_fulfilled", "itemId", "Resource is fulfilled."), ["111", "222"], {}),  # which line? not known
        (("order_fulfilled", "orderId", "Resource '240' is fulfilled."), ["111", "222"], {}),
    ],
    ids=["by-position", "by-id-in-message", "the-only-line", "unnamed", "order-level"],
)
def test_a_line_level_conflict_settles_only_the_line_it_names(make_client, dr, error, item_ids, settled):
    # DR's Salesforce connector reads one error per answer, naming one line: only that line holds.
    dr.post(f"{BASE}/fulfillments", status=409, json=error_body("conflict", error))

    with pytest.raises(errors.Conflict) as caught:
        make_client().post("/fulfillments", {"orderId": "240"})

    assert caught.value.already_done is (error[0] == "order_fulfilled")
    assert caught.value.settled_lines(item_ids) == settled


@pytest.mark.parametrize(
    "codes",
    [
        ["quantity_too_large"],
        ["item_fulfilled", "quantity_too_large"],  # only part of it holds: not done
        [],
    ],
)
def test_other_conflicts_are_not_already_done(make_client, dr, codes):
    body = error_body("conflict", *((code, "items[0].quantity", "Too many.") for code in codes))
    dr.post(f"{BASE}/fulfillments", status=409, json=body)

    with pytest.raises(errors.Conflict) as caught:
        make_client().post("/fulfillments", {"orderId": "240"})

    assert caught.value.codes == codes
    assert caught.value.already_done is False


def test_rate_limited_carries_retry_after(make_client, dr):
    dr.post(
        f"{BASE}/fulfillments",
        status=429,
        json=error_body("too_many_requests", ("too_many_requests", "", "Slow down.")),
        headers={"Retry-After": "7", "x-dr-requestid": "req-429"},
    )

    with pytest.raises(errors.RateLimited) as caught:
        make_client().post("/fulfillments", {"orderId": "240"})

    assert caught.value.retry_after == 7.0
    assert caught.value.status == 429
    assert caught.value.request_id == "req-429"
    assert caught.value.transient
    assert not caught.value.effect_uncertain


def test_rate_limited_without_retry_after(make_client, dr):
    dr.post(f"{BASE}/fulfillments", status=429, json=error_body("too_many_requests"))

    with pytest.raises(errors.RateLimited) as caught:
        make_client().post("/fulfillments", {})

    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient_and_leave_the_effect_uncertain(make_client, dr, status):
    dr.post(f"{BASE}/fulfillments", status=status, json=error_body("internal_server_error"))

    with pytest.raises(errors.ServerError) as caught:
        make_client().post("/fulfillments", {})

    assert caught.value.status == status
    assert caught.value.transient
    assert caught.value.effect_uncertain


def test_a_request_timeout_from_dr_is_transient_and_uncertain(make_client, dr, fake_time):
    dr.get(f"{BASE}/orders/240", status=408, json=error_body("request_timeout"))
    dr.get(f"{BASE}/orders/240", json={"id": "240"})

    assert make_client().get("/orders/240") == {"id": "240"}
    assert len(dr.calls) == 2

    dr.post(f"{BASE}/fulfillments", status=408, json=error_body("request_timeout"))
    with pytest.raises(errors.RequestTimeout) as caught:
        make_client().post("/fulfillments", {})
    assert caught.value.transient and caught.value.effect_uncertain


def test_an_error_page_that_is_not_json_still_becomes_a_typed_error(make_client, dr):
    dr.post(f"{BASE}/fulfillments", status=502, body="<html>Bad Gateway</html>", content_type="text/html")

    with pytest.raises(errors.ServerError) as caught:
        make_client().post("/fulfillments", {})

    assert caught.value.status == 502
    assert caught.value.errors == ()
    assert caught.value.message  # something readable, not an empty string


def test_connect_timeout_never_reached_dr(make_client, dr):
    dr.post(f"{BASE}/fulfillments", body=requests.exceptions.ConnectTimeout("connect timed out"))

    with pytest.raises(errors.Timeout) as caught:
        make_client().post("/fulfillments", {})

    assert caught.value.transient
    assert caught.value.effect_uncertain is False
    assert caught.value.status is None


def test_read_timeout_may_have_had_its_effect(make_client, dr):
    dr.post(f"{BASE}/fulfillments", body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(errors.Timeout) as caught:
        make_client().post("/fulfillments", {})

    assert caught.value.transient
    assert caught.value.effect_uncertain is True


def test_refused_connection_never_reached_dr(make_client, dr):
    dr.post(f"{BASE}/fulfillments", body=refused())

    with pytest.raises(errors.ConnectionFailed) as caught:
        make_client().post("/fulfillments", {})

    assert caught.value.transient
    assert caught.value.effect_uncertain is False


def test_connection_dropped_after_sending_may_have_had_its_effect(make_client, dr):
    # The POST went out and DR may have acted on it: the outbox must ask DR before sending again.
    dr.post(f"{BASE}/fulfillments", body=dropped())

    with pytest.raises(errors.ConnectionFailed) as caught:
        make_client().post("/fulfillments", {})

    assert caught.value.transient
    assert caught.value.effect_uncertain is True


def test_answer_cut_off_may_have_had_its_effect(make_client, dr):
    dr.post(f"{BASE}/fulfillments", body=requests.exceptions.ChunkedEncodingError("incomplete read"))

    with pytest.raises(errors.ConnectionFailed) as caught:
        make_client().post("/fulfillments", {})

    assert caught.value.effect_uncertain is True


def test_the_requests_timeout_is_split_into_connect_and_read(make_client, dr):
    seen = {}

    def answer(request):
        seen["timeout"] = request.req_kwargs["timeout"]
        return (200, {}, "{}")

    dr.add_callback(responses.GET, f"{BASE}/orders/1", callback=answer)
    make_client(timeout=8.0).get("/orders/1")
    assert seen["timeout"] == (5.0, 8.0)


# --- retries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status_ok"),
    [(responses.GET, 200), (responses.PUT, 201), (responses.DELETE, 204)],
)
def test_safe_methods_retry_transient_failures_with_growing_jittered_backoff(
    make_client, dr, fake_time, method, status_ok
):
    url = f"{BASE}/skus/sku_1"
    dr.add(method, url, status=503, json=error_body("service_unavailable"))
    dr.add(method, url, body=requests.exceptions.ReadTimeout("read timed out"))
    dr.add(method, url, body=refused())
    dr.add(method, url, status=status_ok, json={"id": "sku_1"} if status_ok != 204 else None)

    client = make_client(max_retries=3)
    call = {"GET": lambda: client.get("/skus/sku_1"), "PUT": lambda: client.put("/skus/sku_1", {"name": "Mug"})}
    call["DELETE"] = lambda: client.delete("/skus/sku_1")
    result = call[method]()

    assert len(dr.calls) == 4
    if status_ok != 204:
        assert result == {"id": "sku_1"}
    # Backoff 0.25 s doubling, with jitter over its upper half.
    assert len(fake_time.sleeps) == 3
    for delay, (low, high) in zip(fake_time.sleeps, [(0.125, 0.25), (0.25, 0.5), (0.5, 1.0)], strict=True):
        assert low <= delay <= high
    assert list(ApiCall.objects.order_by("id").values_list("status", flat=True)) == [503, None, None, status_ok]


def test_jitter_varies_between_retries_of_different_calls(make_client, dr, fake_time):
    for _ in range(20):
        dr.get(f"{BASE}/orders/1", status=503)
        dr.get(f"{BASE}/orders/1", status=200, json={})
    client = make_client()
    for _ in range(20):
        client.get("/orders/1")
    assert len(fake_time.sleeps) == 20
    assert len(set(fake_time.sleeps)) > 1


def test_safe_methods_stop_after_max_retries(make_client, dr, fake_time):
    dr.get(f"{BASE}/orders/1", status=503, json=error_body("service_unavailable"))

    with pytest.raises(errors.ServerError):
        make_client(max_retries=2).get("/orders/1")

    assert len(dr.calls) == 3  # the first try and two retries
    assert len(fake_time.sleeps) == 2
    assert ApiCall.objects.filter(path="/orders/1", status=503).count() == 3


def test_no_retries_when_max_retries_is_zero(make_client, dr, fake_time):
    dr.get(f"{BASE}/orders/1", status=503)

    with pytest.raises(errors.ServerError):
        make_client(max_retries=0).get("/orders/1")

    assert len(dr.calls) == 1
    assert fake_time.sleeps == []


def test_retry_after_seconds_is_honoured(make_client, dr, fake_time):
    dr.get(f"{BASE}/orders/1", status=429, headers={"Retry-After": "2"}, json=error_body("too_many_requests"))
    dr.get(f"{BASE}/orders/1", status=429, headers={"Retry-After": "5"}, json=error_body("too_many_requests"))
    dr.get(f"{BASE}/orders/1", status=200, json={"id": "1"})

    assert make_client().get("/orders/1") == {"id": "1"}
    assert fake_time.sleeps == [2.0, 5.0]


def test_retry_after_as_an_http_date_is_honoured(make_client, dr, fake_time):
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=6), usegmt=True)
    dr.get(f"{BASE}/orders/1", status=429, headers={"Retry-After": when})
    dr.get(f"{BASE}/orders/1", status=200, json={})

    make_client().get("/orders/1")

    [delay] = fake_time.sleeps
    assert 3.0 <= delay <= 6.0


def test_retry_after_on_a_503_is_honoured(make_client, dr, fake_time):
    dr.get(f"{BASE}/orders/1", status=503, headers={"Retry-After": "3"})
    dr.get(f"{BASE}/orders/1", status=200, json={})

    make_client().get("/orders/1")

    assert fake_time.sleeps == [3.0]


def test_retry_after_beyond_the_cap_gives_up_at_once(make_client, dr, fake_time):
    dr.get(f"{BASE}/orders/1", status=429, headers={"Retry-After": str(int(RETRY_CAP) + 1)})

    with pytest.raises(errors.RateLimited) as caught:
        make_client().get("/orders/1")

    assert caught.value.retry_after == RETRY_CAP + 1
    assert len(dr.calls) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": 503, "json": error_body("service_unavailable")}, errors.ServerError),
        ({"status": 500}, errors.ServerError),
        ({"status": 429, "headers": {"Retry-After": "1"}}, errors.RateLimited),
        ({"body": requests.exceptions.ReadTimeout("read timed out")}, errors.Timeout),
        ({"body": requests.exceptions.ConnectTimeout("connect timed out")}, errors.Timeout),
        ({"body": refused()}, errors.ConnectionFailed),
        ({"body": dropped()}, errors.ConnectionFailed),
    ],
)
def test_post_is_never_retried(make_client, dr, fake_time, answer, expected):
    dr.post(f"{BASE}/fulfillments", **answer)

    with pytest.raises(expected):
        make_client(max_retries=5).post("/fulfillments", {"orderId": "240"})

    assert len(dr.calls) == 1
    assert fake_time.sleeps == []
    assert ApiCall.objects.count() == 1


# --- pagination ---------------------------------------------------------------------------------------


def test_paginate_walks_three_pages_through_has_more_and_starting_after(make_client, dr):
    url = f"{BASE}/orders"
    dr.get(url, json={"hasMore": True, "data": [{"id": "o1"}, {"id": "o2"}]})
    dr.get(url, json={"hasMore": True, "data": [{"id": "o3"}, {"id": "o4"}]})
    dr.get(url, json={"hasMore": False, "data": [{"id": "o5"}]})

    items = list(make_client().paginate("/orders", {"state": "accepted"}, page_size=2))

    assert [item["id"] for item in items] == ["o1", "o2", "o3", "o4", "o5"]
    queries = [parse_qs(urlsplit(call.request.url).query) for call in dr.calls]
    assert queries == [
        {"state": ["accepted"], "limit": ["2"]},
        {"state": ["accepted"], "limit": ["2"], "startingAfter": ["o2"]},
        {"state": ["accepted"], "limit": ["2"], "startingAfter": ["o4"]},
    ]
    logged = list(ApiCall.objects.order_by("id").values_list("query", flat=True))
    assert logged == [
        "state=accepted&limit=2",
        "state=accepted&limit=2&startingAfter=o2",
        "state=accepted&limit=2&startingAfter=o4",
    ]


def test_paginate_is_lazy(make_client, dr):
    dr.get(f"{BASE}/orders", json={"hasMore": True, "data": [{"id": "o1"}]})

    pages = make_client().paginate("/orders", page_size=1)
    assert next(pages) == {"id": "o1"}
    assert len(dr.calls) == 1  # the second page is only asked for when needed


def test_paginate_a_list_without_has_more_is_one_page(make_client, dr):
    dr.get(f"{BASE}/fulfillment-orders", json={"data": [{"id": "fo1"}, {"id": "fo2"}]})

    assert [fo["id"] for fo in make_client().paginate("/fulfillment-orders")] == ["fo1", "fo2"]
    assert len(dr.calls) == 1


def test_paginate_stops_on_an_empty_page_even_if_has_more(make_client, dr):
    dr.get(f"{BASE}/orders", json={"hasMore": True, "data": []})

    assert list(make_client().paginate("/orders")) == []
    assert len(dr.calls) == 1


# --- rate limit ---------------------------------------------------------------------------------------


def acquisition_times(limiter: RateLimiter, fake_time: FakeTime, count: int) -> list[float]:
    times = []
    for _ in range(count):
        limiter.acquire()
        times.append(fake_time.now)
    return times


def most_in_any_window(times: list[float], width: float) -> int:
    """The most acquisitions in any half-open window [t, t + width) (windows starting at an acquisition
    are enough: sliding a window right until its start meets an acquisition never loses one)."""
    return max(sum(1 for other in times if 0 <= other - start < width) for start in times)


@pytest.mark.parametrize("rate", [25, 10, 7])
def test_rate_limiter_keeps_every_second_under_the_rate(fake_time, rate):
    limiter = RateLimiter(rate, clock=fake_time.clock, sleep=fake_time.sleep)

    times = acquisition_times(limiter, fake_time, rate * 4)

    assert most_in_any_window(times, 1.0) <= rate
    # ...without throttling below it: rate*4 calls take at most four seconds.
    assert times[-1] - times[0] <= 4.0


def test_rate_limiter_smooths_a_burst(fake_time):
    limiter = RateLimiter(25, clock=fake_time.clock, sleep=fake_time.sleep)
    start = fake_time.now

    times = acquisition_times(limiter, fake_time, 50)

    # A small burst goes at once (a fifth of a second's worth), then calls are spaced, not bunched.
    assert times[:5] == [start] * 5
    assert times[5] > start
    assert most_in_any_window(times, 0.2) <= 10
    assert most_in_any_window(times, 1.0) <= 25


def test_rate_limiter_refills_after_a_pause(fake_time):
    limiter = RateLimiter(25, clock=fake_time.clock, sleep=fake_time.sleep)
    acquisition_times(limiter, fake_time, 25)
    fake_time.now += 10
    sleeps_before = len(fake_time.sleeps)

    acquisition_times(limiter, fake_time, 5)

    assert len(fake_time.sleeps) == sleeps_before  # a rested limiter lets a small burst through at once


def test_rate_limiter_rejects_a_rate_that_is_not_positive():
    with pytest.raises(ImproperlyConfigured):
        RateLimiter(0)


def test_client_calls_go_through_the_rate_limiter(make_client, dr, fake_time):
    dr.get(f"{BASE}/orders/1", json={})
    start = fake_time.now
    client = make_client(rate_limit=5)  # one call at once, then one each 0.2 s

    for _ in range(4):
        client.get("/orders/1")

    assert fake_time.now - start >= 0.6 - 1e-6
    assert len(dr.calls) == 4


# --- headers ------------------------------------------------------------------------------------------


def test_headers_sent(make_client, dr):
    dr.get(f"{BASE}/orders/1", json={})
    dr.post(f"{BASE}/fulfillments", json={}, status=201)

    client = make_client(api_version="2021-12-13", application_id="dr-backoffice/1.2.3")
    client.get("/orders/1")
    client.post("/fulfillments", {"orderId": "1", "items": [{"itemId": "9", "quantity": 2}]})

    for call in dr.calls:
        headers = call.request.headers
        assert headers["Authorization"] == f"Bearer {KEY}"
        assert headers["DigitalRiver-Version"] == "2021-12-13"
        assert headers["upstream-application-id"] == "dr-backoffice/1.2.3"
        assert headers["Accept"] == "application/json"
    post = dr.calls[1].request
    assert post.headers["Content-Type"] == "application/json"
    assert json.loads(post.body) == {"orderId": "1", "items": [{"itemId": "9", "quantity": 2}]}


def test_no_version_header_unless_set(make_client, dr):
    dr.get(f"{BASE}/orders/1", json={})

    make_client().get("/orders/1")

    headers = dr.calls[0].request.headers
    assert "DigitalRiver-Version" not in headers
    assert "upstream-application-id" not in headers
    assert headers["Authorization"] == f"Bearer {KEY}"


def test_base_url_and_path_are_joined_with_one_slash(make_client, dr):
    dr.get(f"{BASE}/api/orders/1", json={"id": "1"})

    assert make_client(base_url=f"{BASE}/api/").get("orders/1") == {"id": "1"}


def test_a_missing_secret_key_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured):
        DigitalRiverClient(base_url=BASE, secret_key="")


def test_get_client_is_built_from_settings_and_shared(settings, dr):
    settings.DR_API_BASE_URL = "https://dr.example/"
    settings.DR_SECRET_KEY = "sk_test_from_settings_0123456789"
    settings.DR_API_VERSION = "2021-03-23"
    settings.DR_RATE_LIMIT_PER_SECOND = 40.0
    settings.DR_TIMEOUT_SECONDS = 3.0
    reset_client()
    dr.get("https://dr.example/orders/1", json={"id": "1"})

    client = get_client()
    assert get_client() is client
    assert client.get("/orders/1") == {"id": "1"}
    headers = dr.calls[0].request.headers
    assert headers["Authorization"] == "Bearer sk_test_from_settings_0123456789"
    assert headers["DigitalRiver-Version"] == "2021-03-23"
    assert headers["upstream-application-id"] == settings.DR_UPSTREAM_APPLICATION_ID
    assert client.limiter.rate == 40.0
    assert client.timeout == 3.0

    settings.DR_SECRET_KEY = "sk_test_another_key_9876543210"
    reset_client()
    assert get_client() is not client
    assert get_client().session.headers["Authorization"] == "Bearer sk_test_another_key_9876543210"


# --- the call log -------------------------------------------------------------------------------------


@pytest.fixture
def fake_monotonic(monkeypatch, fake_time):
    """Durations measured on the fake clock, so a slow answer can be simulated without waiting."""
    monkeypatch.setattr(client_module, "time", SimpleNamespace(monotonic=fake_time.clock, sleep=fake_time.sleep))
    return fake_time


def test_a_successful_call_is_logged(make_client, dr, fake_monotonic):
    def slow_answer(request):
        fake_monotonic.now += 0.25
        return (200, {"x-dr-requestid": "req-ok"}, json.dumps({"id": "240", "state": "accepted"}))

    dr.add_callback(responses.GET, f"{BASE}/orders/240", callback=slow_answer)

    with calls_about("order:240"):
        make_client().get("/orders/240", {"expand": "all", "ids": ["a", "b"]})

    call = ApiCall.objects.get()
    assert call.method == "GET"
    assert call.path == "/orders/240"
    assert call.query == "expand=all&ids=a&ids=b"
    assert call.status == 200
    assert call.duration_ms == 250
    assert call.request_id == "req-ok"
    assert call.error_code == ""
    assert call.error_message == ""
    assert call.request_body == ""
    assert json.loads(call.response_body) == {"id": "240", "state": "accepted"}
    assert call.subject == "order:240"
    assert call.started_at is not None and call.succeeded
    assert last_request_id() == "req-ok"


def test_an_error_answer_is_logged_with_its_code(make_client, dr):
    dr.post(
        f"{BASE}/fulfillments",
        status=409,
        json=error_body("conflict", ("order_fulfilled", "orderId", "Order 240 is fulfilled.")),
        headers={"x-dr-requestid": "req-409"},
    )

    with calls_about("order:240"), pytest.raises(errors.Conflict):
        make_client().post("/fulfillments", {"orderId": "240"})

    call = ApiCall.objects.get()
    assert (call.method, call.path, call.status) == ("POST", "/fulfillments", 409)
    assert call.request_id == "req-409"
    assert call.error_code == "order_fulfilled"
    assert "Order 240 is fulfilled." in call.error_message
    assert json.loads(call.request_body) == {"orderId": "240"}
    assert json.loads(call.response_body)["errors"][0]["code"] == "order_fulfilled"
    assert call.subject == "order:240"
    assert not call.succeeded


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (requests.exceptions.ReadTimeout("read timed out"), "timeout"),
        (requests.exceptions.ConnectTimeout("connect timed out"), "timeout"),
        (refused(), "connection_failed"),
    ],
)
def test_a_call_without_an_answer_is_logged(make_client, dr, failure, code):
    dr.get(f"{BASE}/orders/ok", json={}, headers={"x-dr-requestid": "req-earlier"})
    dr.post(f"{BASE}/fulfillments", body=failure)
    client = make_client()
    client.get("/orders/ok")

    with calls_about("order:7"), pytest.raises(errors.TransportError):
        client.post("/fulfillments", {"orderId": "7"})

    call = ApiCall.objects.get(path="/fulfillments")
    assert call.status is None
    assert call.request_id == ""
    assert call.error_code == code
    assert call.error_message
    assert call.response_body == ""
    assert json.loads(call.request_body) == {"orderId": "7"}
    assert call.subject == "order:7"
    assert last_request_id() == ""  # not the id of the call before


def test_every_try_of_a_retried_call_is_logged(make_client, dr):
    dr.get(f"{BASE}/orders/1", status=502, headers={"x-dr-requestid": "req-a"})
    dr.get(f"{BASE}/orders/1", status=200, json={}, headers={"x-dr-requestid": "req-b"})

    make_client().get("/orders/1")

    rows = list(ApiCall.objects.order_by("id").values_list("status", "request_id", "error_code"))
    assert rows == [(502, "req-a", ""), (200, "req-b", "")]


def test_subject_is_scoped_to_the_block(make_client, dr):
    dr.get(f"{BASE}/orders/1", json={})
    client = make_client()

    with calls_about("order:1"):
        with calls_about("fulfillment-order:9"):
            client.get("/orders/1")
        client.get("/orders/1")
    client.get("/orders/1")

    assert list(ApiCall.objects.order_by("id").values_list("subject", flat=True)) == [
        "fulfillment-order:9",
        "order:1",
        "",
    ]


def test_long_bodies_are_truncated(make_client, dr, settings):
    settings.DR_API_CALL_BODY_LIMIT = 100
    dr.put(f"{BASE}/skus/sku_1", json={"id": "sku_1", "description": "y" * 5000})

    make_client().put("/skus/sku_1", {"name": "x" * 5000})

    call = ApiCall.objects.get()
    assert len(call.request_body) == 100
    assert len(call.response_body) == 100
    assert call.request_body.startswith('{"name": "xxx') or call.request_body.startswith('{"name":"xxx')


def test_a_call_log_failure_does_not_fail_the_call(make_client, dr, monkeypatch):
    def broken(self, *args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(ApiCall, "save", broken)
    dr.get(f"{BASE}/orders/1", json={"id": "1"})

    assert make_client().get("/orders/1") == {"id": "1"}
    assert not ApiCall.objects.exists()


def test_an_answer_with_nul_characters_is_logged_inside_the_callers_transaction(make_client, dr):
    """The outbox writes its call log in the outcome's transaction without a savepoint
    (client.calls_write): a row must never be refused there, and PostgreSQL's text refuses NUL."""
    from django.db import transaction

    from digitalriver.client import calls_held, calls_write

    dr.get(f"{BASE}/orders/1", body="<html>bad\x00request</html>", status=400)
    with calls_held() as calls, pytest.raises(errors.DigitalRiverError):
        make_client().get("/orders/1")
    with transaction.atomic():
        calls_write(calls, in_callers_transaction=True)
        ApiCall.objects.count()  # the transaction is still usable

    call = ApiCall.objects.get()
    assert call.status == 400
    assert call.response_body == "<html>bad\ufffdrequest</html>"


# --- secrets never reach the call log ------------------------------------------------------------------

CARD_NUMBER = "4111111111111111"
CLIENT_SECRET = "src_7c1f_cs_8d2e4a6b9f0c"
WEBHOOK_SECRET = "whsec_0a9b8c7d6e5f4a3b"
PLAIN_WEBHOOK_SECRET = "Plain-Signing-Secret-77"  # no recognisable prefix: redacted because it is configured


def stored_text(call: ApiCall) -> str:
    return "\n".join(str(getattr(call, field.attname)) for field in ApiCall._meta.concrete_fields)


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def configured_secrets(settings):
    settings.DR_WEBHOOK_SECRETS = [WEBHOOK_SECRET, PLAIN_WEBHOOK_SECRET]


def test_secrets_never_reach_the_call_log(make_client, dr, configured_secrets):
    key = "rk_live_restricted_c0ffee1234"  # not the settings' key, not shaped like one: still kept out
    dr.post(
        f"{BASE}/sources",
        status=201,
        json={
            "id": "src_7c1f",
            "clientSecret": CLIENT_SECRET,
            "type": "creditCard",
            "creditCard": {"brand": "Visa", "lastFourDigits": "1111", "number": CARD_NUMBER},
            "metadata": {"note": f"echo Bearer {key}", "hook": WEBHOOK_SECRET, "other": PLAIN_WEBHOOK_SECRET},
        },
        headers={"x-dr-requestid": "req-src"},
    )

    body = {
        "type": "creditCard",
        "creditCard": {"number": CARD_NUMBER, "cvv": "9731", "expirationMonth": 12, "expirationYear": 2030},
        "webhookSecret": WEBHOOK_SECRET,
    }
    result = make_client(secret_key=key).post("/sources", body)
    assert result["clientSecret"] == CLIENT_SECRET  # the caller gets the real answer

    call = ApiCall.objects.get()
    assert_no_secrets(stored_text(call), key, CARD_NUMBER, "9731", CLIENT_SECRET, WEBHOOK_SECRET, PLAIN_WEBHOOK_SECRET)
    sent = json.loads(call.request_body)
    assert sent["creditCard"]["cvv"] == "[redacted]"
    assert sent["creditCard"]["expirationYear"] == 2030  # the rest stays readable
    answer = json.loads(call.response_body)
    assert answer["clientSecret"] == "[redacted]"
    assert answer["creditCard"]["lastFourDigits"] == "1111"
    assert call.request_id == "req-src"


def test_secrets_in_an_error_are_kept_out_of_the_call_log(make_client, dr, configured_secrets):
    dr.get(
        f"{BASE}/webhooks/wh_1",
        status=401,
        json=error_body("unauthorized", ("unauthorized", "", f"Key {KEY} may not read secret {WEBHOOK_SECRET}")),
    )

    with pytest.raises(errors.AuthenticationError):
        make_client().get("/webhooks/wh_1", {"token": "tok_abcdef1234567"})

    call = ApiCall.objects.get()
    assert_no_secrets(stored_text(call), KEY, WEBHOOK_SECRET, "tok_abcdef1234567")
    assert call.error_code == "unauthorized"


def test_secrets_in_an_answer_that_is_not_json_are_kept_out(make_client, dr, configured_secrets):
    body = f'oops {{"clientSecret": "{CLIENT_SECRET}", "number": {CARD_NUMBER}, Authorization: Bearer {KEY}'
    dr.get(f"{BASE}/sources/src_1", status=500, body=body, content_type="text/plain")

    with pytest.raises(errors.ServerError):
        make_client(max_retries=0).get("/sources/src_1")

    assert_no_secrets(stored_text(ApiCall.objects.get()), CLIENT_SECRET, CARD_NUMBER, KEY)


def test_a_secret_cut_in_half_by_truncation_is_not_left_behind(make_client, dr, settings):
    settings.DR_API_CALL_BODY_LIMIT = 40
    dr.get(f"{BASE}/sources/src_1", json={"id": "src_1", "clientSecret": CLIENT_SECRET})

    make_client().get("/sources/src_1")

    stored = stored_text(ApiCall.objects.get())
    assert CLIENT_SECRET[:12] not in stored


def test_a_read_while_a_person_waits_fails_fast_without_retries(make_client, dr, fake_time):
    dr.get(f"{BASE}/inventory-levels", status=503, json=error_body("service_unavailable"))

    with pytest.raises(errors.ServerError):
        make_client().get("/inventory-levels", {"inventoryItemIds": "A"}, while_a_person_waits=True)

    assert len(dr.calls) == 1
    assert fake_time.sleeps == []

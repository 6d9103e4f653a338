"""The client counts every call it logs, every 429 and every wait of its rate limiter (per process)."""

import pytest
from prometheus_client import REGISTRY

from digitalriver import errors

from .test_client import BASE, dr, error_body, fake_time, make_client  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_calls_are_counted_by_method_and_status_and_timed(make_client, dr):  # noqa: F811
    dr.get(f"{BASE}/orders/1", json={"id": "1"})
    dr.get(f"{BASE}/orders/3", status=429, json=error_body("too_many_requests"))
    before = {
        "get": value("dr_api_calls_total", method="GET", status="200"),
        "429s": value("dr_api_calls_total", method="GET", status="429"),
        "timed": value("dr_api_call_duration_seconds_count", method="GET"),
        "429": value("dr_api_rate_limited_total"),
    }
    client = make_client(max_retries=0)

    client.get("/orders/1")
    with pytest.raises(errors.RateLimited):
        client.get("/orders/3")

    assert value("dr_api_calls_total", method="GET", status="200") == before["get"] + 1
    assert value("dr_api_calls_total", method="GET", status="429") == before["429s"] + 1
    assert value("dr_api_call_duration_seconds_count", method="GET") == before["timed"] + 2
    assert value("dr_api_rate_limited_total") == before["429"] + 1


def test_a_call_without_an_answer_counts_as_status_none(make_client, dr):  # noqa: F811
    import requests

    dr.get(f"{BASE}/orders/2", body=requests.exceptions.ConnectTimeout("slow"))
    before = value("dr_api_calls_total", method="GET", status="none")

    with pytest.raises(errors.Timeout):
        make_client(max_retries=0).get("/orders/2")

    assert value("dr_api_calls_total", method="GET", status="none") == before + 1


def test_the_rate_limiter_counts_its_waits(make_client, dr, fake_time):  # noqa: F811
    for _ in range(3):
        dr.get(f"{BASE}/orders/4", json={"id": "4"})
    waits = value("dr_rate_limit_waits_total")
    waited = value("dr_rate_limit_wait_seconds_total")
    client = make_client(rate_limit=1.0)

    for _ in range(3):
        client.get("/orders/4")

    assert value("dr_rate_limit_waits_total") >= waits + 2
    assert value("dr_rate_limit_wait_seconds_total") - waited == pytest.approx(sum(fake_time.sleeps), abs=1e-6)

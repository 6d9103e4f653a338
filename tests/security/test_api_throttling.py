"""The REST API is throttled (DRF): a signed-in user gets API_THROTTLE_USER requests, an anonymous caller
API_THROTTLE_ANON, then 429 with Retry-After. The rates come from the environment (the tests set them
high, tests/environment.py, so the heavy API tests are never throttled). DR's webhook deliveries are
never throttled: DR retries, and a 429 would only make it deliver the same event again later."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework import throttling
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from digitalriver import signature
from tests.security.conftest import person, token_for

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def low_rates(monkeypatch):
    """The configured throttles at low rates. DRF reads the rates once, when rest_framework.throttling is
    imported (SimpleRateThrottle.THROTTLE_RATES), so a settings override alone would not reach them."""
    rates = {"anon": "3/minute", "user": "5/minute"}
    monkeypatch.setattr(throttling.SimpleRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    yield rates
    cache.clear()


def test_both_throttles_are_configured_with_the_rates_from_the_environment():
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ]
    assert APIView.throttle_classes == [throttling.AnonRateThrottle, throttling.UserRateThrottle]
    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == {
        "anon": os.environ["API_THROTTLE_ANON"],
        "user": os.environ["API_THROTTLE_USER"],
    }


def settings_in_a_fresh_process(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "API_", "AXES_"))}
    script = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps([s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'], s.REST_FRAMEWORK['NUM_PROXIES'], "
        "s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds()]))"
    )
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_DEBUG": "1", **env},
        capture_output=True,
        text=True,
    )


def test_the_defaults_and_the_environment_overrides():
    default = settings_in_a_fresh_process()
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout) == [{"anon": "60/minute", "user": "1200/minute"}, 0, 5, 900]
    overridden = settings_in_a_fresh_process(
        API_THROTTLE_ANON="10/hour",
        API_THROTTLE_USER="100/minute",
        API_NUM_PROXIES="1",
        AXES_FAILURE_LIMIT="10",
        AXES_COOLOFF_MINUTES="60",
    )
    assert overridden.returncode == 0, overridden.stderr
    assert json.loads(overridden.stdout) == [{"anon": "10/hour", "user": "100/minute"}, 1, 10, 3600]
    refused = settings_in_a_fresh_process(API_THROTTLE_USER="lots")
    assert refused.returncode != 0
    assert "API_THROTTLE_USER" in refused.stderr


def test_a_user_gets_429_past_the_configured_rate(low_rates, objects):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(person('busy', superuser=True))}")
    statuses = [client.get("/api/skus/").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = client.get("/api/orders/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    # Per user: someone else still gets through.
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {token_for(person('calm', superuser=True))}")
    assert other.get("/api/skus/").status_code == 200


def test_an_anonymous_caller_gets_429_past_the_configured_rate(low_rates):
    """Every /api/ endpoint answers an anonymous caller 401 before throttling; a view that admits
    anonymous callers gets the anonymous rate from the same defaults."""

    class Open(APIView):
        permission_classes = [AllowAny]

        def get(self, request):
            return Response({"ok": True})

    view = Open.as_view()
    factory = APIRequestFactory()
    statuses = [view(factory.get("/open/", REMOTE_ADDR="192.0.2.30")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # Anonymous callers are told apart by address (X-Forwarded-For is not trusted by default).
    spoofed = factory.get("/open/", REMOTE_ADDR="192.0.2.30", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert view(spoofed).status_code == 429
    assert view(factory.get("/open/", REMOTE_ADDR="192.0.2.31")).status_code == 200


def test_the_webhook_is_never_throttled(low_rates, client, settings):
    """Today a plain Django view; once it is a DRF view it must keep `throttle_classes = []`."""
    settings.DR_WEBHOOK_SECRETS = ["whsec_throttle_0123456789"]
    statuses = []
    for _ in range(10):
        event = {"id": str(uuid.uuid4()), "type": "test.throttle", "data": {"object": {}}}
        body = json.dumps(event).encode()
        header = signature.sign(settings.DR_WEBHOOK_SECRETS[0], body)
        statuses.append(
            client.post(
                "/webhooks/digitalriver/",
                data=body,
                content_type="application/json",
                HTTP_DIGITALRIVER_SIGNATURE=header,
            ).status_code
        )
    assert statuses == [202] * 10

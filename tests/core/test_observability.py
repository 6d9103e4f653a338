"""Sentry starts only when SENTRY_DSN is set, with Django's and Celery's integrations and no personal data."""

import os
import subprocess
import sys

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration

from config.observability import sentry_init


def test_no_dsn_no_sentry(monkeypatch):
    calls = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: calls.append(options))
    assert sentry_init("") is False
    assert calls == []


def test_a_dsn_starts_sentry_without_personal_data(monkeypatch):
    calls = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: calls.append(options))

    assert sentry_init("https://key@sentry.example.com/1", environment="production") is True

    (options,) = calls
    assert options["dsn"] == "https://key@sentry.example.com/1"
    assert options["send_default_pii"] is False
    assert options["environment"] == "production"
    assert {type(integration) for integration in options["integrations"]} == {DjangoIntegration, CeleryIntegration}


def test_settings_start_sentry_only_with_the_dsn():
    script = "import django, sentry_sdk; django.setup(); print(sentry_sdk.get_client().is_active())"
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1", "DR_SANDBOX": "1"}
    base.pop("SENTRY_DSN", None)

    def active(env: dict[str, str]) -> str:
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        return result.stdout.strip()

    assert active(base) == "False"
    assert active({**base, "SENTRY_DSN": "https://key@sentry.invalid/1"}) == "True"

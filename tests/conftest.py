import json
import uuid

import pytest
from django.conf import settings

from digitalriver import signature
from digitalriver.client import reset_client


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.TASKS_MODE = "inline"


@pytest.fixture(autouse=True)
def _fresh_client():
    reset_client()
    yield
    reset_client()


def make_event(event_type="order.accepted", obj=None, event_id=None, **extra):
    """An event envelope shaped like DR's."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": event_type,
        "data": {"object": obj if obj is not None else {"id": "231388420336", "state": "accepted"}},
        "liveMode": False,
        "createdTime": "2026-11-20T10:00:00Z",
        **extra,
    }


def signed_headers(body: bytes, secret: str | None = None, timestamp: int | None = None) -> dict:
    secret = secret or settings.DR_WEBHOOK_SECRETS[0]
    return {"HTTP_DIGITALRIVER_SIGNATURE": signature.sign(secret, body, timestamp)}


@pytest.fixture
def post_event(client, django_capture_on_commit_callbacks):
    """POST an event (dict or raw bytes) to the webhook endpoint, signed unless told otherwise.

    Jobs queued on commit run before it returns, as they would right after the answer.
    """

    def post(event, *, headers=None, sign=True):
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        extra = signed_headers(body) if sign else {}
        extra.update(headers or {})
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/webhooks/digitalriver/", data=body, content_type="application/json", **extra)

    return post


def restore_roles() -> dict:
    """The groups the data migrations create, made again if missing: a transactional test's flush
    empties the tables, and only permissions and content types come back by themselves."""
    from importlib import import_module

    from django.contrib.auth.models import Group, Permission

    roles = {
        "Merchandisers": import_module("catalog.migrations.0002_merchandisers_group").MERCHANDISER_PERMISSIONS,
        **import_module("fulfillment.migrations.0004_roles").ROLES,
    }
    # operations/migrations/0002 lets Operations see the alerts it is sent.
    roles["Operations"] = [*roles["Operations"], ("operations", "operationsalert", ["view_operationsalert"])]
    groups = {}
    for name, grants in roles.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, model, codenames in grants:
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label, content_type__model=model, codename__in=codenames
                )
            )
        groups[name] = group
    return groups

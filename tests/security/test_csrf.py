"""A signed-in person's browser cannot be made to change anything from another site: every admin action
and button, and the API under session auth, refuse a POST without the CSRF token. A superuser does the
posting, so only the token decides; with the token the same POST goes through (the control)."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from digitalriver import signature
from digitalriver.models import WebhookEvent
from tests.security.conftest import person, token_for
from tests.security.test_role_permissions import (
    ACTIONS,
    ADMIN_BUTTONS,
    BUTTONS,
    OPERATIONS,
    api_path,
    button_args,
    spy,
)

pytestmark = pytest.mark.django_db

#: Actions that run on a selection: delete_selected is nobody's but the SKU's, so the others are left out.
RUNNABLE = [(label, name) for label, name in ACTIONS if name != "delete_selected" or label == "catalog.sku"]
UNSAFE_OPERATIONS = [(method, path) for method, path in OPERATIONS if method not in ("GET", "HEAD", "OPTIONS")]


@pytest.fixture
def browser(db):
    """A superuser's browser that enforces CSRF like a real one."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(person("root", superuser=True))
    return client


def csrf_token(client: Client, page: str) -> str:
    client.get(page)
    return client.cookies["csrftoken"].value


def changelist(label: str) -> str:
    return reverse(f"admin:{label.replace('.', '_')}_changelist")


@pytest.mark.parametrize(("label", "action"), RUNNABLE, ids=[f"{label}:{name}" for label, name in RUNNABLE])
def test_admin_action_without_the_token_is_refused(browser, dr, monkeypatch, label, action):
    calls = spy(monkeypatch, label, action)
    url = changelist(label)
    form = {"action": action, "index": "0", "_selected_action": ["0"]}

    response = browser.post(url, form)
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert calls == []

    response = browser.post(url, {**form, "csrfmiddlewaretoken": "x" * 32})  # a made-up token
    assert response.status_code == 403
    assert calls == []

    response = browser.post(url, {**form, "csrfmiddlewaretoken": csrf_token(browser, url)})
    assert response.status_code != 403
    assert calls == ["root"], "the control failed: with the token the action should run"


@pytest.mark.parametrize("name", sorted(BUTTONS))
def test_admin_button_post_without_the_token_is_refused(browser, dr, objects, name):
    _method, about, _roles = ADMIN_BUTTONS[name]
    url = reverse(f"admin:{name}", args=button_args(about, objects))
    response = browser.post(url)
    assert response.status_code == 403
    assert b"CSRF" in response.content
    page = reverse("admin:index")
    response = browser.post(url, {"csrfmiddlewaretoken": csrf_token(browser, page)})
    assert response.status_code != 403


def test_admin_login_without_the_token_is_refused(db):
    person("someone")
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "someone", "password": "x"})
    assert response.status_code == 403


def test_admin_delete_and_change_forms_need_the_token(browser, objects):
    sku = objects["sku"]
    for url in (reverse("admin:catalog_sku_delete", args=[sku.pk]), reverse("admin:catalog_sku_change", args=[sku.pk])):
        response = browser.post(url, {"post": "yes", "name": "Hijacked"})
        assert response.status_code == 403
    sku.refresh_from_db()
    assert sku.name == "Security widget"


@pytest.mark.parametrize(("method", "path"), UNSAFE_OPERATIONS, ids=[f"{m} {p}" for m, p in UNSAFE_OPERATIONS])
def test_api_write_with_the_session_cookie_needs_the_token(browser, dr, objects, method, path):
    url = api_path(path, objects)
    response = browser.generic(method, url, data="{}", content_type="application/json", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    token = csrf_token(browser, reverse("admin:index"))
    response = browser.generic(
        method, url, data="{}", content_type="application/json", HTTP_ACCEPT="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code != 403, response.content[:200]


def test_api_write_with_a_token_needs_no_csrf_token(dr, objects):
    """A Token header is not sent by a browser on its own, so it is not a CSRF risk and needs no token."""
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {token_for(person('api', superuser=True))}")
    response = client.post(f"/api/skus/{objects['sku'].sku_id}/sync/", HTTP_ACCEPT="application/json")
    assert response.status_code == 202


def test_the_webhook_ignores_the_session_and_needs_no_csrf_token(browser, settings):
    """The signature is the webhook's only authentication: a signed-in browser's POST without a CSRF
    token and without a signature is refused for the signature (400, not a CSRF 403) and stores nothing;
    DR, which has neither a session nor a CSRF token, gets in with the signature alone."""
    body = json.dumps({"id": "evt-csrf-1", "type": "order.accepted", "data": {"object": {}}}).encode()
    response = browser.post("/webhooks/digitalriver/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": "missing DigitalRiver-Signature header"}
    assert not WebhookEvent.objects.exists()

    header = signature.sign(settings.DR_WEBHOOK_SECRETS[0], body)
    response = browser.post(
        "/webhooks/digitalriver/", data=body, content_type="application/json", HTTP_DIGITALRIVER_SIGNATURE=header
    )
    assert response.status_code == 202, response.content
    assert response.json() == {"id": "evt-csrf-1", "status": "accepted"}
    dr = Client(enforce_csrf_checks=True)
    response = dr.post(
        "/webhooks/digitalriver/", data=body, content_type="application/json", HTTP_DIGITALRIVER_SIGNATURE=header
    )
    assert response.status_code == 200
    assert response.json() == {"id": "evt-csrf-1", "status": "duplicate"}
    assert WebhookEvent.objects.count() == 1

"""No secret and no card number reaches a log line, the call log, the inbox's headers, the order
mirror, the outbox's records, the API or an admin page.

A flow is driven with secret-looking values everywhere DR could put them: our live key and webhook
secret echoed in DR's answers and error messages, payment `clientSecret`s in the order (on the sources
and the payment session), a full card number in a response and in an error message, credentials in a
webhook delivery's headers. Then everything that is kept or shown is searched for each value.

The inbox keeps no payment secret either: `WebhookEvent.body` and `payload` are stored with the
`clientSecret`s, the card number and the password (all under keys that name them) redacted, after the
signature was checked on the raw body. A card number written into free text (a note) is left in the
stored event, where the app reads DR's data as DR sent it, and masked wherever it is shown.
"""

import copy
import json
import logging
import re
import uuid

import pytest
import responses
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from catalog.models import Sku
from catalog.services import sku_create, skus_push
from commerce.models import Order
from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent
from tests.conftest import fixture
from tests.security.conftest import DR_TEST_URL, person

DR_KEY = "sk_live_SecSuiteKey7f3a9c2e1b5d"
WEBHOOK_SECRET = "whsec_SecSuiteHook4d8e2b6a0c"
SOURCE_CLIENT_SECRET = "src_SecSuite_client_secret_9Qz8Yx7W"
SESSION_CLIENT_SECRET = "sess_SecSuite_client_secret_3Kp2Lm1N"
CARD = "4111111111111111"
CARD_SPACED = "4242 4242 4242 4242"
PASSWORD = "hunter2-SecSuite-pw"
SECRETS = {
    "DR key": DR_KEY,
    "webhook secret": WEBHOOK_SECRET,
    "source clientSecret": SOURCE_CLIENT_SECRET,
    "session clientSecret": SESSION_CLIENT_SECRET,
    "card number": CARD,
    "spaced card number": CARD_SPACED,
    "password": PASSWORD,
}

PUSHABLE = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "part_number": "PN-SEC"}
DR_ORDER = fixture("order.json")
ORDER_ID = DR_ORDER["id"]


def dr_order_with_secrets() -> dict:
    """DR's documented order, with what a real one (or a careless proxy) could add."""
    order = copy.deepcopy(DR_ORDER)
    source = order["payment"]["sources"][0]
    source["clientSecret"] = SOURCE_CLIENT_SECRET
    source["creditCard"]["number"] = CARD
    order["payment"]["session"] = {
        "id": "ses_1",
        "amountContributed": 70.17,
        "state": "complete",
        "clientSecret": SESSION_CLIENT_SECRET,
    }
    order["metadata"] = {"note": f"paid with {CARD_SPACED}", "apiPassword": PASSWORD}
    return order


def dr_error(status: int, *, code: str = "bad_request") -> tuple[int, dict, str]:
    """An error whose message echoes what it should not (DR does quote parameters back)."""
    message = f"Card {CARD} refused for key {DR_KEY}; webhook {WEBHOOK_SECRET}"
    return status, {}, json.dumps({"type": "bad_request", "errors": [{"code": code, "message": message}]})


@pytest.fixture
def leaky_dr(settings):
    settings.DR_API_BASE_URL = DR_TEST_URL
    settings.DR_SECRET_KEY = DR_KEY
    settings.DR_WEBHOOK_SECRETS = [WEBHOOK_SECRET]
    settings.DR_CLIENT_MAX_RETRIES = 1
    settings.DR_RATE_LIMIT_PER_SECOND = 10_000
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    state = {"order_calls": 0, "refuse_orders": False}

    def answer(request):
        path = request.url.removeprefix(DR_TEST_URL)
        if request.method == "GET" and path.startswith(f"/orders/{ORDER_ID}"):
            state["order_calls"] += 1
            if state["refuse_orders"]:
                return dr_error(400)
            if state["order_calls"] == 1:  # DR is down once, then answers (the client retries a read)
                return dr_error(503, code="service_unavailable")
            return 200, {}, json.dumps(dr_order_with_secrets())
        if request.method == "PUT" and path.startswith("/skus/"):
            return dr_error(400, code="invalid_parameter")
        if request.method == "GET" and path.startswith("/sources/"):
            return 200, {}, json.dumps({"id": "src_1", "clientSecret": SOURCE_CLIENT_SECRET, "number": CARD})
        return 404, {}, json.dumps({"type": "not_found", "errors": [{"code": "not_found", "message": "Not found."}]})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        for method in (responses.GET, responses.POST, responses.PUT, responses.DELETE):
            mocked.add_callback(method, re.compile(re.escape(DR_TEST_URL) + r"/.*"), callback=answer)
        yield state


def leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


def rows_as_text(model, exclude=()) -> str:
    fields = [f.attname for f in model._meta.concrete_fields if f.attname not in exclude]
    return json.dumps(list(model.objects.values(*fields)), default=str)


@pytest.fixture
def flow(leaky_dr, post_event, django_capture_on_commit_callbacks, caplog):
    """Deliver order.accepted (which reads the order from DR), push a SKU DR refuses, refresh the order
    from the admin while DR is down once; everything with every logger at DEBUG."""
    caplog.set_level(logging.DEBUG)
    event = {
        "id": str(uuid.uuid4()),
        "type": "order.accepted",
        "data": {"object": dr_order_with_secrets()},
        "liveMode": True,
        "createdTime": "2026-11-20T10:00:00Z",
    }
    # Signed with WEBHOOK_SECRET, the one secret leaky_dr configures.
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {DR_KEY}",
        "HTTP_COOKIE": f"sessionid={PASSWORD}",
        "HTTP_X_DR_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    response = post_event(event, headers=headers)
    assert response.status_code == 202, response.content
    assert Order.objects.filter(dr_order_id=ORDER_ID).exists(), "the handler should have mirrored the order"

    with django_capture_on_commit_callbacks(execute=True):
        sku = sku_create(values={"sku_id": "SEC-PUSH", "name": "Pushed", **PUSHABLE})
        skus_push(skus=[sku])
    assert Attempt.objects.exists(), "the push should have been tried"

    staff = Client()
    staff.force_login(person("root", superuser=True))
    order = Order.objects.get(dr_order_id=ORDER_ID)
    refresh = reverse("admin:commerce_order_refresh", args=[order.pk])
    with django_capture_on_commit_callbacks(execute=True):
        refreshed = staff.post(refresh, follow=True)
    leaky_dr["refuse_orders"] = True  # DR refuses, quoting the card and our secrets in its message
    with django_capture_on_commit_callbacks(execute=True):
        refused = staff.post(refresh, follow=True)
    assert refreshed.status_code == refused.status_code == 200
    assert b"refused" in refused.content
    return {
        "staff": staff,
        "refreshed": [refreshed, refused],
        "event": WebhookEvent.objects.get(dr_event_id=event["id"]),
    }


@pytest.mark.django_db
def test_the_flow_touched_everything_searched(flow):
    """The control: the searches below look at rows that exist and at DR answers that carried secrets."""
    assert ApiCall.objects.filter(path__startswith="/orders/").count() >= 2
    assert ApiCall.objects.filter(status=400).exists()
    assert Instruction.objects.exclude(last_error="").exists()
    assert "clientSecret" in flow["event"].body  # the delivery carried them (and they were redacted)


#: What DR's delivery carried under keys that say what they are: none of it is stored.
KEYED_IN_THE_DELIVERY = ("source clientSecret", "session clientSecret", "card number", "password")


@pytest.mark.django_db
def test_the_inbox_keeps_no_payment_secret_in_body_or_payload(flow):
    event = flow["event"]
    for name in KEYED_IN_THE_DELIVERY:
        assert SECRETS[name] not in event.body, name
        assert SECRETS[name] not in json.dumps(event.payload), name
    assert json.loads(event.body) == event.payload
    payment = event.payload["data"]["object"]["payment"]
    assert payment["sources"][0]["clientSecret"] == payment["session"]["clientSecret"] == "[redacted]"


@pytest.mark.django_db
def test_no_secret_in_any_log_line(flow, caplog):
    for record in caplog.records:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        assert not leaks(text), f"{record.name}: {leaks(text)} in {text[:300]!r}"


@pytest.mark.django_db
def test_no_secret_in_the_call_log(flow):
    text = rows_as_text(ApiCall)
    assert not leaks(text), leaks(text)


@pytest.mark.django_db
def test_no_secret_in_the_outbox_records(flow):
    text = rows_as_text(Instruction) + rows_as_text(Attempt)
    assert not leaks(text), leaks(text)


@pytest.mark.django_db
def test_no_credential_in_the_stored_webhook_headers(flow):
    headers = json.dumps(flow["event"].headers)
    assert not leaks(headers), leaks(headers)
    assert "[redacted]" in headers


def keys_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return {str(key) for key in value} | {k for item in value.values() for k in keys_anywhere(item)}
    if isinstance(value, list):
        return {k for item in value for k in keys_anywhere(item)}
    return set()


@pytest.mark.django_db
def test_the_order_mirror_keeps_no_client_secret_of_a_source(flow):
    assert SOURCE_CLIENT_SECRET not in rows_as_text(Order)


@pytest.mark.django_db
def test_the_order_mirror_keeps_no_client_secret_anywhere(flow):
    order = Order.objects.get(dr_order_id=ORDER_ID)
    assert "clientSecret" not in keys_anywhere(order.raw)
    assert SESSION_CLIENT_SECRET not in rows_as_text(Order)


@pytest.mark.django_db
def test_no_secret_in_the_api(flow):
    staff = flow["staff"]
    for url in ("/api/orders/", f"/api/orders/{ORDER_ID}/", f"/api/orders/{ORDER_ID}/cancellations/", "/api/skus/"):
        response = staff.get(url, HTTP_ACCEPT="application/json")
        assert response.status_code == 200, url
        assert not leaks(response.content.decode()), (url, leaks(response.content.decode()))


def admin_pages() -> list[str]:
    """Every registered model's list and each of its rows' change pages."""
    urls = []
    for model, model_admin in admin.site._registry.items():
        info = model._meta.app_label, model._meta.model_name
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.__class__.changelist_view is not admin.ModelAdmin.changelist_view:
            continue  # a page of its own (the dashboard), not a list of rows
        pks = model.objects.values_list("pk", flat=True)
        urls += [reverse("admin:{}_{}_change".format(*info), args=[pk]) for pk in pks]
    return urls


@pytest.mark.django_db
def test_no_secret_on_any_admin_page(flow):
    staff = flow["staff"]
    for page in flow["refreshed"]:
        assert not leaks(page.content.decode()), "the refresh's message quoted DR's error"
    pages = admin_pages()
    assert reverse("admin:digitalriver_webhookevent_change", args=[flow["event"].pk]) in pages
    for url in pages:
        response = staff.get(url)
        assert response.status_code == 200, url
        found = leaks(response.content.decode())
        assert not found, f"{url} shows {found}"


@pytest.mark.django_db
def test_sku_pages_show_no_secret_either(flow):
    """DR's copies of a SKU are shown as JSON too."""
    sku = Sku.objects.get(sku_id="SEC-PUSH")
    Sku.objects.filter(pk=sku.pk).update(dr_sku={"id": sku.sku_id, "secretKey": DR_KEY, "number": CARD})
    response = flow["staff"].get(reverse("admin:catalog_sku_change", args=[sku.pk]))
    assert response.status_code == 200
    assert not leaks(response.content.decode())


def test_every_model_with_a_json_field_is_searched():
    """A new JSON column is where a DR answer would land: make sure the admin pages above cover its model."""
    registered = set(admin.site._registry)
    with_json = {
        model
        for model in apps.get_models()
        if model._meta.app_label in {"digitalriver", "commerce", "fulfillment", "catalog"}
        and any(field.get_internal_type() == "JSONField" for field in model._meta.concrete_fields)
    }
    shown_inline = {"commerce.orderline", "commerce.charge", "commerce.chargeoperation", "digitalriver.attempt"}
    missing = {m._meta.label_lower for m in with_json - registered} - shown_inline
    assert not missing, f"not in the admin, so not searched: {missing}"

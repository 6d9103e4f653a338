"""Shared by every test: in-line jobs, a fresh DR client, DR's documented payloads and events posted
to our inbox, the role groups, people with permissions and API clients for them, and two ways to drive
the flow: DR's payloads delivered straight to our inbox (fast, no DR), and the app and the sandbox
talking over real HTTP on one live server (pushes, orders, warehouse actions, signed deliveries, and
the outbox sending back).

Also the suite's two collection rules: tests marked ``postgres`` are skipped unless the database is
PostgreSQL, and tests that need a transactional database, a live server, a browser, Celery or the
chaos setup are marked ``slow`` (``make test-fast`` runs the rest: ``-m "not slow"``)."""

import json
import threading
import uuid
from pathlib import Path

import pytest
import responses
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from django.db import connection, connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Sku
from catalog.services import sku_create, skus_push
from commerce.models import Order
from digitalriver import registry, signature
from digitalriver.client import reset_client
from digitalriver.models import WebhookEvent
from digitalriver.services.outbox import outbox_sweep
from sandbox.delivery import deliver_due
from sandbox.models import Order as SandboxOrder
from sandbox.services.orders import Line, order_place
from tests.contract.hooks import dr_contract, dr_contract_off  # noqa: F401 (fixtures: DR's spec at the edges)

#: Fixtures of the document and chargeback tests (DR mocked at the edge, no writes to disk).
pytest_plugins = ("tests.documents_support",)

# --- collection: the postgres marker, and the slow lane --------------------------------------------

#: Fixtures that make a test slow: each transactional test flushes every table afterwards, and a live
#: server is a thread serving real HTTP.
SLOW_FIXTURES = {"transactional_db", "live_server", "django_db_reset_sequences", "django_db_serialized_rollback"}
#: Markers whose tests need more than this process: chromium, a Celery broker and worker, real processes.
SLOW_MARKERS = ("browser", "celery", "chaos")


def _transactional(marker) -> bool:
    """Whether a ``django_db`` marker asks for a transactional database (its keywords or positions)."""

    def read(transaction=False, reset_sequences=False, databases=None, serialized_rollback=False, **_):
        return bool(transaction or reset_sequences or serialized_rollback)

    return read(*marker.args, **marker.kwargs)


def is_slow(item) -> bool:
    marker = item.get_closest_marker("django_db")
    return (
        (marker is not None and _transactional(marker))
        or not SLOW_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
        or any(item.get_closest_marker(name) for name in SLOW_MARKERS)
    )


def pytest_collection_modifyitems(config, items):
    on_postgres = connection.vendor == "postgresql"
    needs_postgres = pytest.mark.skip(
        reason=f"needs PostgreSQL (DATABASE_URL=postgres://…); this run uses {connection.vendor}"
    )
    for item in items:
        if item.get_closest_marker("postgres") and not on_postgres:
            item.add_marker(needs_postgres)
        if is_slow(item):
            item.add_marker(pytest.mark.slow)


# --- every test --------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _inline_jobs(settings):
    settings.TASKS_MODE = "inline"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Passwords hashed with MD5: the production hasher spends a quarter of a second of CPU on each
    user created with a password and on each login, which made up a third of the unit tests' time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
    """The role groups, made whole again: the same ``roles_sync`` that runs after every migrate."""
    from core.roles import roles_sync

    return roles_sync()


# --- people and API clients --------------------------------------------------------------------------


def user_with(username: str, *codenames: str, app_label: str = "commerce") -> User:
    """A user (not staff, in no group) holding the named permissions of ``app_label``'s models."""
    user = User.objects.create_user(username, password="secret-pass-123")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
    return user


def token_client(user: User) -> APIClient:
    """A DRF client that calls with ``user``'s token, as another program would."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def merchandiser(db):
    """A staff user in the Merchandisers group (its permissions come from the roles), who can also
    sign in with a password, for the API's session login."""
    user = User.objects.create_user("merch", password="secret-pass-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Merchandisers"))
    return user


@pytest.fixture
def merchandiser_client(client, merchandiser):
    client.force_login(merchandiser)
    return client


COMMON = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "weight": 1, "weight_unit": "lb"}


class Flow:
    def __init__(self, live_server):
        self.live_server = live_server

    def sku(self, sku_id: str, model=Sku.FulfillmentModel.DISTRIBUTED, **values) -> Sku:
        values = {"name": f"Product {sku_id}", "part_number": f"PN-{sku_id}", **COMMON, **values}
        if model == Sku.FulfillmentModel.DIGITAL:
            values.update(tax_code="4512.2", part_number="", weight=None)
        sku = sku_create(values={"sku_id": sku_id, "fulfillment_model": model, **values})
        skus_push(skus=[sku])
        self.settle()
        sku = Sku.objects.get(pk=sku.pk)
        assert sku.sync_state == Sku.SyncState.SYNCED, sku.sync_error
        return sku

    def place(self, *lines: tuple[str, int], state="accepted") -> SandboxOrder:
        order = order_place(lines=[Line(sku_id=sku_id, quantity=quantity) for sku_id, quantity in lines], state=state)
        self.settle()
        return order

    def settle(self, rounds: int = 20) -> None:
        """Deliver events and send instructions until nothing moves (jobs run inline after commit)."""
        for _ in range(rounds):
            moved = deliver_due() + outbox_sweep(ignore_backoff=True).sent
            if not moved:
                return
        raise AssertionError("the flow did not settle")


@pytest.fixture
def flow(live_server, settings):
    settings.DR_API_BASE_URL = f"{live_server.url}/sandbox/api"
    settings.SANDBOX_DEFAULT_WEBHOOK_URL = f"{live_server.url}/webhooks/digitalriver/"
    settings.CATALOG_PUSH_DELAY_SECONDS = 0
    return Flow(live_server)


# --- DR's documented payloads, delivered to our inbox --------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dr"


def fixture(name: str) -> dict:
    """One of DR's documented payloads (tests/fixtures/dr/<name>), a fresh copy each call."""
    return json.loads((FIXTURES / name).read_text())


def dr_order(**changes) -> dict:
    """DR's documented order with ``changes`` laid over it."""
    return {**fixture("order.json"), **changes}


def mirrored(placed) -> Order:
    """Our mirror of an order placed at the sandbox."""
    return Order.objects.get(dr_order_id=placed.dr_id)


@pytest.fixture
def catalog():
    common = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "part_number": "P-1"}
    Sku.objects.create(sku_id="dist-1", name="Distributed widget", **common)
    Sku.objects.create(sku_id="orch-1", name="Managed", fulfillment_model=Sku.FulfillmentModel.ORCHESTRATED, **common)


@pytest.fixture
def deliver(post_event):
    def deliver_event(event_type: str, obj: dict, event_id: str | None = None):
        response = post_event(make_event(event_type, obj, event_id=event_id))
        assert response.status_code in (200, 202), response.content
        event = WebhookEvent.objects.get(dr_event_id=response.json()["id"])
        assert event.state == WebhookEvent.State.PROCESSED, event.error
        return event

    return deliver_event


def fulfillment_order(updated: str | None = None, **line_counters) -> dict:
    data = fixture("fulfillment_order.json")
    data["items"][0].update(line_counters)
    if updated:
        data["updatedTime"] = updated
    return data


@pytest.fixture
def no_dr(settings):
    """Nothing here may reach DR (the events carry all a handler needs); sends fail at once."""
    settings.DR_API_BASE_URL = "https://dr.invalid"
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        yield


@pytest.fixture
def accepted_order(catalog, deliver, no_dr):
    deliver("order.accepted", fixture("order.json"))
    deliver("fulfillment_order.pending", fulfillment_order())
    return Order.objects.get(dr_order_id="231388420336")


# --- an instruction of no business kind ------------------------------------------------------------


class EchoPerformer(registry.Performer):
    """Sends its instruction's payload as a capture: for tests of the outbox itself."""

    kind = "test.echo"

    def perform(self, instruction, client):
        return client.post("/fulfillments", instruction.payload)


@pytest.fixture
def echo_performer(settings):
    """``test.echo`` instructions are sent to https://dr.invalid (answer them with ``responses``)."""
    settings.DR_API_BASE_URL = "https://dr.invalid"
    registry.register_performer(EchoPerformer())
    yield EchoPerformer.kind
    registry.unregister_performer(EchoPerformer.kind)


def in_threads(count, target):
    """Run target(index) in `count` threads released together; return their results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def run(index):
        try:
            barrier.wait(timeout=10)
            results[index] = target(index)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return results

"""The hand-written statements of the busiest path (core/db.py) read and write rows as the ORM does,
on SQLite and PostgreSQL alike."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commerce.models import Order
from core.db import Slot, insert_unless_exists, row_compiled, update_returning_compiled
from digitalriver.models import Instruction, WebhookEvent

pytestmark = pytest.mark.django_db


def stored_event(**fields) -> WebhookEvent:
    return WebhookEvent.objects.create(
        dr_event_id="evt_1", type="order.accepted", body='{"id": "evt_1"}', payload={"data": {"n": 1}}, **fields
    )


def test_update_returning_gives_the_row_as_the_update_left_it_converted_like_a_select():
    event = stored_event(attempts=2)
    until = timezone.now() + timedelta(seconds=15)

    def build():
        received = WebhookEvent.objects.filter(pk=event.pk, state=WebhookEvent.State.RECEIVED)
        return received, {"lease_expires_at": until, "attempts": F("attempts") + 1}

    claimed = update_returning_compiled(WebhookEvent, "test claim", build, values={}, defer=("body", "headers"))

    assert claimed is not None and claimed.pk == event.pk
    assert claimed.attempts == 3  # the expression's result, not the value before
    assert claimed.lease_expires_at == until  # an aware datetime on both databases
    assert claimed.payload == {"data": {"n": 1}}  # JSON decoded
    assert claimed.received_at == WebhookEvent.objects.get(pk=event.pk).received_at
    assert claimed.get_deferred_fields() == {"body", "headers"}
    assert claimed.body == '{"id": "evt_1"}'  # read when asked for, as a deferred field is
    assert WebhookEvent.objects.get(pk=event.pk).attempts == 3


def test_update_returning_changes_and_returns_nothing_when_no_row_matches():
    event = stored_event()

    def build():
        return WebhookEvent.objects.filter(pk=event.pk, state=WebhookEvent.State.PROCESSED), {"attempts": 9}

    assert update_returning_compiled(WebhookEvent, "test no match", build, values={}) is None
    assert WebhookEvent.objects.get(pk=event.pk).attempts == 0


def test_update_returning_compiled_builds_the_statement_once_and_fills_its_slots_on_every_run():
    first, second = (Instruction.objects.create(kind="test.kind", subject=f"order:{n}", payload={}) for n in (1, 2))
    builds = []

    def build():
        builds.append(1)
        rows = Instruction.objects.filter(
            pk=Slot("pk", Instruction, "id"), created_at__lte=Slot("now", Instruction, "created_at")
        )
        changes = {
            "claim_token": Slot("token", Instruction, "claim_token"),  # a UUID: 32 characters on SQLite
            "lease_expires_at": Slot("until", Instruction, "lease_expires_at"),  # a string on SQLite
            "attempts": F("attempts") + 1,
        }
        return rows, changes

    def claim(row, *, now, token, until):
        values = {"pk": row.pk, "now": now, "token": token, "until": until}
        return update_returning_compiled(Instruction, "test claim", build, values=values)

    now = timezone.now()
    tokens, until = (uuid.uuid4(), uuid.uuid4()), now + timedelta(minutes=5)
    claimed = claim(first, now=now, token=tokens[0], until=until)
    assert claimed.pk == first.pk and claimed.claim_token == tokens[0] and claimed.lease_expires_at == until
    assert claim(second, now=now, token=tokens[1], until=until + timedelta(seconds=1)).claim_token == tokens[1]
    assert claim(first, now=now - timedelta(days=1), token=uuid.uuid4(), until=until) is None  # created later

    assert builds == [1]
    assert {row.pk: (row.claim_token, row.attempts) for row in Instruction.objects.all()} == {
        first.pk: (tokens[0], 1),
        second.pk: (tokens[1], 1),
    }
    assert Instruction.objects.filter(lease_expires_at__gt=until).get() == second  # compared as the ORM does


def test_row_compiled_reads_the_row_as_get_does_with_its_lock_and_builds_the_query_once():
    orders = [
        Order.objects.create(dr_order_id=f"10{n}", currency="USD", total_amount=Decimal("70.17"), raw={"n": n})
        for n in (1, 2)
    ]
    builds = []

    def build():
        builds.append(1)
        return Order.objects.select_for_update().filter(dr_order_id=Slot("id", Order, "dr_order_id"))

    with CaptureQueriesContext(connection) as queries:
        read = [row_compiled(Order, "test lock", build, values={"id": order.dr_order_id}) for order in orders]

    for row, order in zip(read, orders, strict=True):
        expected = Order.objects.get(pk=order.pk)
        assert row.pk == order.pk and not row._state.adding
        assert {f.attname: getattr(row, f.attname) for f in Order._meta.concrete_fields} == {
            f.attname: getattr(expected, f.attname) for f in Order._meta.concrete_fields
        }
    assert read[1].raw == {"n": 2} and read[1].total_amount == Decimal("70.17")  # converted as a SELECT's
    assert builds == [1]
    assert all(("FOR UPDATE" in query["sql"]) == connection.features.has_select_for_update for query in queries)
    with pytest.raises(Order.DoesNotExist):
        row_compiled(Order, "test lock", build, values={"id": "nope"})


@pytest.mark.django_db(transaction=True)
def test_row_compiled_refuses_a_lock_outside_a_transaction_after_the_first_run_too():
    order = Order.objects.create(dr_order_id="101", currency="USD", total_amount=Decimal("1.00"), raw={})

    def build():
        return Order.objects.select_for_update().filter(pk=Slot("pk", Order, "id"))

    with transaction.atomic():
        assert row_compiled(Order, "test lock by pk", build, values={"pk": order.pk}) == order
    if connection.features.has_select_for_update:  # PostgreSQL; SQLite locks the whole database instead
        with pytest.raises(TransactionManagementError):
            row_compiled(Order, "test lock by pk", build, values={"pk": order.pk})


def test_insert_unless_exists_fills_defaults_and_auto_now_and_skips_a_taken_key():
    order = Order(dr_order_id="1001", currency="USD", total_amount=Decimal("70.17"), raw={"id": "1001"})

    assert insert_unless_exists(order, unique_field="dr_order_id") is True
    stored = Order.objects.get(dr_order_id="1001")
    assert stored.pk == order.pk and not order._state.adding
    assert stored.state == Order.State.PENDING_PAYMENT and stored.total_amount == Decimal("70.17")
    assert stored.updated_at is not None and stored.created_at is not None
    assert stored.raw == {"id": "1001"}

    again = Order(dr_order_id="1001", currency="EUR")
    assert insert_unless_exists(again, unique_field="dr_order_id") is False
    assert again.pk is None
    assert Order.objects.get(dr_order_id="1001").currency == "USD"  # nothing changed


def test_insert_unless_exists_refuses_a_column_that_is_not_unique():
    with pytest.raises(AssertionError, match="not a unique column"):
        insert_unless_exists(Order(dr_order_id="1002"), unique_field="email")

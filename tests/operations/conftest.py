"""Rows as the rest of the app leaves them, written directly (bulk where a test needs thousands)."""

import itertools
from datetime import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from commerce.models import Charge, ChargeOperation, Order
from digitalriver.models import Instruction, WebhookEvent

_numbers = itertools.count(1)


def order(*, at: datetime | None = None, **flags) -> Order:
    number = next(_numbers)
    return Order(dr_order_id=f"ops-{number}", currency="USD", dr_created_at=at or timezone.now(), **flags)


def event(*, at: datetime, state=WebhookEvent.State.PROCESSED, event_type="order.accepted", error="") -> WebhookEvent:
    number = next(_numbers)
    payload = {"id": f"evt-ops-{number}", "type": event_type, "data": {"object": {"id": str(number)}}}
    return WebhookEvent(
        dr_event_id=payload["id"],
        type=event_type,
        state=state,
        order_id=str(number),
        received_at=at,
        body="{}",
        payload=payload,
        error=error,
    )


def instruction(*, at: datetime, state=Instruction.State.DONE, kind="fulfillment", code="") -> Instruction:
    return Instruction(
        kind=kind,
        subject=f"order:ops-{next(_numbers)}",
        state=state,
        created_at=at,
        next_attempt_at=at,
        finished_at=at if state in (Instruction.State.DONE, Instruction.State.FAILED) else None,
        last_error_code=code,
    )


def captures(orders: list[Order], *, at: datetime, state="complete") -> list[ChargeOperation]:
    """One charge per (saved) order and one capture of it."""
    charges = Charge.objects.bulk_create(
        Charge(order=o, dr_charge_id=f"ch-{o.dr_order_id}", amount=Decimal("10.00"), currency="USD", state="capturable")
        for o in orders
    )
    return ChargeOperation.objects.bulk_create(
        ChargeOperation(
            charge=charge,
            kind=ChargeOperation.Kind.CAPTURE,
            dr_id=f"cap-{charge.pk}",
            amount=charge.amount,
            state=state,
            dr_created_at=at,
        )
        for charge in charges
    )


@pytest.fixture
def operations_client(client, django_user_model):
    user = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Operations"))
    client.force_login(user)
    return client

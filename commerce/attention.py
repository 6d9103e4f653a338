"""Raising and clearing what needs a person on an order.

Each kind has at most one open item per order; the order's boolean flag of that kind says whether
it is open (lists, filters and the dashboard read the flag). Every function runs inside the
caller's transaction, after the caller took the order's lock (``services.lock_order``).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.types import Actor

from .models import FLAGS_BY_FIELD, AttentionItem, Order


class AttentionError(ValueError):
    """An acknowledgement the rules refuse (no note, nothing open)."""


def attention_raise(*, order: Order, kind: str, reason: str = "", source: str = "") -> AttentionItem:
    """Open the order's item of this kind, or add the new reason to the one already open."""
    flag = FLAGS_BY_FIELD[kind]
    item = AttentionItem.objects.select_for_update().filter(order=order, kind=kind, cleared_at__isnull=True).first()
    reason = reason or flag.meaning
    if item is None:
        item = AttentionItem.objects.create(order=order, kind=kind, reason=reason, source=source)
    elif reason not in item.reason.split("\n"):
        item.reason = f"{item.reason}\n{reason}".strip()
        item.save(update_fields=["reason"])
    _set_flag(order, kind, True)
    return item


def attention_clear(*, order: Order, kind: str, because: str, by: Actor = None) -> AttentionItem | None:
    """Close the order's open item of this kind (an event resolved it, or a person did)."""
    item = AttentionItem.objects.select_for_update().filter(order=order, kind=kind, cleared_at__isnull=True).first()
    if item is not None:
        item.cleared_at = timezone.now()
        item.cleared_because = because
        item.cleared_by = by if isinstance(by, get_user_model()) else None
        item.save(update_fields=["cleared_at", "cleared_because", "cleared_by"])
    _set_flag(order, kind, False)
    return item


def attention_follow(*, order: Order, kind: str, raised: bool, reason: str = "", because: str = "") -> None:
    """For a condition that is true or false as a whole (backordered units, an unknown SKU)."""
    if raised:
        attention_raise(order=order, kind=kind, reason=reason)
    elif AttentionItem.objects.filter(order=order, kind=kind, cleared_at__isnull=True).exists():
        attention_clear(order=order, kind=kind, because=because)


def attention_follow_locked(*, order: Order, kind: str, raised: bool, reason: str = "", because: str = "") -> None:
    """``attention_follow`` for an order read under its lock in this transaction (``lock_order``):
    the order's flag then tells whether an item is open (the two are kept together here), so
    clearing one that is not open costs no query."""
    if raised or getattr(order, kind):
        attention_follow(order=order, kind=kind, raised=raised, reason=reason, because=because)


@transaction.atomic
def attention_acknowledge(*, order: Order, kind: str, note: str, by: Actor) -> AttentionItem:
    """An agent read it and dealt with it: the note says how. Raised again by the next event."""
    from .services import lock_order

    note = note.strip()
    if not note:
        raise AttentionError("Say in a note what was done about it.")
    order = lock_order(order=order)
    if not AttentionItem.objects.filter(order=order, kind=kind, cleared_at__isnull=True).exists():
        raise AttentionError(f"Nothing is open for {FLAGS_BY_FIELD[kind].label.lower()} on this order.")
    name = by.get_username() if by is not None and by.is_authenticated else "someone"
    cleared = attention_clear(order=order, kind=kind, because=f"Acknowledged by {name}: {note}", by=by)
    assert cleared is not None
    return cleared


def _set_flag(order: Order, kind: str, value: bool) -> None:
    """The row decides, not the caller's copy of the order, which may be older than the row."""
    setattr(order, kind, value)
    Order.objects.filter(pk=order.pk).exclude(**{kind: value}).update(**{kind: value, "updated_at": timezone.now()})

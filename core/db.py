"""Row helpers for the busiest write path (issue 14)."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def get_or_create_under_lock(queryset: QuerySet[M], *, defaults: dict[str, Any], **lookup: Any) -> tuple[M, bool]:
    """``select_for_update().get_or_create()`` without its savepoint, for a row that is only ever
    created under a lock the caller already holds (an order's row lock, ``commerce.services.lock_order``).

    Django wraps the INSERT in a savepoint so that a concurrent creator's unique-key error can be
    caught and the row read instead; under the caller's lock there is no such creator, and the
    savepoint's two round trips are saved. Should another writer break that rule anyway, its
    IntegrityError rolls the caller's transaction back rather than writing a second row.
    """
    row = queryset.select_for_update().filter(**lookup).first()
    if row is not None:
        return row, False
    return queryset.create(**lookup, **defaults), True

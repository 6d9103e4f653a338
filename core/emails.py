"""Sending a stored email row once, whoever it is for (a customer, the operations team)."""

from __future__ import annotations

import logging
from typing import TypeVar

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from .models import StoredEmail

logger = logging.getLogger(__name__)

Email = TypeVar("Email", bound=StoredEmail)


def stored_email_send(*, model: type[Email], pk: int, max_attempts: int) -> Email | None:
    """Send a stored email row (``to``, ``subject``, ``body``) once, under a row lock so two workers
    cannot both send it; a failure is kept on the row (``attempts``, ``error``) for the next try."""
    with transaction.atomic():
        unsent = model.objects.select_for_update().filter(pk=pk, sent_at=None).order_by()  # type: ignore[attr-defined]
        row = next(iter(unsent[:1]), None)
        if row is None or row.attempts >= max_attempts:
            return None
        row.attempts += 1
        try:
            send_mail(row.subject, row.body, settings.DEFAULT_FROM_EMAIL, [row.to])
        except Exception as exc:  # SMTP and connection errors alike: keep it for the next try
            row.error = f"{type(exc).__name__}: {exc}"
            logger.warning("%s %s to %s failed: %s", model._meta.verbose_name, row.pk, row.to, row.error)
        else:
            row.sent_at = timezone.now()
            row.error = ""
        row.save(update_fields=["attempts", "sent_at", "error"])  # not the body again
    return row

"""Sending stored email rows once, whoever they are for (a customer, the operations team)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TypeVar

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from .models import StoredEmail

logger = logging.getLogger(__name__)

Email = TypeVar("Email", bound=StoredEmail)


def stored_email_send(*, model: type[Email], pk: int, max_attempts: int) -> Email | None:
    """Send one stored email row (``stored_emails_send``); None if it was sent already or has used
    its attempts."""
    sent = stored_emails_send(model=model, pks=[pk], max_attempts=max_attempts)
    return sent[0] if sent else None


def stored_emails_send(*, model: type[Email], pks: Iterable[int], max_attempts: int) -> list[Email]:
    """Send stored email rows (``to``, ``subject``, ``body``) not sent yet, each once: under their
    row locks, so two workers cannot both send one, over one connection to the mail server, and
    written back in one UPDATE (a burst's emails come gathered: core.jobs.Gatherer). A failure is
    kept on its row (``attempts``, ``error``) for the next try; the others are sent regardless."""
    with transaction.atomic():
        rows = list(
            model.objects.select_for_update()  # type: ignore[attr-defined]
            .filter(pk__in=list(pks), sent_at=None, attempts__lt=max_attempts)
            .order_by("pk")
        )
        if not rows:
            return []
        mail = get_connection(fail_silently=False)
        try:
            mail.open()
        except Exception:  # the server is away: each send below tries once more and records why
            logger.warning("could not connect to the mail server", exc_info=True)
        try:
            for row in rows:
                row.attempts += 1
                message = EmailMessage(row.subject, row.body, settings.DEFAULT_FROM_EMAIL, [row.to], connection=mail)
                try:
                    message.send()
                except Exception as exc:  # SMTP and connection errors alike: keep it for the next try
                    row.error = f"{type(exc).__name__}: {exc}"
                    logger.warning("%s %s to %s failed: %s", model._meta.verbose_name, row.pk, row.to, row.error)
                else:
                    row.sent_at = timezone.now()
                    row.error = ""
        finally:
            mail.close()
        model.objects.bulk_update(rows, ["attempts", "sent_at", "error"])  # type: ignore[attr-defined]
    return rows

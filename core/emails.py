"""Sending stored email rows once, whoever they are for (a customer, the operations team)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TypeVar

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from .db import locked_row
from .models import StoredEmail

logger = logging.getLogger(__name__)

Email = TypeVar("Email", bound=StoredEmail)


def stored_email_send(*, model: type[Email], pk: int, max_attempts: int) -> Email | None:
    """Send one stored email row (``stored_emails_send``); None if it was sent already or has used
    its attempts."""
    sent = stored_emails_send(model=model, pks=[pk], max_attempts=max_attempts)
    return sent[0] if sent else None


def stored_emails_send(*, model: type[Email], pks: Iterable[int], max_attempts: int) -> list[Email]:
    """Send stored email rows (``to``, ``subject``, ``body``) not sent yet, each once, over one
    connection to the mail server (a burst's emails come gathered: core.jobs.Gatherer).

    Each row is sent under its row lock, so two workers cannot both send it, and written back in the
    same transaction: a worker that dies mid-batch re-sends at most the email in flight. A failure is
    kept on its row (``attempts``, ``error``) for the next try; a connection the server dropped is
    opened again for the next email. Returns the rows tried.
    """
    mail = get_connection(fail_silently=False)
    tried = []
    try:
        for pk in pks:
            row = _send_one(model, pk, max_attempts, mail)
            if row is not None:
                tried.append(row)
    finally:
        _close_quietly(mail)
    return tried


def _send_one(model: type[Email], pk: int, max_attempts: int, mail: Any) -> Email | None:
    with transaction.atomic():
        row = locked_row(model.objects.all(), pk=pk, sent_at=None)  # type: ignore[attr-defined]
        if row is None or row.attempts >= max_attempts:
            return None
        row.attempts += 1
        try:
            mail.open()  # nothing while it is open; a new connection after the server dropped one
            EmailMessage(row.subject, row.body, settings.DEFAULT_FROM_EMAIL, [row.to], connection=mail).send()
        except Exception as exc:  # SMTP and connection errors alike: keep it for the next try
            row.error = f"{type(exc).__name__}: {exc}"
            logger.warning("%s %s to %s failed: %s", model._meta.verbose_name, row.pk, row.to, row.error)
            _close_quietly(mail)  # so that the next email does not reuse a broken connection
        else:
            row.sent_at = timezone.now()
            row.error = ""
        row.save(update_fields=["attempts", "sent_at", "error"])  # not the body again
    return row


def _close_quietly(mail: Any) -> None:
    try:
        mail.close()
    except Exception:  # a connection already dropped may refuse to say goodbye
        logger.debug("closing the mail connection failed", exc_info=True)

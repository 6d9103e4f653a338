"""The development email backend: one log line per email instead of its whole body.

Used when no EMAIL_HOST is set (``make run``). The body stays on the stored email row and in the
admin's customer email preview; ``DJANGO_LOG_LEVEL=DEBUG`` logs it too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)


class SummaryEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            logger.info("email to %s: %s", ", ".join(message.to), message.subject)
            logger.debug("%s", message.body)
        return len(email_messages)

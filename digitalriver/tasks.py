import logging

from celery import shared_task
from django.db import connection

from .services import inbox, outbox

logger = logging.getLogger(__name__)


@shared_task(name="digitalriver.tasks.process_webhook_event")
def process_webhook_event(event_id: int) -> None:
    inbox.webhook_event_process(event_id=event_id)


@shared_task(name="digitalriver.tasks.process_webhook_events")
def process_webhook_events(event_ids: list[int]) -> None:
    """Deliveries the web process gathered into one message (core.jobs.Gatherer), one after the other;
    one that fails unexpectedly does not keep the others waiting for the sweep."""
    for event_id in event_ids:
        try:
            inbox.webhook_event_process(event_id=event_id)
        except Exception:
            logger.exception("processing webhook event %s failed; the inbox sweep will take it again", event_id)
            # A connection that died (a database restart) is closed here, not after the whole batch:
            # the next event opens a new one (DATABASE_HEALTH_CHECKS is off by default). Not inside
            # a caller's transaction (a task applied in this process), which closing would end.
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()


@shared_task(name="digitalriver.tasks.send_instruction")
def send_instruction(instruction_id: int) -> None:
    outbox.instruction_send(instruction_id=instruction_id)


@shared_task(name="digitalriver.tasks.sweep_outbox")
def sweep_outbox() -> str:
    return str(outbox.outbox_sweep())


@shared_task(name="digitalriver.tasks.sweep_inbox")
def sweep_inbox() -> int:
    return inbox.inbox_sweep()

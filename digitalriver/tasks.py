from celery import shared_task

from .services import inbox, outbox


@shared_task(name="digitalriver.tasks.process_webhook_event")
def process_webhook_event(event_id: int) -> None:
    inbox.webhook_event_process(event_id=event_id)


@shared_task(name="digitalriver.tasks.send_instruction")
def send_instruction(instruction_id: int) -> None:
    outbox.instruction_send(instruction_id=instruction_id)


@shared_task(name="digitalriver.tasks.sweep_outbox")
def sweep_outbox() -> str:
    return str(outbox.outbox_sweep())


@shared_task(name="digitalriver.tasks.sweep_inbox")
def sweep_inbox() -> int:
    return inbox.inbox_sweep()

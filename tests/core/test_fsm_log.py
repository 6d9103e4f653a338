"""Routine transitions the rows already tell are not logged twice; the others are (core/fsm_log.py)."""

import pytest
import responses
from django_fsm_log.models import StateLog

from digitalriver.models import Instruction, WebhookEvent
from digitalriver.services import inbox, outbox
from tests.conftest import make_event

pytestmark = pytest.mark.django_db

DR = "https://dr.invalid"


def transitions_of(obj) -> list[str]:
    return list(StateLog.objects.for_(obj).order_by("pk").values_list("transition", flat=True))


def test_an_event_processed_is_told_by_its_row_and_a_failed_one_is_logged():
    processed = WebhookEvent.objects.create(dr_event_id="e-1", type="no.handler", payload=make_event("no.handler"))
    inbox.webhook_event_process(event_id=processed.pk)
    assert WebhookEvent.objects.get(pk=processed.pk).state == WebhookEvent.State.IGNORED
    assert transitions_of(processed) == []

    failing = WebhookEvent.objects.create(dr_event_id="e-2", type="order.accepted", payload=make_event(obj={}))
    inbox.webhook_event_process(event_id=failing.pk)
    assert WebhookEvent.objects.get(pk=failing.pk).state == WebhookEvent.State.FAILED
    assert transitions_of(failing) == ["mark_failed"]  # what the operations alert reads


@responses.activate
def test_an_instructions_claim_and_success_are_told_by_its_attempts_and_a_failure_is_logged(echo_performer):
    responses.post(f"{DR}/fulfillments", json={"id": "ful_1"}, status=201)
    responses.post(f"{DR}/fulfillments", json={"errors": [{"code": "invalid_parameter", "message": "no"}]}, status=400)
    body = {"orderId": "240002", "items": [{"itemId": "164470560336", "quantity": 1}]}
    done = Instruction.objects.create(kind=echo_performer, subject="order:240002", payload=body)
    outbox.instruction_send(instruction_id=done.pk)
    assert Instruction.objects.get(pk=done.pk).state == Instruction.State.DONE
    assert done.attempt_set.count() == 1 and transitions_of(done) == []

    refused = Instruction.objects.create(kind=echo_performer, subject="order:240002", payload=body)
    outbox.instruction_send(instruction_id=refused.pk)
    assert Instruction.objects.get(pk=refused.pk).state == Instruction.State.FAILED
    assert transitions_of(refused) == ["mark_failed"]

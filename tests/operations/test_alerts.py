"""Alerts to operations: failures become one digest per interval, never one email per failure."""

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_fsm_log.models import StateLog

from commerce.models import Order
from digitalriver.models import Instruction, WebhookEvent
from fulfillment.notifications import notify_capture_failed
from operations.alerts import operations_alert_run
from operations.models import OperationsAlert
from operations.tasks import send_operations_alert

from .conftest import event

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alert_settings(settings):
    settings.OPERATIONS_EMAIL = "ops@example.com"
    settings.OPERATIONS_ALERT_INTERVAL_MINUTES = 15
    settings.BACKOFFICE_BASE_URL = "https://backoffice.example.com"


def fail_instructions(count: int, *, kind="fulfillment", code="service_unavailable", ago=timedelta()) -> list:
    """Instructions given up by the outbox (through the real transitions, which log them)."""
    failed = []
    for number in range(count):
        instruction = Instruction.objects.create(kind=kind, subject=f"order:{uuid.uuid4().hex[:12]}-{number}")
        claim = Instruction.claim_changes(token=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(minutes=5))
        Instruction.objects.filter(pk=instruction.pk).update(**claim)
        instruction.refresh_from_db()
        instruction.mark_failed(error=f"503 {code}: DR is unavailable", code=code)
        instruction.save()
        failed.append(instruction)
    _shift_back([i.pk for i in failed], Instruction, ago)
    return failed


def fail_events(count: int, *, event_type="order.accepted", ago=timedelta()) -> list:
    failed = []
    for _ in range(count):
        row = event(at=timezone.now(), state=WebhookEvent.State.RECEIVED, event_type=event_type)
        row.save()
        row.mark_failed(error="KeyError: 'orderId'", traceback="Traceback …")
        row.save()
        failed.append(row)
    _shift_back([e.pk for e in failed], WebhookEvent, ago)
    return failed


def _shift_back(pks: list, model, ago: timedelta) -> None:
    """Make failures look as if they happened ``ago`` (the digests are cut by the logged time)."""
    if ago:
        for log in StateLog.objects.filter(object_id__in=pks, content_type__model=model._meta.model_name):
            StateLog.objects.filter(pk=log.pk).update(timestamp=log.timestamp - ago)


def test_500_failed_instructions_make_one_digest_with_counts_and_the_oldest_few():
    failed = fail_instructions(497)
    fail_instructions(3, kind="create_fulfillment_order", code="")
    fail_events(2)
    capture_order = Order.objects.create(dr_order_id="240000000001", currency="USD", email="ada@example.com")
    notify_capture_failed(order=capture_order, source="charge-1:cap-1", reason="card declined")

    alert = operations_alert_run(now=timezone.now() + timedelta(minutes=2))

    assert len(mail.outbox) == 1
    [message] = mail.outbox
    assert message.to == ["ops@example.com"]
    assert message.subject == "[DR back office] 500 instructions failed, 2 events failed, 1 capture failed"
    assert "497 x fulfillment (service_unavailable)" in message.body
    assert "3 x create_fulfillment_order (no error code)" in message.body
    assert "2 x order.accepted" in message.body
    assert f"https://backoffice.example.com/admin/digitalriver/instruction/{failed[0].pk}/change/" in message.body
    assert f"/admin/digitalriver/instruction/{failed[5].pk}/change/" not in message.body  # only the oldest five
    assert f"https://backoffice.example.com/admin/commerce/order/{capture_order.pk}/change/" in message.body
    assert "https://backoffice.example.com/admin/operations/dashboard/" in message.body
    assert "at most one every 15 minutes" in message.body

    assert OperationsAlert.objects.get() == alert
    assert alert.counts == {"instructions": 500, "events": 2, "captures": 1}
    assert alert.sent_at is not None and alert.attempts == 1
    assert alert.body == message.body


def test_nothing_new_sends_nothing():
    assert operations_alert_run() is None
    fail_instructions(1, ago=timedelta(hours=2))
    first = operations_alert_run()
    assert first is not None

    assert operations_alert_run(now=timezone.now() + timedelta(hours=1)) is None
    assert len(mail.outbox) == 1
    assert OperationsAlert.objects.count() == 1


def test_new_failures_wait_for_the_next_window():
    fail_instructions(5, ago=timedelta(minutes=30))
    first = operations_alert_run()
    fail_instructions(2, code="rate_limited")
    fail_events(1, event_type="fulfillment_order.shipped")

    assert operations_alert_run(now=timezone.now() + timedelta(minutes=5)) is None
    assert len(mail.outbox) == 1

    second = operations_alert_run(now=first.created_at + timedelta(minutes=16))
    assert second.number == first.number + 1
    assert second.covered_from == first.covered_until
    assert second.counts == {"instructions": 2, "events": 1, "captures": 0}
    assert len(mail.outbox) == 2
    assert "2 x fulfillment (rate_limited)" in mail.outbox[1].body
    assert "service_unavailable" not in mail.outbox[1].body  # the first window's failures are not repeated
    assert list(OperationsAlert.objects.values_list("number", flat=True)) == [2, 1]


def test_a_failure_replayed_before_the_digest_is_not_news():
    [replayed] = fail_events(1, ago=timedelta(minutes=10))
    replayed.replay()
    replayed.save()
    assert operations_alert_run() is None
    assert mail.outbox == []


def test_a_digest_that_could_not_be_sent_is_sent_by_the_next_run(monkeypatch):
    fail_instructions(3, ago=timedelta(minutes=10))

    def smtp_down(*args, **kwargs):
        raise ConnectionRefusedError("smtp.example.com:587")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", smtp_down)
    alert = operations_alert_run()
    assert alert.sent_at is None and "ConnectionRefusedError" in alert.error
    monkeypatch.undo()

    assert operations_alert_run(now=timezone.now() + timedelta(minutes=1)) is None  # still inside the window
    alert = OperationsAlert.objects.get()
    assert alert.sent_at is not None and alert.error == "" and alert.attempts == 2
    assert len(mail.outbox) == 1


def test_the_periodic_task_returns_the_number_of_the_alert_it_sent():
    fail_instructions(1, ago=timedelta(minutes=5))
    assert send_operations_alert.apply().get() == 1
    assert send_operations_alert.apply().get() is None


def test_the_dashboard_names_the_last_alert(operations_client):
    fail_instructions(1, ago=timedelta(minutes=5))
    alert = operations_alert_run()
    content = operations_client.get("/admin/operations/dashboard/").content
    assert f"#{alert.number}</a>".encode() in content
    assert operations_client.get("/admin/operations/operationsalert/").status_code == 200


def test_the_digest_is_plain_text_quoting_errors_as_written():
    """Plain text is not HTML: an error with quotes, & and <> arrives as DR or the handler wrote it."""
    error = "KeyError: 'orderId' & <no \"id\">"
    row = event(at=timezone.now(), state=WebhookEvent.State.RECEIVED)
    row.save()
    row.mark_failed(error=error, traceback="Traceback …")
    row.save()
    _shift_back([row.pk], WebhookEvent, timedelta(minutes=5))

    operations_alert_run()

    [message] = mail.outbox
    assert error in message.body
    for entity in ("&amp;", "&#x27;", "&quot;", "&lt;", "&gt;"):
        assert entity not in message.body

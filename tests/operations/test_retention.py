"""The daily prune: old processed rows go in batches; failures, open orders and the business story stay."""

from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_fsm_log.models import StateLog

from commerce.models import Order
from desk.timeline_technical import BUSINESS_EVENTS
from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent
from operations import retention
from operations.retention import KEPT_EVENT_TYPES, prune_records

from .conftest import event, instruction, order

pytestmark = pytest.mark.django_db
OLD = timedelta(days=100)


def attempt(of: Instruction, *, at) -> Attempt:
    return Attempt.objects.create(
        instruction=of, number=of.attempt_set.count() + 1, started_at=at, duration_ms=5, outcome="succeeded"
    )


@pytest.fixture
def rows():
    """Old and recent rows of every kind, for one closed and one open order."""
    now = timezone.now()
    closed = order(state=Order.State.COMPLETE)
    open_ = order(state=Order.State.ACCEPTED)
    Order.objects.bulk_create([closed, open_])
    old_processed = WebhookEvent.objects.bulk_create(
        [event(at=now - OLD, state=WebhookEvent.State.PROCESSED) for _ in range(7)]
    )
    kept = {
        "recent": event(at=now - timedelta(days=5), state=WebhookEvent.State.PROCESSED),
        "failed": event(at=now - OLD, state=WebhookEvent.State.FAILED),
        "received": event(at=now - OLD, state=WebhookEvent.State.RECEIVED),
        "money": event(at=now - OLD, event_type="order.charge.capture.complete"),
        "open order": event(at=now - OLD),
    }
    kept["open order"].order_id = open_.dr_order_id
    WebhookEvent.objects.bulk_create(kept.values())
    ignored = event(at=now - OLD, state=WebhookEvent.State.IGNORED)
    ignored.save()
    event_type = ContentType.objects.get_for_model(WebhookEvent)
    StateLog.objects.create(content_type=event_type, object_id=ignored.pk, state="ignored", transition="mark_ignored")

    done_closed = instruction(at=now - OLD)
    done_closed.subject = f"order:{closed.dr_order_id}"
    done_open = instruction(at=now - OLD)
    done_open.subject = f"order:{open_.dr_order_id}"
    failed = instruction(at=now - OLD, state=Instruction.State.FAILED)
    Instruction.objects.bulk_create([done_closed, done_open, failed])
    attempts = {
        "old done": attempt(done_closed, at=now - OLD),
        "recent done": attempt(done_closed, at=now - timedelta(days=1)),
        "open order": attempt(done_open, at=now - OLD),
        "failed": attempt(failed, at=now - OLD),
    }
    calls = {
        "old closed": ApiCall.objects.create(
            method="GET", path="/a", status=200, subject=done_closed.subject, started_at=now - OLD
        ),
        "old sku": ApiCall.objects.create(
            method="PUT", path="/skus/A", status=200, subject="sku:A", started_at=now - OLD
        ),
        "old open": ApiCall.objects.create(
            method="GET", path="/b", status=200, subject=done_open.subject, started_at=now - OLD
        ),
        "recent": ApiCall.objects.create(method="GET", path="/c", status=200, started_at=now - timedelta(days=2)),
    }
    return {"old_processed": old_processed, "ignored": ignored, "kept": kept, "attempts": attempts, "calls": calls}


def test_old_processed_rows_go_and_everything_still_needed_stays(rows):
    result = prune_records(days=90)

    assert result.counts == {"webhook events": 8, "API calls": 2, "attempts": 1}
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {e.pk for e in rows["kept"].values()}
    assert set(Attempt.objects.values_list("pk", flat=True)) == {
        rows["attempts"][name].pk for name in ("recent done", "open order", "failed")
    }
    assert set(ApiCall.objects.values_list("pk", flat=True)) == {
        rows["calls"][name].pk for name in ("old open", "recent")
    }
    assert Instruction.objects.count() == 3  # instructions and their transitions stay for the timeline
    assert not StateLog.objects.filter(object_id=rows["ignored"].pk, transition="mark_ignored").exists()


def test_rows_are_deleted_in_batches_of_the_size_given(rows):
    with CaptureQueriesContext(connection) as queries:
        result = prune_records(days=90, batch_size=3)

    assert result.counts["webhook events"] == 8
    event_deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "digitalriver_webhookevent"')]
    assert len(event_deletes) == 3  # 3 + 3 + 2
    assert all(" BETWEEN " in sql or ">=" in sql for sql in event_deletes)


def test_a_dry_run_counts_and_deletes_nothing(rows):
    before = (WebhookEvent.objects.count(), ApiCall.objects.count(), Attempt.objects.count())

    result = prune_records(days=90, dry_run=True)

    assert result.dry_run
    assert result.counts == {"webhook events": 8, "API calls": 2, "attempts": 1}
    assert (WebhookEvent.objects.count(), ApiCall.objects.count(), Attempt.objects.count()) == before


def test_a_longer_retention_keeps_more(rows):
    assert prune_records(days=120).counts == {"webhook events": 0, "API calls": 0, "attempts": 0}


def test_the_dashboards_week_is_never_pruned():
    with pytest.raises(ValueError):
        prune_records(days=6)
    with pytest.raises(CommandError):
        call_command("prune_records", "--days", "3")


def test_the_command_prints_its_counts_and_dry_runs(rows, capsys):
    call_command("prune_records", "--dry-run")
    dry = capsys.readouterr().out
    assert "webhook events: would delete 8" in dry
    assert "API calls: would delete 2" in dry
    assert "attempts: would delete 1" in dry
    assert WebhookEvent.objects.count() == 13

    call_command("prune_records", "--days", "90")
    out = capsys.readouterr().out
    assert "webhook events: deleted 8" in out
    assert WebhookEvent.objects.count() == 5


def test_the_daily_job_uses_retention_days(rows, settings):
    from operations.tasks import prune_records as task

    settings.RETENTION_DAYS = 120
    assert task.apply().get() == {"webhook events": 0, "API calls": 0, "attempts": 0}
    settings.RETENTION_DAYS = 90
    assert task.apply().get()["webhook events"] == 8
    assert "records-prune-daily" in settings.CELERY_BEAT_SCHEDULE


def test_the_kept_event_types_are_those_the_business_timeline_tells():
    assert frozenset(BUSINESS_EVENTS) == KEPT_EVENT_TYPES
    assert retention.BATCH_SIZE == 5_000

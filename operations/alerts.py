"""Digest emails to operations: instructions that failed for good, events that failed, captures that failed.

A DR outage fails thousands of rows within minutes; operations should get one message about it, not
thousands. So nothing emails a failure when it happens: a periodic task collects the failures since
the last alert and sends at most one digest per interval (OPERATIONS_ALERT_INTERVAL_MINUTES), with
counts by kind and error code and the oldest few with links. Each alert is a row, which is both the
record of what operations were told and the marker of where the next digest starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Count, Model, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_fsm_log.models import StateLog

from core.emails import stored_email_send
from digitalriver.models import Instruction, WebhookEvent
from fulfillment.models import Notification

from .models import OperationsAlert

logger = logging.getLogger(__name__)

# A failure is stamped inside its transaction and visible only once that commits: a digest covers
# failures up to a minute ago, so a transaction still open when the digest is written is not skipped.
SETTLE = timedelta(seconds=60)
# The very first digest looks back this far; later ones start where the previous one ended.
FIRST_LOOKBACK = timedelta(hours=24)
OLDEST_LISTED = 5
GROUPS_LISTED = 10
MAX_SEND_ATTEMPTS = 5


@dataclass
class Item:
    title: str
    detail: str
    at: datetime | None
    url: str


@dataclass
class Section:
    key: str
    title: str
    nouns: tuple[str, str]
    total: int
    groups: list[tuple[str, int]]
    oldest: list[Item]
    url: str


@dataclass
class Failures:
    covered_from: datetime
    covered_until: datetime
    sections: list[Section] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(section.total for section in self.sections)

    @property
    def counts(self) -> dict[str, int]:
        return {section.key: section.total for section in self.sections}

    @property
    def subject(self) -> str:
        parts = [
            f"{section.total} {section.nouns[section.total != 1]} failed" for section in self.sections if section.total
        ]
        return f"[DR back office] {', '.join(parts)}"


def failures_between(*, since: datetime, until: datetime) -> Failures:
    """Failures that happened in (since, until] and still stand (a row replayed since is not news)."""
    return Failures(
        covered_from=since,
        covered_until=until,
        sections=[
            _failed_instructions(since, until),
            _failed_events(since, until),
            _failed_captures(since, until),
        ],
    )


def operations_alert_run(*, now: datetime | None = None) -> OperationsAlert | None:
    """Send what earlier runs could not, then one digest of the new failures if the interval has passed."""
    now = now or timezone.now()
    for alert_id in OperationsAlert.objects.filter(sent_at=None, attempts__lt=MAX_SEND_ATTEMPTS).values_list(
        "pk", flat=True
    ):
        operations_alert_send(alert_id=alert_id)
    last = OperationsAlert.objects.order_by("-number").first()
    if last is not None and now < last.created_at + _interval():
        return None
    since = last.covered_until if last is not None else now - FIRST_LOOKBACK
    until = now - SETTLE
    if until <= since:
        return None
    failures = failures_between(since=since, until=until)
    if not failures.total:
        return None
    alert = _write(failures, number=(last.number + 1) if last is not None else 1, now=now)
    if alert is not None:
        operations_alert_send(alert_id=alert.pk)
        alert.refresh_from_db()
    return alert


def operations_alert_send(*, alert_id: int) -> OperationsAlert | None:
    """Send one alert unless it was sent already; keep the error for the next run otherwise."""
    return stored_email_send(model=OperationsAlert, pk=alert_id, max_attempts=MAX_SEND_ATTEMPTS)


def _write(failures: Failures, *, number: int, now: datetime) -> OperationsAlert | None:
    body = render_to_string(
        "operations/alert_email.txt",
        {
            "failures": failures,
            "dashboard_url": _link("admin:operations_dashboard_changelist"),
            "interval_minutes": int(_interval().total_seconds() // 60),
        },
        using="text",  # plain text: not HTML-escaped
    )
    try:
        with transaction.atomic():
            return OperationsAlert.objects.create(
                number=number,
                covered_from=failures.covered_from,
                covered_until=failures.covered_until,
                to=settings.OPERATIONS_EMAIL,
                subject=failures.subject[:300],
                body=body,
                counts=failures.counts,
                created_at=now,
            )
    except IntegrityError:
        return None  # a concurrent run wrote this number first: its digest covers the same failures


def _failed_instructions(since: datetime, until: datetime) -> Section:
    rows = Instruction.objects.filter(pk__in=_reached_failed(Instruction, since, until), state=Instruction.State.FAILED)
    groups = rows.values("kind", "last_error_code").annotate(count=Count("pk")).order_by("-count", "kind")
    oldest = rows.only("pk", "kind", "subject", "last_error_code", "last_error", "finished_at").order_by("finished_at")
    return Section(
        key="instructions",
        nouns=("instruction", "instructions"),
        title="Instructions failed",
        total=rows.count(),
        groups=[
            (f"{row['kind']} ({row['last_error_code'] or 'no error code'})", row["count"])
            for row in groups[:GROUPS_LISTED]
        ],
        oldest=[
            Item(
                f"{row.kind} {row.subject}",
                row.last_error.splitlines()[0][:200] if row.last_error else row.last_error_code,
                row.finished_at,
                _link("admin:digitalriver_instruction_change", row.pk),
            )
            for row in oldest[:OLDEST_LISTED]
        ],
        url=_link("admin:digitalriver_instruction_changelist", query="state__exact=failed"),
    )


def _failed_events(since: datetime, until: datetime) -> Section:
    rows = WebhookEvent.objects.filter(
        pk__in=_reached_failed(WebhookEvent, since, until), state=WebhookEvent.State.FAILED
    )
    groups = rows.values("type").annotate(count=Count("pk")).order_by("-count", "type")
    oldest = rows.only("pk", "type", "order_id", "error", "received_at").order_by("received_at")
    return Section(
        key="events",
        nouns=("event", "events"),
        title="Events failed",
        total=rows.count(),
        groups=[(row["type"], row["count"]) for row in groups[:GROUPS_LISTED]],
        oldest=[
            Item(
                f"{row.type} for order {row.order_id or '(none)'}",
                row.error.splitlines()[0][:200] if row.error else "",
                row.received_at,
                _link("admin:digitalriver_webhookevent_change", row.pk),
            )
            for row in oldest[:OLDEST_LISTED]
        ],
        url=_link("admin:digitalriver_webhookevent_changelist", query="state__exact=failed"),
    )


def _failed_captures(since: datetime, until: datetime) -> Section:
    """Every capture failure, however it was learnt, wrote one capture_failed notification."""
    rows = Notification.objects.filter(
        kind=Notification.Kind.CAPTURE_FAILED, created_at__gt=since, created_at__lte=until
    ).select_related("order")
    return Section(
        key="captures",
        nouns=("capture", "captures"),
        title="Captures failed",
        total=rows.count(),
        groups=[],
        oldest=[
            Item(
                f"order {row.order.dr_order_id}",
                row.subject,
                row.created_at,
                _link("admin:commerce_order_change", row.order_id),
            )
            for row in rows.order_by("created_at")[:OLDEST_LISTED]
        ],
        url=_link("admin:commerce_order_changelist", query="capture_failed__exact=1"),
    )


def _reached_failed(model: type[Model], since: datetime, until: datetime) -> QuerySet[Any, dict[str, Any]]:
    """Ids of rows whose logged transition into "failed" happened in the window."""
    return StateLog.objects.filter(
        content_type=ContentType.objects.get_for_model(model),
        state="failed",
        timestamp__gt=since,
        timestamp__lte=until,
    ).values("object_id")


def _interval() -> timedelta:
    return timedelta(minutes=settings.OPERATIONS_ALERT_INTERVAL_MINUTES)


def _link(name: str, *args: object, query: str = "") -> str:
    """An absolute link when BACKOFFICE_BASE_URL says where the admin is served, a path otherwise."""
    base = settings.BACKOFFICE_BASE_URL
    return base + reverse(name, args=args) + (f"?{query}" if query else "")

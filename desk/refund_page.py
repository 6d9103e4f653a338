"""Reads of refunds for the order page and its timeline: each refund in words, with what it paid
back, where it stands, and whether it can be retried."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch
from django.urls import reverse
from django_fsm_log.models import StateLog

from commerce.models import Order, Refund, RefundLine, units_of

from .timeline import ERROR, OK, WARNING, TimelineEntry

REFUND_LINES = Prefetch("lines", queryset=RefundLine.objects.select_related("order_line").order_by("id"))
TONES = {
    Refund.State.SUCCEEDED: OK,
    Refund.State.FAILED: ERROR,
    Refund.State.EXPIRED: ERROR,
    Refund.State.REFUSED: ERROR,
    Refund.State.PENDING_INFORMATION: WARNING,
}
WHAT_HAPPENED = {
    Refund.State.PENDING: "Digital River has it; the bank is paying it back",
    Refund.State.PENDING_INFORMATION: "waiting for the customer's bank details",
    Refund.State.SUCCEEDED: "refunded",
    Refund.State.FAILED: "failed",
    Refund.State.EXPIRED: "expired: the customer gave no bank details in time",
    Refund.State.REFUSED: "Digital River refused it",
}


@dataclass(frozen=True)
class RefundRow:
    refund: Refund
    what_for: str
    tone: str
    can_retry: bool


def what_for(refund: Refund) -> str:
    lines = list(refund.lines.all())
    if lines:
        return ", ".join(units_of(line.quantity, line.order_line.label) for line in lines)
    if refund.kind == Refund.Kind.PERCENT and refund.percent is not None:
        return f"{refund.percent.normalize():f}% of what was refundable"
    return refund.get_kind_display()


def refund_rows(*, order: Order) -> list[RefundRow]:
    refunds = order.refunds.select_related("requested_by").prefetch_related(REFUND_LINES, "retries")
    return [
        RefundRow(
            refund=refund,
            what_for=what_for(refund),
            tone=TONES.get(refund.state, ""),
            can_retry=refund.state in (Refund.State.FAILED, Refund.State.EXPIRED)
            and not any(retry.state in Refund.HOLDING_STATES for retry in refund.retries.all()),
        )
        for refund in refunds
    ]


def _money(refund: Refund) -> str:
    return f"{refund.amount} {refund.currency}"


def refund_entries(order: Order, limit: int | None) -> Iterator[TimelineEntry]:
    """One entry when a refund was asked (or DR made one), and one per change of its state."""
    refunds = order.refunds.select_related("requested_by").prefetch_related(REFUND_LINES).order_by("-created_at")
    shown = {refund.pk: refund for refund in (refunds[:limit] if limit else refunds)}
    for refund in shown.values():
        who = refund.requested_by.get_username() if refund.requested_by else ""
        if refund.initiated_by_dr:
            sentence = f"Digital River refunded {_money(refund)} by itself for {what_for(refund)}"
        else:
            again = " again" if refund.retry_of_id else ""
            sentence = f"{who or 'We'} asked{again} to refund {_money(refund)} for {what_for(refund)}"
        yield TimelineEntry(
            at=refund.created_at,
            source="refund",
            sentence=sentence,
            detail=f"reason: {refund.reason}" if refund.reason else "",
            links=(("refund", reverse("admin:commerce_refund_change", args=[refund.pk])),),
        )
    logs = StateLog.objects.filter(
        content_type=ContentType.objects.get_for_model(Refund), object_id__in=order.refunds.values("pk")
    ).order_by("-timestamp", "-pk")
    logs = logs[:limit] if limit else logs
    missing = {log.object_id for log in logs} - shown.keys()
    if missing:
        shown.update(Refund.objects.prefetch_related(REFUND_LINES).in_bulk(missing))
    for log in logs:
        refund = shown[log.object_id]
        happened = WHAT_HAPPENED.get(log.state, log.state)
        if log.state == Refund.State.SUCCEEDED:
            happened = f"refunded {refund.refunded_amount} {refund.currency}"
        detail = refund.failure_reason if log.state in (Refund.State.FAILED, Refund.State.REFUSED) else ""
        yield TimelineEntry(
            at=log.timestamp,
            source="refund",
            sentence=f"Refund of {_money(refund)} for {what_for(refund)}: {happened}",
            detail=detail or log.description or "",
            tone=TONES.get(log.state, ""),
            links=(("refund", reverse("admin:commerce_refund_change", args=[refund.pk])),),
        )

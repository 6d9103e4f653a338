"""The timeline's technical entries, for operations: DR's events as they came, our instructions
with their attempts, and the calls we made to DR. The order page shows them on request; by default
it tells only the business story (see ``desk.timeline``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from django.contrib.contenttypes.models import ContentType
from django.urls import Resolver404, resolve
from django_fsm_log.models import StateLog

from commerce.models import Order
from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent

from .timeline import (
    ERROR,
    EVENT_MEANINGS,
    OK,
    WARNING,
    TimelineEntry,
    _admin_link,
    _joined,
    _newest,
    describe_instruction,
)

# DR's events that tell the customer's story (money moving); the others are machinery.
BUSINESS_EVENTS = {
    "order.charge.capture.complete": "Payment captured",
    "order.charge.capture.failed": "A payment capture failed",
    "order.charge.cancel.complete": "Payment released",
    "order.charge.failed": "The charge failed",
}


def instruction_entries(subject: str, names: dict[str, str], limit: int | None) -> Iterator[TimelineEntry]:
    instructions = {row.pk: row for row in _newest(Instruction.objects.filter(subject=subject), "created_at", limit)}
    for instruction in instructions.values():
        waiting = instruction.state in (Instruction.State.PENDING, Instruction.State.RETRY_WAIT)
        yield TimelineEntry(
            at=instruction.created_at,
            source="instruction",
            sentence=f"Queued: {describe_instruction(instruction, names).to_do}",
            detail=_joined(f"now {instruction.get_state_display().lower()}", instruction.last_error_code),
            tone=WARNING if waiting else ERROR if instruction.state == Instruction.State.FAILED else "",
            links=(_admin_link("instruction", Instruction, instruction.pk),),
        )
    logs = list(
        _newest(
            StateLog.objects.filter(
                content_type=ContentType.objects.get_for_model(Instruction),
                object_id__in=Instruction.objects.filter(subject=subject).values("pk"),
            )
            # Transitions the Attempt entries tell are no longer logged; rows from before are skipped,
            # claims included (a claim is no longer a transition: Instruction.claim_changes).
            .exclude(transition__in=[*Instruction.FSM_LOG_UNLOGGED, "claim"])
            .select_related("by"),
            "timestamp",
            limit,
        )
    )
    missing = {log.object_id for log in logs} - instructions.keys()
    if missing:
        instructions.update(Instruction.objects.in_bulk(missing))
    labels = dict(Instruction.State.choices)
    for log in logs:
        instruction = instructions[log.object_id]
        what = describe_instruction(instruction, names).to_do
        if log.transition == "retry_now":
            happened = "sent again on request"
        elif log.transition == "cancel":
            happened = "will not be sent"
        else:
            happened = f"instruction {labels.get(log.state, log.state).lower()}"
        yield TimelineEntry(
            at=log.timestamp,
            source="instruction",
            sentence=f"{what}: {happened}" + (f" by {log.by}" if log.by else ""),
            detail=log.description or "",
            tone=ERROR if log.state == Instruction.State.FAILED else "",
            links=(_admin_link("instruction", Instruction, instruction.pk),),
        )


def attempt_entries(subject: str, names: dict[str, str], limit: int | None) -> Iterator[TimelineEntry]:
    attempts = Attempt.objects.filter(instruction__subject=subject).select_related("instruction")
    for attempt in _newest(attempts, "started_at", limit):
        words = describe_instruction(attempt.instruction, names)
        failure = _joined(
            f"HTTP {attempt.http_status}" if attempt.http_status else "no answer", ", ".join(attempt.error_codes)
        )
        if attempt.outcome == Attempt.Outcome.SUCCEEDED:
            sentence, tone = f"{words.done} — DR accepted", OK
        elif attempt.outcome == Attempt.Outcome.ALREADY_DONE:
            sentence, tone = f"{words.done} — DR had already done it", OK
        elif attempt.outcome == Attempt.Outcome.TRANSIENT:
            sentence, tone = f"{words.to_do} — try {attempt.number} failed ({failure})", WARNING
        else:
            sentence, tone = f"{words.to_do} — DR refused ({failure})", ERROR
        ok = attempt.outcome in (Attempt.Outcome.SUCCEEDED, Attempt.Outcome.ALREADY_DONE)
        yield TimelineEntry(
            at=attempt.started_at,
            source="attempt",
            sentence=sentence,
            detail=_joined(
                f"attempt {attempt.number}",
                f"HTTP {attempt.http_status}" if attempt.http_status else "",
                f"DR error {', '.join(attempt.error_codes)}" if attempt.error_codes else "",
                f"request id {attempt.request_id}" if attempt.request_id else "",
                f"{attempt.duration_ms} ms",
                "" if ok else attempt.message,
            ),
            tone=tone,
            links=(_admin_link("instruction", Instruction, attempt.instruction_id),),
        )


def event_entries(order: Order, limit: int | None, *, technical: bool = True) -> Iterator[TimelineEntry]:
    """DR's events; without ``technical``, only those that move money, told as the business event."""
    events = WebhookEvent.objects.filter(order_id=order.dr_order_id).defer("body", "payload", "headers", "traceback")
    if not technical:
        events = events.filter(type__in=BUSINESS_EVENTS)
    for event in _newest(events, "received_at", limit):
        tone = {WebhookEvent.State.FAILED: ERROR, WebhookEvent.State.RECEIVED: WARNING}.get(event.state, "")
        yield TimelineEntry(
            at=event.received_at,
            source="event",
            sentence=" — ".join(filter(None, (f"DR said: {event.type}", EVENT_MEANINGS.get(event.type))))
            if technical
            else BUSINESS_EVENTS[event.type],
            detail=""
            if not technical and event.state == WebhookEvent.State.PROCESSED
            else _joined(
                event.get_state_display().lower(),
                "found by polling" if event.source == WebhookEvent.Source.POLLED else "",
                event.error.splitlines()[0][:200] if event.error else "",
            ),
            tone=tone,
            links=(_admin_link("event", WebhookEvent, event.pk),),
        )


def call_entries(subject: str, limit: int | None) -> Iterator[TimelineEntry]:
    calls = ApiCall.objects.filter(subject=subject).defer("request_body", "response_body")
    for call in _newest(calls, "started_at", limit):
        target = f"{call.method} {call.path}" + (f"?{call.query}" if call.query else "")
        answer = f"{call.status} in {call.duration_ms} ms" if call.status else f"no answer after {call.duration_ms} ms"
        yield TimelineEntry(
            at=call.started_at,
            source="call",
            sentence=f"{target} → {answer}",
            detail=_joined(
                call.error_code,
                call.error_message[:200],
                f"request id {call.request_id}" if call.request_id else "",
            ),
            tone=_call_tone(call),
            links=(_admin_link("call", ApiCall, call.pk),),
        )


def _call_tone(call: ApiCall) -> str:
    if call.succeeded:
        return ""
    # No answer, 429 and 5xx are retried; any other refusal needs a look.
    return WARNING if call.status is None or call.status == 429 or call.status >= 500 else ERROR


def links_the_viewer_may_open(entries: Iterable[TimelineEntry], *, user: Any) -> list[TimelineEntry]:
    """The entries with only the links ``user`` (the request's, signed in or not) may follow: a link
    to an admin page the viewer may not see (an API call, an instruction or a DR event, for customer
    service) would only answer 403."""
    allowed: dict[str, bool] = {}

    def may_open(url: str) -> bool:
        try:
            name = resolve(urlsplit(url).path).url_name or ""
        except Resolver404:
            return False
        app_model, _, page = name.rpartition("_")
        if page != "change" or "_" not in app_model:
            return True  # not a model's page: its own view decides (a document download)
        if app_model not in allowed:
            app, _, model = app_model.partition("_")
            allowed[app_model] = user.has_perm(f"{app}.view_{model}") or user.has_perm(f"{app}.change_{model}")
        return allowed[app_model]

    shown = []
    for entry in entries:
        links = tuple(link for link in entry.links if may_open(link[1]))
        shown.append(entry if links == entry.links else replace(entry, links=links))
    return shown

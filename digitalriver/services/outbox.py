"""The outbox: instructions written with the change that causes them, sent after commit, retried.

A sender claims a row with one conditional UPDATE that sets a short lease (renewed by a heartbeat
while it sends, so a dead sender's rows come free within ``DR_OUTBOX_LEASE_SECONDS``), holds no lock during the HTTP
call, writes one Attempt per try, and moves the row in the same transaction as the performer
records the outcome.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Expression, Q, QuerySet
from django.utils import timezone
from django_fsm import can_proceed

from core.db import Slot, row_compiled, storable_text, update_returning_compiled
from core.jobs import enqueue_on_commit
from core.types import Actor, JSONObject

from .. import errors, registry
from ..client import calls_about, calls_held, calls_write, forget_last_request_id, get_client, last_request_id
from ..lease import LeaseKeeper
from ..models import ApiCall, Attempt, Instruction

logger = logging.getLogger(__name__)

WAITING_STATES = (Instruction.State.PENDING, Instruction.State.RETRY_WAIT)


def instruction_enqueue(
    *, kind: str, subject: str, payload: JSONObject | None = None, coalesce: bool = False, delay_seconds: float = 0
) -> Instruction:
    """Write an instruction in the caller's transaction; it is sent once that transaction commits.

    With ``delay_seconds`` it is sent no sooner than that, so that edits made meanwhile join it.

    With ``coalesce``, an instruction of the same kind and subject that is still waiting takes the
    new payload instead of a second row being written: a burst of edits becomes one call. A row
    whose last try may have reached DR is not reused: its next try looks for that try's effect and,
    finding it, would end done without ever sending the new payload.
    """
    payload = payload or {}
    if coalesce:
        with transaction.atomic():
            waiting = (
                Instruction.objects.select_for_update()
                .filter(kind=kind, subject=subject, state__in=WAITING_STATES, effect_uncertain=False)
                .order_by("created_at")
                .first()
            )
            if waiting is not None:
                waiting.payload = payload
                waiting.save(update_fields=["payload", "updated_at"])
                return waiting
    due = timezone.now() + timedelta(seconds=delay_seconds)
    instruction = Instruction.objects.create(kind=kind, subject=subject, payload=payload, next_attempt_at=due)
    from ..tasks import send_instruction

    enqueue_on_commit(send_instruction, instruction.pk, countdown=delay_seconds)
    return instruction


@dataclass
class SweepSummary:
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    def __str__(self) -> str:
        if not self.outcomes:
            return "nothing was due"
        parts = ", ".join(f"{count} {state}" for state, count in sorted(self.outcomes.items()))
        return f"{self.sent} sent: {parts}"


def instruction_send(*, instruction_id: int, ignore_backoff: bool = False) -> Instruction | None:
    """Send one instruction if it is due and nobody else holds it; None if it was not ours to send."""
    claimed = _claim(instruction_id, ignore_backoff=ignore_backoff)
    return _deliver(claimed) if claimed else None


def outbox_sweep(*, ignore_backoff: bool = False, max_rows: int | None = None) -> SweepSummary:
    """Send every due instruction once (and those whose sender's lease ran out)."""
    summary = SweepSummary()
    seen: set[int] = set()
    while max_rows is None or summary.sent < max_rows:
        # One row at a time: a claimed row's lease runs from its claim, so a batch claimed up front
        # could see its last rows' leases run out (and another sender re-claim and send them) while
        # the first ones are still being sent. Rows not reached yet also stay free for other senders.
        due = Instruction.objects.exclude(pk__in=seen).filter(_due_filter(timezone.now(), ignore_backoff))
        candidate = due.order_by("next_attempt_at", "pk").values_list("pk", flat=True).first()
        if candidate is None:
            break
        seen.add(candidate)
        instruction = _claim(candidate, ignore_backoff=ignore_backoff)
        if instruction is None:  # another sender claimed it first
            continue
        try:
            delivered = _deliver(instruction)
        except Exception:
            # Left in SENDING, the row comes due again when its lease runs out (and is then uncertain).
            logger.exception("sending instruction %s failed; it is retried when its lease runs out", instruction.pk)
            summary.outcomes["error"] += 1
        else:
            summary.outcomes[delivered.state] += 1
    return summary


def instructions_retry_now(*, instructions: Iterable[Instruction], by: Actor = None) -> int:
    """Send the instructions now (failed or waiting ones); returns how many were queued."""
    from ..tasks import send_instruction

    def send_after_commit(instruction: Instruction) -> None:
        enqueue_on_commit(send_instruction, instruction.pk)

    return _each_that_can("retry_now", instructions, by=by, description="retry requested", then=send_after_commit)


def instructions_cancel(*, instructions: Iterable[Instruction], by: Actor = None) -> int:
    """Never send the instructions (those not done or being sent); returns how many were cancelled."""
    return _each_that_can("cancel", instructions, by=by, description="cancelled by an operator")


def _each_that_can(
    transition: str,
    instructions: Iterable[Instruction],
    *,
    by: Actor,
    description: str,
    then: Callable[[Instruction], None] | None = None,
) -> int:
    count = 0
    for instruction in instructions:
        with transaction.atomic():
            locked = Instruction.objects.select_for_update().get(pk=instruction.pk)
            move = getattr(locked, transition)
            if not can_proceed(move):
                continue
            move(by=by, description=description)
            locked.save()
            if then is not None:
                then(locked)
            count += 1
    return count


def backoff_delay(attempts: int) -> float:
    """Seconds to wait after the given number of failed tries: exponential, capped, with jitter.

    The jitter takes at most half the delay, so each wait is at least as long as the one before.
    """
    delay = min(settings.DR_OUTBOX_BACKOFF_CAP_SECONDS, settings.DR_OUTBOX_BACKOFF_BASE_SECONDS * 2 ** (attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def _due_filter(now: datetime | Expression, ignore_backoff: bool) -> Q:
    waiting = Q(state__in=WAITING_STATES)
    if not ignore_backoff:
        waiting &= Q(next_attempt_at__lte=now)
    abandoned = Q(state=Instruction.State.SENDING) & (Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))
    # The same states once more, outside the OR: PostgreSQL then reads only the unfinished rows
    # through the state index. Without it, it walks the next_attempt_at index through every done
    # row for the oldest due one (0.7 s with 500,000 done rows), and a sweep runs every few seconds.
    unfinished = Q(state__in=(*WAITING_STATES, Instruction.State.SENDING))
    return unfinished & (waiting | abandoned)


def _lease() -> timedelta:
    return timedelta(seconds=settings.DR_OUTBOX_LEASE_SECONDS)


def _claim(instruction_id: int, *, ignore_backoff: bool) -> Instruction | None:
    """The row, claimed for this sender, if it was due; None if it was not (done, waiting for its
    backoff, or held by a sender whose lease still runs). One UPDATE in autocommit decides it and
    reads the claimed row back (``core.db.update_returning_compiled``)."""
    now = timezone.now()
    return update_returning_compiled(
        Instruction,
        ("outbox claim", ignore_backoff),
        partial(_claim_statement, ignore_backoff=ignore_backoff),
        values={"pk": instruction_id, "now": now, "until": now + _lease(), "token": uuid.uuid4()},
    )


def _claim_statement(*, ignore_backoff: bool) -> tuple[QuerySet[Instruction], dict[str, Any]]:
    now = Slot("now", Instruction, "updated_at")
    due = Instruction.objects.filter(_due_filter(now, ignore_backoff), pk=Slot("pk", Instruction, "id"))
    until, token = Slot("until", Instruction, "lease_expires_at"), Slot("token", Instruction, "claim_token")
    return due, Instruction.claim_changes(token=token, lease_expires_at=until, now=now)


def _instruction_locked() -> QuerySet[Instruction]:
    return Instruction.objects.select_for_update().filter(pk=Slot("pk", Instruction, "id"))


def lease_renew(instruction: Instruction) -> bool:
    """Push the sender's lease on ``instruction`` a full lease ahead; False if the claim is no longer
    this sender's (its lease ran out and another sender claimed the row with a new token)."""
    mine = Instruction.objects.filter(
        pk=instruction.pk, state=Instruction.State.SENDING, claim_token=instruction.claim_token
    )
    return bool(mine.update(lease_expires_at=timezone.now() + _lease()))


@dataclass
class _Outcome:
    kind: str  # one of Attempt.Outcome
    result: JSONObject | None = None
    error: errors.DigitalRiverError | None = None
    message: str = ""
    uncertain: bool = False


def _deliver(instruction: Instruction) -> Instruction:
    performer = registry.get_performer(instruction.kind)
    started_at = timezone.now()
    started = time.monotonic()
    calls: list[ApiCall] = []
    if performer is None:
        outcome = _Outcome(Attempt.Outcome.REJECTED, message=f"no performer is registered for {instruction.kind!r}")
    else:
        every = settings.DR_OUTBOX_LEASE_SECONDS / 3
        with (
            LeaseKeeper(lambda: lease_renew(instruction), every=every, what=f"instruction {instruction.pk}"),
            calls_held() as calls,
        ):
            outcome = _attempt(performer, instruction)
    duration_ms = int((time.monotonic() - started) * 1000)
    try:
        return _record(instruction, performer, outcome, started_at, duration_ms, calls)
    except BaseException:
        calls_write(calls)  # the calls happened even if their outcome could not be recorded
        raise


def _attempt(performer: registry.Performer, instruction: Instruction) -> _Outcome:
    client = get_client()
    # The Attempt takes the request id of the last answer of *this* try, never one left behind in
    # this thread by an earlier instruction (a try that fails before any call has none).
    forget_last_request_id()
    try:
        with calls_about(instruction.subject):
            if instruction.effect_uncertain:
                existing = performer.find_existing_effect(instruction, client)
                if existing is not None:
                    return _Outcome(
                        Attempt.Outcome.ALREADY_DONE,
                        result=existing,
                        message="found at DR after an uncertain try",
                    )
            return _Outcome(Attempt.Outcome.SUCCEEDED, result=performer.perform(instruction, client) or {})
    except errors.Conflict as exc:
        if exc.codes and set(exc.codes) <= errors.ALREADY_DONE_CODES | performer.already_done_codes:
            body = {"alreadyDone": exc.codes, "message": exc.message}
            return _Outcome(Attempt.Outcome.ALREADY_DONE, result=body, error=exc, message=exc.message)
        return _Outcome(Attempt.Outcome.REJECTED, error=exc, message=exc.message)
    except errors.DigitalRiverError as exc:
        kind = Attempt.Outcome.TRANSIENT if exc.transient else Attempt.Outcome.REJECTED
        return _Outcome(kind, error=exc, message=exc.message, uncertain=exc.effect_uncertain)
    except Exception as exc:
        # A bug on our side, possibly after DR answered: stop and show it rather than resend blindly.
        logger.exception("performer for %s failed", instruction.kind)
        return _Outcome(
            Attempt.Outcome.REJECTED,
            message=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}",
            uncertain=True,
        )


#: What an attempt's outcome may change: all but what the instruction asks (its kind, subject and
#: payload, which only a waiting row takes from a newer edit) and when it was written.
OUTCOME_FIELDS = tuple(
    field.name
    for field in Instruction._meta.concrete_fields
    if not field.primary_key and field.name not in {"kind", "subject", "payload", "created_at"}
)


def _record(
    instruction: Instruction,
    performer: registry.Performer | None,
    outcome: _Outcome,
    started_at: datetime,
    duration_ms: int,
    calls: list[ApiCall],
) -> Instruction:
    """Write the attempt, its calls and the outcome in one transaction, with what the performer's
    hook records (``on_done``, ``on_failed``).

    The hook runs without a savepoint of its own, which cost two round trips per instruction on
    the busiest path (issue 14): should it raise, the whole transaction is rolled back and written
    again without it, the hook's error recorded on the row instead."""
    try:
        with transaction.atomic():
            return _record_in_transaction(instruction, performer, outcome, started_at, duration_ms, calls)
    except _HookFailed as failed:
        with transaction.atomic():
            return _record_in_transaction(
                instruction, performer, outcome, started_at, duration_ms, calls, hook_error=storable_text(failed.text)
            )


class _HookFailed(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _record_in_transaction(
    instruction: Instruction,
    performer: registry.Performer | None,
    outcome: _Outcome,
    started_at: datetime,
    duration_ms: int,
    calls: list[ApiCall],
    *,
    hook_error: str | None = None,
) -> Instruction:
    error = outcome.error
    # DR's words arrive storable (client._json_or_text); an exception of ours may quote anything.
    outcome.message = storable_text(outcome.message)
    row = row_compiled(Instruction, "lock", _instruction_locked, values={"pk": instruction.pk})
    calls_write(calls, in_callers_transaction=True)
    Attempt.objects.create(
        instruction=row,
        number=instruction.attempts,
        started_at=started_at,
        duration_ms=duration_ms,
        outcome=outcome.kind,
        http_status=error.status if error else None,
        error_type=error.error_type if error else "",
        error_codes=error.codes if error else [],
        message=outcome.message[:5000],
        request_id=(error.request_id if error else last_request_id())[:100],
    )
    if row.state != Instruction.State.SENDING or row.claim_token != instruction.claim_token:
        logger.warning("instruction %s was taken over by another sender; not moving it", row.pk)
        return row
    code = error.first_code if error else ""
    if outcome.kind in (Attempt.Outcome.SUCCEEDED, Attempt.Outcome.ALREADY_DONE):
        assert performer is not None  # only a performer's try succeeds
        if hook_error is None:
            _run_hook(performer.on_done, row, outcome.result or {})
            row.mark_done(result=outcome.result, description=Attempt.Outcome(outcome.kind).label)
        else:
            # DR has done it; we failed to record it. Keep DR's answer, show the row to an
            # operator, and make a retry ask DR first (it finds the effect) instead of resending.
            row.result = outcome.result
            reason = f"DR did this, but recording it failed: {hook_error}"
            row.mark_failed(error=reason, code="", uncertain=True, description=reason[:500])
    elif outcome.kind == Attempt.Outcome.TRANSIENT and row.attempts_since_retry < settings.DR_OUTBOX_MAX_ATTEMPTS:
        wait = backoff_delay(row.attempts_since_retry)
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            wait = max(wait, retry_after)
        row.schedule_retry(
            at=timezone.now() + timedelta(seconds=wait),
            error=outcome.message,
            code=code,
            uncertain=outcome.uncertain,
        )
    else:
        reason = outcome.message
        if outcome.kind == Attempt.Outcome.TRANSIENT:
            reason = f"gave up after {row.attempts_since_retry} attempts; last error: {outcome.message}"
        row.mark_failed(error=reason, code=code, uncertain=outcome.uncertain, description=reason[:500])
        if performer is not None:
            if hook_error is None:
                _run_hook(performer.on_failed, row)
            else:
                row.last_error += f"\n\nrecording the failure failed too: {hook_error}"
    row.save(update_fields=OUTCOME_FIELDS)
    return row


def _run_hook(hook: Callable[..., None], *args: Any) -> None:
    """Run a performer's on_done/on_failed in the outcome's transaction; ``_HookFailed`` with the
    error text if it raised, for ``_record`` to roll back and record it."""
    try:
        hook(*args)
    except Exception as exc:
        logger.exception("%s raised", getattr(hook, "__qualname__", hook))
        raise _HookFailed(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}") from exc

"""The integration layer's tables: the webhook inbox, the outbox of instructions, the call log.

Transitions change local state only; the services decide when to call them and do the I/O.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Case, Expression, F, Value, When
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from django_fsm_log.decorators import fsm_log_by, fsm_log_description

from core.types import Actor, JSONObject


class WebhookEvent(FSMModelMixin, models.Model):
    """One event from DR, stored as received (payment secrets redacted) before anything acts on it."""

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        IGNORED = "ignored", "Ignored (no handler)"

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook delivery"
        POLLED = "polled", "Polled from GET /events"

    dr_event_id = models.CharField("DR event id", max_length=100, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    state = FSMField(default=State.RECEIVED, choices=State.choices, protected=True, db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.WEBHOOK)
    order_id = models.CharField(
        "DR order id", max_length=64, blank=True, db_index=True, help_text="The order the event is about."
    )
    live_mode = models.BooleanField(null=True)
    dr_created_at = models.DateTimeField("created at DR", null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    body = models.TextField(
        help_text="The request body as UTF-8: byte for byte, unless payment secrets had to be redacted from it."
    )
    payload = models.JSONField()
    headers = models.JSONField(default=dict, help_text="Request headers, credentials and cookies redacted.")
    attempts = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A worker is processing the event until then."
    )
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["state", "received_at"]),
            models.Index(fields=["order_id", "received_at"]),
            # The list's order, and the dashboard's events per hour and state counted from the index alone.
            models.Index(fields=["received_at", "state"], name="webhookevent_received_state"),
        ]
        permissions = [("replay_webhookevent", "Can replay webhook events")]

    # Told by the row itself (state, processed_at); failures and replays are logged (core/fsm_log.py).
    FSM_LOG_UNLOGGED = frozenset({"mark_processed", "mark_ignored"})

    def __str__(self) -> str:
        return f"{self.type} {self.dr_event_id}"

    @property
    def data_object(self) -> JSONObject:
        data = self.payload.get("data") if isinstance(self.payload, dict) else None
        obj = data.get("object") if isinstance(data, dict) else None
        return obj if isinstance(obj, dict) else {}

    @fsm_log_description
    @transition(field=state, source=State.RECEIVED, target=State.PROCESSED)
    def mark_processed(self, description: str | None = None) -> None:
        self.processed_at = timezone.now()
        self.lease_expires_at = None
        self.error = ""
        self.traceback = ""

    @fsm_log_description
    @transition(field=state, source=State.RECEIVED, target=State.IGNORED)
    def mark_ignored(self, description: str | None = None) -> None:
        self.processed_at = timezone.now()
        self.lease_expires_at = None
        self.error = ""
        self.traceback = ""

    @fsm_log_description
    @transition(field=state, source=State.RECEIVED, target=State.FAILED)
    def mark_failed(self, *, error: str, traceback: str, description: str | None = None) -> None:
        self.lease_expires_at = None
        self.error = error
        self.traceback = traceback

    @fsm_log_by
    @fsm_log_description
    @transition(field=state, source=[State.FAILED, State.IGNORED, State.PROCESSED], target=State.RECEIVED)
    def replay(self, by: Actor = None, description: str | None = None) -> None:
        self.processed_at = None


class Instruction(FSMModelMixin, models.Model):
    """One change we asked DR to make: written with the business change, sent after commit."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        RETRY_WAIT = "retry_wait", "Waiting to retry"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(
        max_length=None, db_index=True, help_text="What it is about, e.g. 'order:231388420336' or 'sku:A-1'."
    )
    payload = models.JSONField(default=dict)
    state = FSMField(default=State.PENDING, choices=State.choices, protected=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    attempts_before_retry = models.PositiveIntegerField(
        default=0, help_text="Attempts made before an operator's last retry: each retry gets the full allowance."
    )
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    effect_uncertain = models.BooleanField(
        default=False,
        help_text="The last try may have reached DR (timeout, 5xx, lost sender): ask DR before sending again.",
    )
    last_error = models.TextField(blank=True)
    last_error_code = models.CharField(max_length=100, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="DR's answer to the successful call.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["subject", "created_at"]),
            # The list's order, and the dashboard's instructions per hour and state counted from the index alone.
            models.Index(fields=["created_at", "state"], name="instruction_created_state"),
            # The dashboard's oldest waiting and oldest failed instructions, however many there are.
            models.Index(
                fields=["created_at"],
                name="instruction_waiting_created",
                condition=models.Q(state__in=["pending", "retry_wait"]),
            ),
            models.Index(
                fields=["finished_at"], name="instruction_failed_finished", condition=models.Q(state="failed")
            ),
            # The list's search by error code: the few instructions that have one.
            models.Index(
                fields=["last_error_code"], name="instruction_error_code", condition=~models.Q(last_error_code="")
            ),
        ]
        permissions = [("operate_instruction", "Can retry or cancel instructions")]

    # Told by the Attempt rows, one per try (core/fsm_log.py); failures and operators' moves are logged.
    # (A claim is no transition: one UPDATE writes it, see claim_changes.)
    FSM_LOG_UNLOGGED = frozenset({"schedule_retry", "mark_done"})

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}"

    @classmethod
    def claim_changes(
        cls,
        *,
        token: uuid.UUID | Expression,
        lease_expires_at: datetime | Expression,
        now: datetime | Expression | None = None,
    ) -> dict[str, Any]:
        """What claiming a due row (waiting, or sending with its lease run out) writes, as one UPDATE
        (``outbox._claim``): the state and lease in a single statement, which no other sender can
        interleave. SENDING -> SENDING is a re-claim of a row whose sender died: its effect at DR
        is then uncertain. The expressions read the row as it was before the UPDATE. The values
        may be ``core.db.Slot`` expressions of a statement compiled once."""
        return {
            "state": cls.State.SENDING,
            "effect_uncertain": Case(When(state=cls.State.SENDING, then=Value(True)), default=F("effect_uncertain")),
            "claim_token": token,
            "lease_expires_at": lease_expires_at,
            "attempts": F("attempts") + 1,
            "updated_at": timezone.now() if now is None else now,
        }

    @fsm_log_description
    @transition(field=state, source=State.SENDING, target=State.DONE)
    def mark_done(self, *, result: JSONObject | None, description: str | None = None) -> None:
        self.result = result
        self.finished_at = timezone.now()
        self.last_error = ""
        self.last_error_code = ""
        self._release()

    @transition(field=state, source=State.SENDING, target=State.RETRY_WAIT)
    def schedule_retry(self, *, at: datetime, error: str, code: str, uncertain: bool) -> None:
        self.next_attempt_at = at
        self.last_error = error
        self.last_error_code = code
        self.effect_uncertain = self.effect_uncertain or uncertain
        self._release()

    @fsm_log_description
    @transition(field=state, source=State.SENDING, target=State.FAILED)
    def mark_failed(self, *, error: str, code: str, uncertain: bool = False, description: str | None = None) -> None:
        self.last_error = error
        self.last_error_code = code
        self.effect_uncertain = self.effect_uncertain or uncertain
        self.finished_at = timezone.now()
        self._release()

    @fsm_log_by
    @fsm_log_description
    @transition(field=state, source=[State.FAILED, State.RETRY_WAIT, State.PENDING], target=State.PENDING)
    def retry_now(self, by: Actor = None, description: str | None = None) -> None:
        self.attempts_before_retry = self.attempts
        self.next_attempt_at = timezone.now()
        self.finished_at = None

    @fsm_log_by
    @fsm_log_description
    @transition(field=state, source=[State.PENDING, State.RETRY_WAIT, State.FAILED], target=State.CANCELLED)
    def cancel(self, by: Actor = None, description: str | None = None) -> None:
        self.finished_at = timezone.now()

    @property
    def attempts_since_retry(self) -> int:
        return self.attempts - self.attempts_before_retry

    def _release(self) -> None:
        self.claim_token = None
        self.lease_expires_at = None


class Attempt(models.Model):
    """One try at sending an instruction."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        ALREADY_DONE = "already_done", "Effect already held at DR"
        TRANSIENT = "transient", "Transient failure"
        REJECTED = "rejected", "Rejected by DR"

    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE, related_name="attempt_set")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=50, blank=True)
    error_codes = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    request_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["instruction", "number"]
        constraints = [
            models.UniqueConstraint(fields=["instruction", "number"], name="attempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.instruction} #{self.number}: {self.get_outcome_display()}"


class ApiCall(models.Model):
    """One HTTP request to DR, logged with secrets redacted and bodies cut short."""

    # The methods the client sends (so that the list filters by them without reading the table).
    method = models.CharField(max_length=10, choices=[(method, method) for method in ("GET", "POST", "PUT", "DELETE")])
    path = models.CharField(max_length=500, db_index=True)
    query = models.CharField(max_length=1000, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty when no answer came.")
    duration_ms = models.PositiveIntegerField(default=0)
    request_id = models.CharField("x-dr-requestid", max_length=100, blank=True, db_index=True)
    error_code = models.CharField(max_length=100, blank=True, db_index=True)
    error_message = models.TextField(blank=True)
    request_body = models.TextField(blank=True)
    response_body = models.TextField(blank=True)
    subject = models.CharField(max_length=128, blank=True, db_index=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "API call"
        indexes = [
            models.Index(fields=["subject", "started_at"]),
            # The list's filter by status: its values, and each status's calls newest first.
            models.Index(fields=["status", "started_at"], name="apicall_status_started"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status or 'no answer'}"

    @property
    def succeeded(self) -> bool:
        return self.status is not None and self.status < 400

"""The outbox: instructions sent after commit, retried with backoff, claimed under a lease, never sent twice.

DR is faked at the HTTP level with ``responses``; the performer makes real calls through the client.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
import time
import types
import uuid
from datetime import timedelta
from io import StringIO

import pytest
import requests
import responses
import urllib3
from django.core.management import call_command
from django.db import connections, transaction
from django.urls import reverse
from django.utils import timezone

from digitalriver import registry
from digitalriver.errors import ALREADY_DONE_CODES
from digitalriver.models import ApiCall, Attempt, Instruction
from digitalriver.services import outbox
from digitalriver.services.outbox import (
    backoff_delay,
    instruction_enqueue,
    instruction_send,
    instructions_cancel,
    instructions_retry_now,
    outbox_sweep,
)

BASE = "https://dr.outbox.test"
KIND = "test.fulfillment"
ORDER = "240000000001"

State = Instruction.State

# --- fake DR -------------------------------------------------------------------------------------


def created():
    """DR accepts the fulfillment."""
    return (201, {}, None)


def refused(status, code, message, *, error_type="", headers=None):
    body = {"type": error_type or {400: "bad_request", 409: "conflict", 429: "too_many_requests"}.get(status, "error")}
    body["errors"] = [{"code": code, "parameter": "orderId", "message": message}] if code else []
    return (status, headers or {}, body)


def unavailable():
    return refused(503, "", "", error_type="service_unavailable")


def read_timeout():
    return requests.exceptions.ReadTimeout("read timed out")


class FakeDR:
    """POST and GET /fulfillments. POST answers come from a queue (201 once it is empty)."""

    def __init__(self, rsps: responses.RequestsMock, *, delay: float = 0.0):
        self.answers: list = []
        self.existing: list[dict] = []
        self.posts: list[dict] = []
        self.gets: list[str] = []
        self.delay = delay
        self._lock = threading.Lock()
        rsps.add_callback(responses.POST, f"{BASE}/fulfillments", callback=self._post)
        rsps.add_callback(responses.GET, re.compile(rf"{re.escape(BASE)}/fulfillments(\?.*)?$"), callback=self._get)

    def answer(self, *answers):
        self.answers.extend(answers)

    def posts_for(self, instruction: Instruction) -> list[dict]:
        return [body for body in self.posts if body["metadata"]["instructionId"] == str(instruction.pk)]

    def _post(self, request):
        body = json.loads(request.body)
        with self._lock:
            self.posts.append(body)
            number = len(self.posts)
            answer = self.answers.pop(0) if self.answers else created()
        if self.delay:
            time.sleep(self.delay)
        if isinstance(answer, Exception):
            return answer
        status, headers, payload = answer
        if payload is None:
            payload = {"id": f"ful_{number}", "orderId": body["orderId"], "items": body["items"]}
            payload["metadata"] = body["metadata"]
            payload["liveMode"] = False
            with self._lock:
                self.existing.append(payload)
        return status, {"x-dr-requestid": f"req-post-{number}", **headers}, json.dumps(payload)

    def _get(self, request):
        with self._lock:
            self.gets.append(request.url)
            data = list(self.existing)
        return 200, {"x-dr-requestid": f"req-get-{len(self.gets)}"}, json.dumps({"hasMore": False, "data": data})


class CapturePerformer(registry.Performer):
    """Captures (part of) an order's payment: POST /fulfillments, as the fulfillment app will."""

    kind = KIND

    def __init__(self):
        self.found: list[int] = []
        self.done: list[tuple[int, dict]] = []
        self.failed: list[int] = []
        self.before_post = None  # a hook run once inside perform, before the POST

    def perform(self, instruction, client):
        payload = instruction.payload
        body = {
            "orderId": payload["orderId"],
            "items": payload["items"],
            "metadata": {"instructionId": str(instruction.pk)},
        }
        hook, self.before_post = self.before_post, None
        if hook is not None:
            hook(instruction)
        return client.post("/fulfillments", body)

    def find_existing_effect(self, instruction, client):
        self.found.append(instruction.pk)
        page = client.get("/fulfillments", {"orderId": instruction.payload["orderId"]})
        for fulfillment in page["data"]:
            if fulfillment.get("metadata", {}).get("instructionId") == str(instruction.pk):
                return fulfillment
        return None

    def on_done(self, instruction, result):
        self.done.append((instruction.pk, result))

    def on_failed(self, instruction):
        self.failed.append(instruction.pk)


@pytest.fixture
def dr_settings(settings):
    settings.DR_API_BASE_URL = BASE
    settings.DR_RATE_LIMIT_PER_SECOND = 100_000
    settings.DR_CLIENT_MAX_RETRIES = 0
    settings.DR_OUTBOX_MAX_ATTEMPTS = 10
    settings.DR_OUTBOX_BACKOFF_BASE_SECONDS = 30
    settings.DR_OUTBOX_BACKOFF_CAP_SECONDS = 3600
    settings.DR_OUTBOX_LEASE_SECONDS = 300
    return settings


@pytest.fixture
def dr(dr_settings):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeDR(rsps)


@pytest.fixture
def performer():
    instance = CapturePerformer()
    registry.register_performer(instance)
    yield instance
    registry.unregister_performer(KIND)


def payload(quantity=1, order_id=ORDER):
    return {"orderId": order_id, "items": [{"itemId": "111", "quantity": quantity}]}


@pytest.fixture
def enqueue(django_capture_on_commit_callbacks):
    """Enqueue in a transaction that commits; the send queued on commit runs before it returns."""

    def enqueue_one(*, quantity=1, order_id=ORDER, coalesce=False):
        with django_capture_on_commit_callbacks(execute=True):
            instruction = instruction_enqueue(
                kind=KIND, subject=f"order:{order_id}", payload=payload(quantity, order_id), coalesce=coalesce
            )
        instruction = fresh(instruction)
        return instruction

    return enqueue_one


def waiting(order_id=ORDER, **fields) -> Instruction:
    """A pending row written straight to the table: nothing is queued to send it."""
    return Instruction.objects.create(
        kind=KIND, subject=f"order:{order_id}", payload=payload(order_id=order_id), **fields
    )


def fresh(instruction: Instruction) -> Instruction:
    """The row as stored (refresh_from_db cannot set a protected FSM field)."""
    return Instruction.objects.get(pk=instruction.pk)


def sweep(**kwargs):
    return outbox_sweep(ignore_backoff=True, **kwargs)


def wait_of(instruction: Instruction) -> float:
    """Seconds from the end of the last attempt to the next one."""
    last = instruction.attempt_set.order_by("-number").first()
    ended = last.started_at + timedelta(milliseconds=last.duration_ms)
    return (instruction.next_attempt_at - ended).total_seconds()


# --- after commit, exactly once ------------------------------------------------------------------


@pytest.mark.django_db
def test_nothing_is_sent_when_the_transaction_rolls_back(dr, performer, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        instruction_enqueue(kind=KIND, subject=f"order:{ORDER}", payload=payload())
        raise RuntimeError("the business change failed")
    assert callbacks == []
    assert not Instruction.objects.exists()
    assert dr.posts == []
    assert not ApiCall.objects.exists()


@pytest.mark.django_db
def test_nothing_is_sent_before_commit(dr, performer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        instruction = instruction_enqueue(kind=KIND, subject=f"order:{ORDER}", payload=payload())
    assert dr.posts == []
    assert Instruction.objects.get().state == State.PENDING
    assert len(callbacks) == 1
    callbacks[0]()
    instruction = fresh(instruction)
    assert instruction.state == State.DONE


@pytest.mark.django_db
def test_sent_once_after_commit_and_done_with_drs_answer(dr, performer, enqueue):
    instruction = enqueue(quantity=2)

    assert instruction.state == State.DONE
    assert dr.posts == [
        {
            "orderId": ORDER,
            "items": [{"itemId": "111", "quantity": 2}],
            "metadata": {"instructionId": str(instruction.pk)},
        }
    ]
    assert instruction.result["id"] == "ful_1"
    assert instruction.result["orderId"] == ORDER
    assert instruction.attempts == 1
    assert instruction.finished_at is not None
    assert instruction.claim_token is None and instruction.lease_expires_at is None
    attempt = instruction.attempt_set.get()
    assert attempt.number == 1
    assert attempt.outcome == Attempt.Outcome.SUCCEEDED
    assert attempt.request_id == "req-post-1"
    assert attempt.http_status is None and attempt.error_codes == []
    assert performer.done == [(instruction.pk, instruction.result)]
    assert ApiCall.objects.get().subject == f"order:{ORDER}"

    # Nothing is due any more: a later sweep sends nothing.
    assert str(sweep()) == "nothing was due"
    assert len(dr.posts) == 1


@pytest.mark.django_db(transaction=True)
def test_real_commit_and_rollback(dr, performer):
    with pytest.raises(RuntimeError), transaction.atomic():
        instruction_enqueue(kind=KIND, subject="order:1", payload=payload(order_id="1"))
        raise RuntimeError
    assert dr.posts == []
    assert not Instruction.objects.exists()

    with transaction.atomic():
        instruction = instruction_enqueue(kind=KIND, subject="order:2", payload=payload(order_id="2"))
        assert dr.posts == []
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert [body["orderId"] for body in dr.posts] == ["2"]


# --- transient failures --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "status", "code", "uncertain"),
    [
        (unavailable(), 503, "service_unavailable", True),
        (read_timeout(), None, "", True),
        (
            refused(429, "too_many_requests", "Slow down.", headers={"Retry-After": "2"}),
            429,
            "too_many_requests",
            False,
        ),
        (
            requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/fulfillments", "refused")),
            None,
            "",
            False,
        ),
    ],
    ids=["503", "timeout", "429", "connection-refused"],
)
def test_transient_failure_waits_to_retry(dr, performer, enqueue, answer, status, code, uncertain):
    dr.answer(answer)
    instruction = enqueue()

    assert instruction.state == State.RETRY_WAIT
    assert instruction.attempts == 1
    assert instruction.last_error
    assert instruction.last_error_code == code
    assert instruction.effect_uncertain is uncertain
    assert instruction.claim_token is None
    assert 15 <= wait_of(instruction) <= 30
    attempt = instruction.attempt_set.get()
    assert attempt.outcome == Attempt.Outcome.TRANSIENT
    assert attempt.http_status == status
    assert performer.done == [] and performer.failed == []
    assert len(dr.posts) == 1  # the client never resends a POST itself

    # Not due before its time...
    assert str(outbox_sweep()) == "nothing was due"
    # ...and sent when it is.
    Instruction.objects.filter(pk=instruction.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert str(outbox_sweep()) == "1 sent: 1 done"
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    # Only a try that may have reached DR makes the next one ask DR first; DR had nothing, so it is sent.
    assert performer.found == ([instruction.pk] if uncertain else [])
    assert len(dr.posts) == 2


@pytest.mark.django_db
def test_each_wait_is_longer_than_the_one_before(dr, performer, enqueue, monkeypatch):
    monkeypatch.setattr(outbox, "random", random.Random(20261122))
    dr.answer(
        unavailable(),
        read_timeout(),
        refused(429, "too_many_requests", "Slow down.", headers={"Retry-After": "1"}),
        unavailable(),
        read_timeout(),
    )
    instruction = enqueue()
    waits = [wait_of(instruction)]
    for _ in range(4):
        assert str(sweep()) == "1 sent: 1 retry_wait"
        instruction = fresh(instruction)
        waits.append(wait_of(instruction))

    assert instruction.attempts == 5
    assert all(later > earlier for earlier, later in itertools.pairwise(waits)), waits
    for number, wait in enumerate(waits, start=1):
        full = 30 * 2 ** (number - 1)
        assert full / 2 - 1 <= wait <= full + 1, (number, waits)
    assert [a.outcome for a in instruction.attempt_set.all()] == [Attempt.Outcome.TRANSIENT] * 5


def test_backoff_is_exponential_capped_and_jittered(settings, monkeypatch):
    settings.DR_OUTBOX_BACKOFF_BASE_SECONDS = 30
    settings.DR_OUTBOX_BACKOFF_CAP_SECONDS = 3600
    monkeypatch.setattr(outbox.random, "uniform", lambda low, high: high)
    longest = [backoff_delay(n) for n in range(1, 12)]
    monkeypatch.setattr(outbox.random, "uniform", lambda low, high: low)
    shortest = [backoff_delay(n) for n in range(1, 12)]

    assert longest[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert shortest[:3] == [15, 30, 60]
    assert max(longest) == 3600
    # Even the longest jitter of one wait is no longer than the shortest of the next, below the cap.
    assert all(longest[n] <= shortest[n + 1] for n in range(6))


@pytest.mark.django_db
@pytest.mark.parametrize(("retry_after", "low", "high"), [("600", 600, 601), ("5", 15, 30)])
def test_retry_after_is_a_minimum(dr, performer, enqueue, retry_after, low, high):
    dr.answer(refused(429, "too_many_requests", "Too many requests.", headers={"Retry-After": retry_after}))
    instruction = enqueue()
    assert instruction.state == State.RETRY_WAIT
    assert low <= wait_of(instruction) <= high
    assert instruction.attempt_set.get().http_status == 429


@pytest.mark.django_db
def test_gives_up_after_max_attempts_with_a_reason(dr, performer, enqueue, settings):
    settings.DR_OUTBOX_MAX_ATTEMPTS = 3
    dr.answer(unavailable(), unavailable(), unavailable(), created())
    instruction = enqueue()
    sweep()
    sweep()
    instruction = fresh(instruction)

    assert instruction.state == State.FAILED
    assert instruction.attempts == 3
    assert "gave up after 3 attempts" in instruction.last_error
    assert instruction.last_error_code == "service_unavailable"
    assert instruction.finished_at is not None
    assert performer.failed == [instruction.pk]
    assert len(dr.posts) == 3
    assert instruction.attempt_set.count() == 3
    # A 5xx may have reached DR: each later try asked DR first.
    assert performer.found == [instruction.pk, instruction.pk]

    assert str(sweep()) == "nothing was due"
    assert len(dr.posts) == 3


# --- DR's refusals -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("code", sorted(ALREADY_DONE_CODES))
def test_conflict_that_says_the_effect_holds_is_done(dr, performer, enqueue, code):
    message = f"Resource '{ORDER}' is already {code}."
    dr.answer(refused(409, code, message))
    instruction = enqueue()

    assert instruction.state == State.DONE
    assert instruction.result["alreadyDone"] == [code]
    attempt = instruction.attempt_set.get()
    assert attempt.outcome == Attempt.Outcome.ALREADY_DONE
    assert attempt.http_status == 409
    assert attempt.error_codes == [code]
    assert attempt.request_id == "req-post-1"
    assert performer.done == [(instruction.pk, instruction.result)]
    assert str(sweep()) == "nothing was due"
    assert len(dr.posts) == 1


@pytest.mark.django_db
def test_performer_specific_already_done_codes_combine_with_the_shared_ones(dr, performer, enqueue, monkeypatch):
    monkeypatch.setattr(performer, "already_done_codes", frozenset({"shipment_recorded"}))
    dr.answer(
        (
            409,
            {},
            {
                "type": "conflict",
                "errors": [
                    {"code": "order_fulfilled", "parameter": "orderId", "message": "fulfilled"},
                    {"code": "shipment_recorded", "parameter": "shipmentId", "message": "recorded"},
                ],
            },
        )
    )
    assert enqueue().state == State.DONE


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "status", "code", "message"),
    [
        (
            refused(409, "quantity_too_large", "Quantity 5 is larger than the 2 capturable."),
            409,
            "quantity_too_large",
            "Quantity 5 is larger than the 2 capturable.",
        ),
        (
            refused(400, "invalid_parameter", "'items[0].quantity' must be positive."),
            400,
            "invalid_parameter",
            "'items[0].quantity' must be positive.",
        ),
        # A conflict mixing a real error with an already-done code is a real error.
        (
            (
                409,
                {},
                {
                    "type": "conflict",
                    "errors": [
                        {"code": "item_fulfilled", "parameter": "itemId", "message": "fulfilled"},
                        {"code": "quantity_too_large", "parameter": "quantity", "message": "Too many."},
                    ],
                },
            ),
            409,
            "item_fulfilled",
            "Too many.",
        ),
    ],
    ids=["409-quantity_too_large", "400", "409-mixed"],
)
def test_refusal_fails_with_drs_message_and_is_not_retried(dr, performer, enqueue, answer, status, code, message):
    dr.answer(answer)
    instruction = enqueue()

    assert instruction.state == State.FAILED
    assert message in instruction.last_error
    assert instruction.last_error_code == code
    assert instruction.effect_uncertain is False
    attempt = instruction.attempt_set.get()
    assert attempt.outcome == Attempt.Outcome.REJECTED
    assert attempt.http_status == status
    assert message in attempt.message
    assert attempt.request_id == "req-post-1"
    assert performer.failed == [instruction.pk]

    assert str(sweep()) == "nothing was due"
    assert len(dr.posts) == 1


# --- ambiguous failures: ask DR before sending again ---------------------------------------------


@pytest.mark.django_db
def test_after_a_timeout_the_effect_found_at_dr_ends_done_without_a_second_post(dr, performer, enqueue):
    dr.answer(read_timeout())
    instruction = enqueue()
    assert instruction.state == State.RETRY_WAIT
    assert instruction.effect_uncertain
    # DR did take the first POST before the answer was lost.
    dr.existing.append({"id": "ful_lost", "orderId": ORDER, "metadata": {"instructionId": str(instruction.pk)}})
    dr.existing.append({"id": "ful_other", "orderId": ORDER, "metadata": {"instructionId": "someone-else"}})

    assert str(sweep()) == "1 sent: 1 done"
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert instruction.result["id"] == "ful_lost"
    assert len(dr.posts) == 1
    assert performer.found == [instruction.pk]
    assert len(dr.gets) == 1 and f"orderId={ORDER}" in dr.gets[0]
    second = instruction.attempt_set.get(number=2)
    assert second.outcome == Attempt.Outcome.ALREADY_DONE
    assert second.request_id == "req-get-1"


@pytest.mark.django_db
def test_after_a_timeout_nothing_found_at_dr_sends_again(dr, performer, enqueue):
    dr.answer(read_timeout())
    instruction = enqueue()
    sweep()
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert performer.found == [instruction.pk]
    assert len(dr.posts) == 2


@pytest.mark.django_db
def test_a_definite_failure_does_not_ask_dr_first(dr, performer, enqueue):
    dr.answer(refused(429, "too_many_requests", "Slow down.", headers={"Retry-After": "1"}))
    instruction = enqueue()
    sweep()
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert performer.found == []
    assert dr.gets == []


# --- leases and claims ---------------------------------------------------------------------------


def abandoned(*, lease_delta: timedelta, **fields) -> Instruction:
    """A row a sender claimed (attempt 1) and never finished."""
    return waiting(
        state=State.SENDING,
        attempts=1,
        claim_token=uuid.uuid4(),
        lease_expires_at=timezone.now() + lease_delta,
        **fields,
    )


@pytest.mark.django_db
def test_an_expired_lease_is_reclaimed_and_treated_as_uncertain(dr, performer):
    instruction = abandoned(lease_delta=timedelta(seconds=-1))

    # Due regardless of backoff: the plain sweep takes it.
    assert str(outbox_sweep()) == "1 sent: 1 done"
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert instruction.effect_uncertain is True
    assert instruction.attempts == 2
    assert instruction.claim_token is None
    assert performer.found == [instruction.pk]  # asked DR first: the lost sender may have sent it
    assert len(dr.posts) == 1
    assert list(instruction.attempt_set.values_list("number", flat=True)) == [2]


@pytest.mark.django_db
def test_a_reclaimed_row_already_done_at_dr_is_not_sent_again(dr, performer):
    instruction = abandoned(lease_delta=timedelta(minutes=-10))
    dr.existing.append({"id": "ful_9", "orderId": ORDER, "metadata": {"instructionId": str(instruction.pk)}})
    sweep()
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert instruction.result["id"] == "ful_9"
    assert dr.posts == []


@pytest.mark.django_db
def test_a_valid_lease_is_left_alone(dr, performer):
    instruction = abandoned(lease_delta=timedelta(seconds=60))
    before = Instruction.objects.values().get(pk=instruction.pk)

    assert str(sweep()) == "nothing was due"
    assert instruction_send(instruction_id=instruction.pk, ignore_backoff=True) is None
    assert Instruction.objects.values().get(pk=instruction.pk) == before
    assert dr.posts == [] and dr.gets == []
    assert performer.found == []


@pytest.mark.django_db
def test_the_old_sender_finishing_late_does_not_move_the_row(dr, performer, enqueue):
    """Sender 1 stalls past its lease before its POST; a sweep re-claims and finishes; then sender 1 POSTs."""
    inner = {}

    def stall_past_the_lease(instruction):
        Instruction.objects.filter(pk=instruction.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        inner["summary"] = str(outbox_sweep())
        inner["row"] = Instruction.objects.values("state", "result", "attempts").get(pk=instruction.pk)

    performer.before_post = stall_past_the_lease
    # The sweep's POST is the first DR sees; the late one is refused.
    dr.answer(created(), refused(409, "quantity_too_large", "Nothing left to capture."))
    instruction = enqueue()

    assert inner["summary"] == "1 sent: 1 done"
    assert inner["row"]["state"] == State.DONE
    assert instruction.state == State.DONE
    assert instruction.result["id"] == "ful_1"
    assert instruction.attempts == 2
    assert instruction.last_error == ""
    assert len(dr.posts) == 2
    assert performer.done == [(instruction.pk, instruction.result)]
    assert performer.failed == []
    # Both tries are on record, the late one as what it was.
    outcomes = dict(instruction.attempt_set.values_list("number", "outcome"))
    assert outcomes == {1: Attempt.Outcome.REJECTED, 2: Attempt.Outcome.SUCCEEDED}


@pytest.mark.django_db
def test_the_old_sender_cannot_move_a_row_a_new_sender_holds(dr, performer):
    """Sender 1 stalls, its lease runs out, sender 2 claims; sender 1 finishes while sender 2 is sending."""
    instruction = waiting()
    due = Instruction.objects.filter(pk=instruction.pk)
    first = outbox._claim(instruction.pk, ignore_backoff=False)
    due.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = outbox._claim(instruction.pk, ignore_backoff=False)
    assert first is not None and second is not None
    assert second.claim_token != first.claim_token
    assert second.effect_uncertain and second.attempts == 2

    dr.answer(refused(400, "invalid_parameter", "Too late."))
    outbox._deliver(first)
    row = fresh(instruction)
    assert row.state == State.SENDING
    assert row.claim_token == second.claim_token
    assert row.last_error == ""
    assert performer.failed == []
    assert row.attempt_set.get().number == 1  # the late try is on record all the same

    outbox._deliver(second)
    row = fresh(instruction)
    assert row.state == State.DONE
    assert performer.found == [instruction.pk]


@pytest.mark.django_db
def test_a_sweep_claims_one_row_at_a_time(dr, performer):
    """Rows a sweep has not reached yet stay claimable: a long batch must not outlive its own leases."""
    first, second = waiting(order_id="1"), waiting(order_id="2")
    seen = {}

    def look(instruction):
        seen[instruction.pk] = Instruction.objects.get(pk=(second if instruction.pk == first.pk else first).pk).state

    performer.before_post = look
    assert str(sweep()) == "2 sent: 2 done"
    assert list(seen.values()) == [State.PENDING]


@pytest.mark.django_db
def test_a_crashing_on_done_does_not_stop_the_sweep(dr, performer):
    first, second = waiting(order_id="1"), waiting(order_id="2")
    calls = []

    def on_done(instruction, result):
        calls.append(instruction.pk)
        if instruction.pk == first.pk:
            raise ValueError("no such order line")

    performer.on_done = on_done
    summary = sweep()
    first = fresh(first)
    second = fresh(second)

    assert second.state == State.DONE
    assert first.state == State.FAILED
    assert "no such order line" in first.last_error
    assert first.result["id"].startswith("ful_")  # DR's answer is kept for the operator
    assert first.effect_uncertain  # a retry asks DR first instead of sending again
    assert first.claim_token is None
    assert summary.outcomes == {State.DONE: 1, State.FAILED: 1}
    assert sorted(calls) == sorted([first.pk, second.pk])

    # The operator's retry finds the effect at DR and records it without a second POST.
    performer.on_done = lambda instruction, result: None
    instructions_retry_now(instructions=[first])
    sweep()
    first = fresh(first)
    assert first.state == State.DONE
    assert len(dr.posts_for(first)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("hook", ["on_done", "on_failed"])
def test_what_a_failing_hook_wrote_is_rolled_back_and_the_attempt_is_kept_once(dr, performer, hook):
    """The hook runs without a savepoint of its own (outbox._record): when it raises, the outcome's
    transaction is written again without it, so none of its writes stay and nothing is written twice."""
    if hook == "on_failed":
        dr.answer(refused(409, "quantity_too_large", "too many"))
    instruction = waiting()

    def half_done(*args):
        Instruction.objects.create(kind="test.written_by_hook", subject="x", payload={})
        raise ValueError("no such order line")

    setattr(performer, hook, half_done)
    instruction_send(instruction_id=instruction.pk)
    instruction = fresh(instruction)

    assert not Instruction.objects.filter(kind="test.written_by_hook").exists()
    assert instruction.state == State.FAILED
    assert "no such order line" in instruction.last_error
    assert instruction.attempt_set.count() == 1
    assert ApiCall.objects.count() == 1
    if hook == "on_done":
        assert instruction.effect_uncertain and instruction.result["id"].startswith("ful_")
    else:
        assert "too many" in instruction.last_error and "recording the failure failed too" in instruction.last_error


@pytest.mark.django_db
def test_a_bug_in_the_performer_fails_the_row_without_an_old_request_id(dr, performer, enqueue):
    enqueue()  # a successful call leaves its request id behind in this thread
    broken = waiting(order_id="2")
    Instruction.objects.filter(pk=broken.pk).update(payload={"no": "orderId"})

    assert str(sweep()) == "1 sent: 1 failed"
    broken = fresh(broken)
    assert broken.state == State.FAILED
    assert "KeyError" in broken.last_error
    assert broken.effect_uncertain
    assert broken.attempt_set.get().request_id == ""


@pytest.mark.django_db
def test_an_unknown_kind_fails_with_a_reason(dr):
    instruction = Instruction.objects.create(kind="test.nobody", subject="x", payload={})
    sweep()
    instruction = fresh(instruction)
    assert instruction.state == State.FAILED
    assert "no performer" in instruction.last_error
    assert dr.posts == []


# --- coalescing ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_coalescing_turns_a_burst_into_one_call_with_the_last_payload(
    dr, performer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rows = [
            instruction_enqueue(kind=KIND, subject=f"order:{ORDER}", payload=payload(quantity), coalesce=True)
            for quantity in range(1, 6)
        ]
    assert len({row.pk for row in rows}) == 1
    instruction = Instruction.objects.get()
    assert instruction.payload == payload(5)
    assert instruction.state == State.DONE
    assert [body["items"][0]["quantity"] for body in dr.posts] == [5]

    # A finished instruction is not reused: the next change is a new call.
    later = instruction_enqueue(kind=KIND, subject=f"order:{ORDER}", payload=payload(6), coalesce=True)
    assert later.pk != instruction.pk
    # Another subject, or another kind, is never merged.
    other = instruction_enqueue(kind=KIND, subject="order:2", payload=payload(7), coalesce=True)
    assert other.pk != later.pk


@pytest.mark.django_db
def test_coalescing_takes_over_a_row_waiting_after_a_definite_failure(dr, performer, enqueue):
    dr.answer(refused(429, "too_many_requests", "Slow down.", headers={"Retry-After": "60"}))
    first = enqueue(quantity=1, coalesce=True)
    assert first.state == State.RETRY_WAIT
    second = enqueue(quantity=2, coalesce=True)
    assert second.pk == first.pk
    assert fresh(first).payload == payload(2)
    sweep()
    assert [body["items"][0]["quantity"] for body in dr.posts] == [1, 2]


@pytest.mark.django_db
def test_coalescing_never_takes_over_a_row_whose_effect_is_uncertain(dr, performer, enqueue):
    """The timed-out call did reach DR; reusing the row would end it done on finding that call's effect."""
    dr.answer(read_timeout())
    first = enqueue(quantity=1, coalesce=True)
    dr.existing.append({"id": "ful_1", "orderId": ORDER, "metadata": {"instructionId": str(first.pk)}})
    second = enqueue(quantity=2, coalesce=True)

    assert second.pk != first.pk
    assert fresh(first).payload == payload(1)
    assert second.state == State.DONE
    sweep()
    assert fresh(first).state == State.DONE
    assert [body["items"][0]["quantity"] for body in dr.posts] == [1, 2]


@pytest.mark.django_db
def test_without_coalescing_every_enqueue_is_a_call(dr, performer, enqueue):
    enqueue(quantity=1)
    enqueue(quantity=2)
    assert Instruction.objects.filter(state=State.DONE).count() == 2
    assert len(dr.posts) == 2


# --- operators -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_retry_now_sends_a_failed_instruction_again(dr, performer, enqueue, django_capture_on_commit_callbacks):
    dr.answer(refused(400, "invalid_parameter", "Bad."))
    instruction = enqueue()
    assert instruction.state == State.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        assert instructions_retry_now(instructions=[instruction]) == 1
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert instruction.attempts == 2
    assert len(dr.posts) == 2
    # Done is final: nothing to retry.
    assert instructions_retry_now(instructions=[instruction]) == 0


@pytest.mark.django_db
def test_an_operator_retry_after_giving_up_gets_the_full_allowance_again(
    dr, performer, enqueue, settings, django_capture_on_commit_callbacks
):
    settings.DR_OUTBOX_MAX_ATTEMPTS = 2
    dr.answer(unavailable(), unavailable(), unavailable(), created())
    instruction = enqueue()
    sweep()
    assert fresh(instruction).state == State.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        instructions_retry_now(instructions=[instruction])
    instruction = fresh(instruction)
    assert instruction.state == State.RETRY_WAIT  # one transient failure is not the end of a fresh allowance
    sweep()
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert instruction.attempts == 4


@pytest.mark.django_db
def test_an_instruction_enqueued_with_a_delay_waits_for_it(dr, performer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        instruction = instruction_enqueue(kind=KIND, subject=f"order:{ORDER}", payload=payload(), delay_seconds=60)
    assert fresh(instruction).state == State.PENDING
    assert dr.posts == []
    assert outbox_sweep().sent == 0
    assert outbox_sweep(ignore_backoff=True).sent == 1
    assert len(dr.posts) == 1


@pytest.mark.django_db
def test_retry_now_makes_a_waiting_instruction_due(dr, performer, enqueue):
    dr.answer(unavailable())
    instruction = enqueue()
    assert str(outbox_sweep()) == "nothing was due"
    instructions_retry_now(instructions=[instruction])
    instruction = fresh(instruction)
    assert instruction.state == State.PENDING
    assert instruction.next_attempt_at <= timezone.now()
    assert str(outbox_sweep()) == "1 sent: 1 done"


@pytest.mark.django_db
def test_cancel_keeps_an_instruction_from_being_sent(dr, performer, enqueue):
    pending = waiting()
    done = enqueue(order_id="2")
    assert instructions_cancel(instructions=[pending, done]) == 1
    pending = fresh(pending)
    done = fresh(done)
    assert pending.state == State.CANCELLED
    assert pending.finished_at is not None
    assert done.state == State.DONE
    assert str(sweep()) == "nothing was due"
    assert len(dr.posts) == 1
    assert instructions_retry_now(instructions=[pending]) == 0


@pytest.mark.django_db
def test_admin_cancel_asks_for_confirmation_first(admin_client, dr, performer):
    instruction = waiting()
    url = reverse("admin:digitalriver_instruction_changelist")
    data = {"action": "cancel_instructions", "_selected_action": [instruction.pk]}

    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "admin/confirm_action.html" in [t.name for t in response.templates]
    assert b'name="confirmed" value="yes"' in response.content
    instruction = fresh(instruction)
    assert instruction.state == State.PENDING

    response = admin_client.post(url, {**data, "confirmed": "yes"})
    assert response.status_code == 302
    instruction = fresh(instruction)
    assert instruction.state == State.CANCELLED


@pytest.mark.django_db
def test_admin_retry_now_sends_after_commit(admin_client, dr, performer, enqueue, django_capture_on_commit_callbacks):
    dr.answer(refused(400, "invalid_parameter", "Bad."))
    instruction = enqueue()
    url = reverse("admin:digitalriver_instruction_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"action": "retry_now", "_selected_action": [instruction.pk]})
    assert response.status_code == 302
    instruction = fresh(instruction)
    assert instruction.state == State.DONE
    assert len(dr.posts) == 2


@pytest.mark.django_db
def test_admin_actions_need_the_operate_permission(client, django_user_model, dr, performer):
    staff = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_instruction"))
    client.force_login(staff)
    instruction = waiting()
    url = reverse("admin:digitalriver_instruction_changelist")
    client.post(url, {"action": "cancel_instructions", "_selected_action": [instruction.pk], "confirmed": "yes"})
    instruction = fresh(instruction)
    assert instruction.state == State.PENDING


@pytest.mark.django_db
def test_a_sweep_can_be_limited(dr, performer):
    for n in range(3):
        waiting(order_id=str(n))
    assert str(sweep(max_rows=2)) == "2 sent: 2 done"
    assert len(dr.posts) == 2
    assert Instruction.objects.filter(state=State.PENDING).count() == 1


# --- the command ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_process_outbox_prints_a_summary(dr, performer, enqueue):
    dr.answer(unavailable())
    later = enqueue(order_id="3")
    waiting(order_id="1")
    waiting(order_id="2")
    dr.answer(created(), refused(400, "invalid_parameter", "Bad."))

    out = StringIO()
    call_command("process_outbox", stdout=out)
    assert out.getvalue().strip() == "2 sent: 1 done, 1 failed"

    out = StringIO()
    call_command("process_outbox", stdout=out)
    assert out.getvalue().strip() == "nothing was due"

    out = StringIO()
    call_command("process_outbox", "--ignore-backoff", stdout=out)
    assert out.getvalue().strip() == "1 sent: 1 done"
    later = fresh(later)
    assert later.state == State.DONE


# --- PostgreSQL: concurrent senders --------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_never_send_one_instruction_twice(dr_settings, performer):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        dr = FakeDR(rsps, delay=0.005)
        rows = Instruction.objects.bulk_create(
            Instruction(kind=KIND, subject=f"order:{n}", payload=payload(order_id=str(n))) for n in range(40)
        )
        barrier = threading.Barrier(2)
        summaries, failures = [], []

        def run():
            from django.db import connection as thread_connection

            try:
                barrier.wait(timeout=10)
                summaries.append(outbox_sweep())
            except Exception as exc:  # surfaced below
                failures.append(exc)
            finally:
                thread_connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert failures == []
    per_instruction = {}
    for body in dr.posts:
        key = body["metadata"]["instructionId"]
        per_instruction[key] = per_instruction.get(key, 0) + 1
    assert per_instruction == {str(row.pk): 1 for row in rows}
    assert Instruction.objects.filter(state=State.DONE).count() == 40
    assert Attempt.objects.count() == 40
    assert sum(summary.sent for summary in summaries) == 40
    # Both sweeps took part: the claims interleaved rather than one sweep taking everything.
    assert all(summary.sent > 0 for summary in summaries), [str(s) for s in summaries]


# --- answers no database column stores -------------------------------------------------------------
# DR's answers are cleaned as they are parsed (client._json_or_text) and the call log as it is built:
# the outbox writes both in the outcome's transaction, with no savepoint to contain a refused row.


@pytest.mark.django_db
def test_a_json_answer_with_a_lone_surrogate_escape_still_records_its_outcome(dr, performer, enqueue):
    # json.loads turns the escape into a lone surrogate, which no database driver encodes.
    dr.answer((201, {}, {"id": "ful_1", "orderId": ORDER, "items": [], "note": "\ud800"}))

    instruction = enqueue()

    assert instruction.state == State.DONE
    assert instruction.result["note"] == "\ufffd"
    assert "\ud800" not in ApiCall.objects.get().response_body


@pytest.mark.django_db
def test_a_json_answer_with_nan_or_an_infinite_number_still_records_its_outcome(dr, performer, enqueue):
    # json.loads reads NaN, Infinity and 1e400 as floats that PostgreSQL's jsonb refuses; they are
    # stored as null, so nothing reads them as an amount.
    dr.answer((201, {}, {"id": "ful_1", "orderId": ORDER, "items": [{"amount": float("nan"), "weight": 1e400}]}))

    instruction = enqueue()

    assert instruction.state == State.DONE
    assert instruction.result["items"] == [{"amount": None, "weight": None}]
    assert instruction.attempt_set.get().outcome == "succeeded"
    assert "NaN" in ApiCall.objects.get().response_body  # the answer as DR sent it, in a text column


@pytest.mark.django_db
def test_a_json_error_message_with_a_nul_character_still_records_its_outcome(dr, performer, enqueue):
    # PostgreSQL refuses NUL in text and jsonb; SQLite stores it, so this matters on PostgreSQL.
    dr.answer((400, {}, {"type": "bad_request", "errors": [{"code": "bad", "message": "a\u0000b"}]}))

    instruction = enqueue()

    assert instruction.state == State.FAILED
    assert "a\ufffdb" in instruction.last_error
    assert "a\ufffdb" in instruction.attempt_set.get().message


@pytest.mark.django_db(transaction=True)
def test_a_failing_hook_still_records_the_attempt_when_another_worker_logged_a_call_meanwhile(
    dr, performer, monkeypatch
):
    """The first pass's INSERT set the call log rows' ids; the rollback frees them, and on SQLite
    (rowids and sqlite_sequence are transactional) the next writer takes one. The second pass must
    insert new rows (client._calls_insert), not the stale ids. On PostgreSQL a sequence never hands
    an id out again."""
    instruction = waiting()

    def broken_hook(*args):
        raise ValueError("no such order line")

    performer.on_done = broken_hook
    atomics = []

    def atomic(*args, **kwargs):
        atomics.append(1)
        if len(atomics) == 2:  # between the rollback and the rewrite: another worker's call log

            def other_worker():
                try:
                    ApiCall.objects.create(method="GET", path="/orders/other")
                finally:
                    connections.close_all()

            thread = threading.Thread(target=other_worker)
            thread.start()
            thread.join()
        return transaction.atomic(*args, **kwargs)

    monkeypatch.setattr(outbox, "transaction", types.SimpleNamespace(atomic=atomic))

    instruction_send(instruction_id=instruction.pk)

    row = fresh(instruction)
    assert row.attempt_set.count() == 1
    assert row.state == State.FAILED and "no such order line" in row.last_error
    assert ApiCall.objects.filter(path="/fulfillments").count() == 1

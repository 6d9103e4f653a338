"""Short leases renewed while their holder works: a dead worker's claims come free within seconds,
a live one's are never taken from it, and one whose lease was taken over records nothing."""

import logging
import os
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from digitalriver import registry
from digitalriver.lease import LeaseKeeper
from digitalriver.models import Instruction, WebhookEvent
from digitalriver.services import inbox, outbox

from .conftest import HANDLED_TYPE

KIND = "test.lease"


class SlowPerformer(registry.Performer):
    """Takes its time (a slow call to DR) and runs ``during`` meanwhile, in the sender's thread."""

    kind = KIND

    def __init__(self):
        self.seconds = 0.0
        self.during = None

    def perform(self, instruction, client):
        time.sleep(self.seconds)
        if self.during is not None:
            self.during(instruction)
        return {"ok": True}


@pytest.fixture
def performer():
    instance = SlowPerformer()
    registry.register_performer(instance)
    yield instance
    registry.unregister_performer(KIND)


def pending() -> Instruction:
    return Instruction.objects.create(kind=KIND, subject="order:1", payload={})


def stored_event(**fields) -> WebhookEvent:
    return WebhookEvent.objects.create(
        dr_event_id=f"evt_{uuid.uuid4().hex}", type=HANDLED_TYPE, body="{}", payload={}, **fields
    )


def test_the_defaults_take_a_dead_workers_claims_over_well_within_half_a_minute():
    # Without the environment variables: a claim runs out at most a lease after the worker died, and
    # the next sweep takes it over; what is left of the 30 s is for doing the work.
    assert django_settings.DR_OUTBOX_LEASE_SECONDS + django_settings.OUTBOX_SWEEP_SECONDS <= 20
    assert django_settings.DR_INBOX_LEASE_SECONDS + django_settings.INBOX_SWEEP_SECONDS <= 20


def test_the_sweeps_have_a_queue_of_their_own_that_a_worker_consumes_by_default():
    from config.celery import app

    beat = django_settings.CELERY_BEAT_SCHEDULE
    for entry in (beat["outbox-sweep"], beat["inbox-sweep"]):
        assert app.amqp.router.route({}, entry["task"])["queue"].name == "sweeps"
        # A sweep that waited past its interval is dropped: the next one is already on its way.
        assert entry["options"]["expires"] == entry["schedule"]
    assert "sweeps" in app.amqp.queues  # what `celery worker` without -Q consumes


# --- the heartbeat ---------------------------------------------------------------------------------


def test_the_keeper_renews_while_the_block_runs_and_stops_after_it():
    renewals = []
    with LeaseKeeper(lambda: renewals.append(time.monotonic()) or True, every=0.02, what="x") as keeper:
        time.sleep(0.2)
    count = len(renewals)
    time.sleep(0.06)

    assert count >= 3 and keeper.renewals == count
    assert len(renewals) == count  # nothing after the block
    assert keeper.lost is False


def test_the_keeper_stops_at_the_first_renewal_that_finds_the_claim_taken(caplog):
    answers = iter([True, False, True, True])
    calls = []

    def renew():
        calls.append(1)
        return next(answers)

    with (
        caplog.at_level(logging.WARNING, logger="digitalriver.lease"),
        LeaseKeeper(renew, every=0.01, what="instruction 7") as keeper,
    ):
        time.sleep(0.15)

    assert len(calls) == 2 and keeper.lost is True
    assert "instruction 7" in caplog.text


def test_a_renewal_that_fails_is_tried_again():
    answers = iter([RuntimeError("database is locked"), True, True])
    stop = threading.Event()

    def renew():
        answer = next(answers, None)
        if answer is None:
            stop.set()
            return True
        if isinstance(answer, Exception):
            raise answer
        return answer

    with LeaseKeeper(renew, every=0.01, what="x") as keeper:
        stop.wait(2)
    assert keeper.renewals >= 2 and keeper.lost is False


def test_leaving_the_block_waits_for_a_renewal_in_progress_and_none_follows():
    """The holder records its outcome right after the block, guarded by the lease it holds: a
    renewal still running then would move the lease under it."""
    started, events = threading.Event(), []

    def slow_renew():
        started.set()
        time.sleep(0.2)
        events.append("renewed")
        return True

    with LeaseKeeper(slow_renew, every=0.01, what="x"):
        started.wait(2)
    events.append("left")
    time.sleep(0.4)  # a renewal started after the block would have appended by now

    assert events[-1] == "left" and "renewed" in events  # none ran, or was still running, after


def test_keepers_share_one_heartbeat_thread(monkeypatch):
    with LeaseKeeper(lambda: True, every=0.01, what="first"):
        time.sleep(0.03)
    started = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread.name) or start(thread))

    for number in range(50):
        with LeaseKeeper(lambda: True, every=5, what=f"job {number}"):
            pass

    assert started == []


def test_one_slow_renewal_does_not_hold_up_the_other_keepers():
    """``--pool threads --concurrency 8`` runs 8 keepers in one process. A renewal that waits (a lock,
    a saturated pool, a slow connect) must not stop the others' renewals: with a 15 s lease renewed
    every 5 s, a 10 s wait lets every other lease of the process run out."""
    slow_started = threading.Event()

    def slow_renew():
        slow_started.set()
        time.sleep(1.0)
        return True

    fast = []
    with LeaseKeeper(slow_renew, every=0.01, what="slow"):
        assert slow_started.wait(2)
        with LeaseKeeper(lambda: fast.append(1) or True, every=0.05, what="fast"):
            time.sleep(0.6)
    assert len(fast) >= 5, f"the fast keeper was renewed {len(fast)} times in 0.6 s (every 0.05 s)"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_renew_its_parents_leases():
    """A child forked while the parent held a lease starts afresh (lease._Heartbeat._reset): renewing
    the parent's claim would keep it alive after the parent died."""
    read_end, write_end = os.pipe()

    def parents_renew():
        os.write(write_end, b"C" if os.getpid() != parent else b"P")
        return True

    parent = os.getpid()
    with LeaseKeeper(parents_renew, every=0.02, what="parent's"):
        time.sleep(0.05)
        child = os.fork()
        if child == 0:  # the child: one keeper of its own, which starts its heartbeat thread
            try:
                with LeaseKeeper(lambda: True, every=0.02, what="child's"):
                    time.sleep(0.3)
            finally:
                os._exit(0)
        os.waitpid(child, 0)
    os.close(write_end)
    renewed_by = b""
    while chunk := os.read(read_end, 1024):
        renewed_by += chunk
    os.close(read_end)
    assert b"C" not in renewed_by, "the child renewed the parent's lease"


# --- the outbox ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_renewal_moves_the_senders_lease_ahead(settings, performer):
    settings.DR_OUTBOX_LEASE_SECONDS = 30
    instruction = outbox._claim(pending().pk, ignore_backoff=True)
    assert instruction is not None
    Instruction.objects.filter(pk=instruction.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=2))

    assert outbox.lease_renew(instruction) is True
    left = Instruction.objects.get(pk=instruction.pk).lease_expires_at - timezone.now()
    assert timedelta(seconds=28) < left <= timedelta(seconds=30)


@pytest.mark.django_db
def test_a_lease_taken_over_after_it_ran_out_is_not_renewed_by_the_old_sender(settings, performer):
    settings.DR_OUTBOX_LEASE_SECONDS = 30
    first = outbox._claim(pending().pk, ignore_backoff=True)
    assert first is not None
    Instruction.objects.filter(pk=first.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = outbox._claim(first.pk, ignore_backoff=True)
    assert second is not None
    assert second.claim_token != first.claim_token
    before = Instruction.objects.get(pk=first.pk)

    assert outbox.lease_renew(first) is False
    after = Instruction.objects.get(pk=first.pk)
    assert (after.claim_token, after.lease_expires_at) == (second.claim_token, before.lease_expires_at)
    # ...and the old sender's outcome is not recorded over the new owner's.
    assert outbox._deliver(first).state == Instruction.State.SENDING
    assert outbox._deliver(second).state == Instruction.State.DONE


@pytest.mark.django_db(transaction=True)
def test_a_long_send_keeps_its_lease_and_a_sweep_meanwhile_takes_nothing(settings, performer):
    settings.DR_OUTBOX_LEASE_SECONDS = 0.6
    seen = {}

    def meanwhile(instruction):
        row = Instruction.objects.get(pk=instruction.pk)
        seen["lease_left"] = (row.lease_expires_at - timezone.now()).total_seconds()
        seen["swept"] = outbox._claim(instruction.pk, ignore_backoff=True)

    performer.seconds, performer.during = 1.5, meanwhile  # well past the 0.6 s lease it was claimed with
    instruction = pending()

    sent = outbox.instruction_send(instruction_id=instruction.pk)

    assert seen["lease_left"] > 0 and seen["swept"] is None
    assert sent is not None and sent.state == Instruction.State.DONE and sent.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_dead_senders_claim_comes_free_within_the_lease(settings, performer):
    settings.DR_OUTBOX_LEASE_SECONDS = 0.5
    instruction = pending()
    # A sender claimed it and died: nothing renews its lease.
    outbox._claim(instruction.pk, ignore_backoff=True)
    assert outbox.instruction_send(instruction_id=instruction.pk) is None  # still held
    time.sleep(0.6)

    sent = outbox.instruction_send(instruction_id=instruction.pk)
    assert sent is not None and sent.state == Instruction.State.DONE and sent.effect_uncertain is True


# --- the inbox ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_event_whose_lease_was_taken_over_is_left_to_the_new_owner(caplog):
    event = stored_event()

    def taken_over(_event):
        # Meanwhile our lease ran out and another worker claimed the event (a new lease end).
        WebhookEvent.objects.filter(pk=event.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=30))

    registry.register_event_handler(HANDLED_TYPE, taken_over)
    try:
        with caplog.at_level(logging.WARNING, logger="digitalriver.services.inbox"):
            result = inbox.webhook_event_process(event_id=event.pk)
    finally:
        registry.unregister_event_handler(HANDLED_TYPE)

    assert result is not None and result.state == WebhookEvent.State.RECEIVED  # not marked processed by us
    assert "taken over" in caplog.text


@pytest.mark.django_db
def test_an_event_lease_is_renewed_only_by_its_holder(settings):
    settings.DR_INBOX_LEASE_SECONDS = 30
    event = stored_event()
    lease = inbox._claim(event.pk)
    assert lease is not None and inbox._claim(event.pk) is None

    assert lease.renew() is True
    WebhookEvent.objects.filter(pk=event.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    newer = inbox._claim(event.pk)
    assert newer is not None
    assert lease.renew() is False
    assert WebhookEvent.objects.get(pk=event.pk).lease_expires_at == newer.expires_at


@pytest.mark.django_db(transaction=True)
def test_a_slow_handler_keeps_its_event_and_a_sweep_meanwhile_leaves_it(settings):
    settings.DR_INBOX_LEASE_SECONDS = 0.6
    seen = {}

    def slow(event):
        time.sleep(1.5)
        seen["claimed_meanwhile"] = inbox._claim(event.pk)

    registry.register_event_handler(HANDLED_TYPE, slow)
    try:
        event = stored_event()
        processed = inbox.webhook_event_process(event_id=event.pk)
    finally:
        registry.unregister_event_handler(HANDLED_TYPE)

    assert seen["claimed_meanwhile"] is None
    assert processed is not None and processed.state == WebhookEvent.State.PROCESSED

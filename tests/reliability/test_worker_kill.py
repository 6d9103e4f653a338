"""A worker killed with `kill -9` mid-batch: the events and instructions it held are taken over and
finished within 30 s, nothing is lost and nothing reaches DR twice (see kill_driver.py for the run).

The bound holds with the default settings, which the run leaves alone: a claim lasts
DR_INBOX_LEASE_SECONDS / DR_OUTBOX_LEASE_SECONDS (15 s) from its last renewal (every 5 s while the
worker works), and the sweeps that take expired claims over run every 5 s from a queue of their own,
so a backlog of ordinary tasks does not hold them up.

Needs PostgreSQL (DATABASE_URL) and a broker (CELERY_BROKER_URL); the run gets a database of its own
on that server (`<name>_kill`), dropped afterwards (kept with CHAOS_KEEP_DATABASE=1):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CELERY_BROKER_URL=redis://127.0.0.1:6379/15 \
        .venv/bin/python -m pytest -m chaos tests/reliability/test_worker_kill.py
"""

from decimal import Decimal
from pathlib import Path

import pytest

from tests.reliability.support import MARKS, driver_run

DRIVER = Path(__file__).resolve().parent / "kill_driver.py"
ORDERS, SHIPPED = 40, 20
TAKEOVER_BOUND_S = 30

pytestmark = MARKS


@pytest.fixture(scope="module")
def report():
    args = ["--orders", str(ORDERS), "--shipped", str(SHIPPED)]
    # Setup about a minute, the takeover 120 s and settling 180 s at most.
    with driver_run(DRIVER, "kill", args, timeout=600) as (data, workdir):
        kill = data["kill"]
        print(
            f"\nworker killed {kill['at_s']} s into the batch holding {len(kill['held_events'])} event(s) and"
            f" {len(kill['held_instructions'])} instruction(s) (outstanding {kill['outstanding']});"
            f" taken over at {kill['taken_over_s']}, finished at {kill['finished_s']} (s after the kill);"
            f" everything settled {data['settled_s']} s after the kill; logs in {workdir / 'logs'}\n"
            f"its events: {data['events']['taken_over']}; its instructions and their tries:"
            f" {data['instructions']['taken_over']}"
        )
        yield data


def test_the_worker_was_killed_mid_batch_holding_events_and_instructions(report):
    """Guards against a vacuous pass: the dead worker held claims of both kinds, with work queued behind."""
    kill = report["kill"]
    assert kill["pid"] and report["worker_starts"] == 2
    assert kill["held_events"] and kill["held_instructions"], kill
    assert kill["outstanding"]["events"] + kill["outstanding"]["instructions"] > 20, kill["outstanding"]


def test_every_claim_of_the_dead_worker_is_taken_over_and_finished_within_30_seconds(report):
    kill = report["kill"]
    held = [f"event {pk}" for pk in kill["held_events"]] + [f"instruction {pk}" for pk in kill["held_instructions"]]
    unfinished = [claim for claim in held if claim not in kill["finished_s"]]
    assert not unfinished, f"never finished: {unfinished}; {kill}"
    slowest = max(kill["finished_s"].values())
    assert slowest <= TAKEOVER_BOUND_S, f"the last claim was finished {slowest} s after the kill: {kill}"


def test_no_live_workers_claim_was_taken_from_it(report):
    """The short leases are renewed in time: only the dead worker's claims were claimed again."""
    assert not report["events"]["claimed_twice_besides"], report["events"]["claimed_twice_besides"]
    assert not report["instructions"]["claimed_twice_besides"], report["instructions"]["claimed_twice_besides"]


def test_nothing_is_lost(report):
    events, instructions = report["events"], report["instructions"]
    assert not events["emitted_not_stored"], events["emitted_not_stored"][:20]
    assert not events["not_processed"], events["not_processed"][:20]
    assert not instructions["not_done"], instructions["not_done"][:20]
    for dr_order_id, order in report["orders"].items():
        ours, dr = order["ours"], order["dr"]
        assert ours is not None, f"{dr_order_id} never mirrored"
        # The distributed lines' fulfillment order, and DR's own for the orchestrated line.
        assert ours["fulfillment_orders"] == 2, (dr_order_id, order)
        if order["shipped"]:
            assert dr["fulfilled_units"] == 2, (dr_order_id, order)
            assert Decimal(ours["captured_amount"]) == Decimal(dr["captured_amount"]) > 0, (dr_order_id, order)


def test_nothing_reaches_dr_twice(report):
    for dr_order_id, order in report["orders"].items():
        dr = order["dr"]
        assert dr["distributed_fulfillment_orders"] == 1, (dr_order_id, dr)
        assert dr["captures"] == (1 if order["shipped"] else 0), (dr_order_id, dr)
        twice = {instruction: n for instruction, n in dr["posts_per_instruction"].items() if n > 1}
        assert not twice, (dr_order_id, twice)

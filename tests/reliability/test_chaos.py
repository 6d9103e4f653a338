"""The chaos suite: 200 orders of mixed models through the sandbox on a bad network, with every
event delivered three times out of order and the Celery worker killed mid-run, end exactly as a clean
run would (see chaos_driver.py for the run itself), returns and refunds included: every line's
ledger, every refund and return agree with DR's (chaos_reversals.py).

Needs PostgreSQL (DATABASE_URL) and a broker (CELERY_BROKER_URL); the run gets a database of its
own on that server (`<name>_chaos`), dropped afterwards (kept with CHAOS_KEEP_DATABASE=1):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test CELERY_BROKER_URL=redis://127.0.0.1:6379/15 \
        .venv/bin/python -m pytest -m chaos tests/reliability -p no:cacheprovider
"""

from decimal import Decimal
from pathlib import Path

import pytest

from tests.reliability import chaos_reversals
from tests.reliability.support import MARKS, driver_run

DRIVER = Path(__file__).resolve().parent / "chaos_driver.py"
ORDERS = 200

pytestmark = MARKS


@pytest.fixture(scope="module")
def report():
    # Chaos 180 s and settling 300 s at most, on a loaded machine.
    with driver_run(DRIVER, "chaos", ["--orders", str(ORDERS)], timeout=900) as (data, workdir):
        print(
            f"\nchaos run: {data['total_s']} s in all, {data['timings']}; worker killed {data['kill']};"
            f" chaos {data['chaos']['injected_5xx']} injected 5xx, {data['chaos']['timeouts']} timeouts;"
            f" logs in {workdir / 'logs'}\nreturns and refunds: {data['reversals']['figures']};"
            f" their events {data['reversals']['events']['by_state']}"
        )
        yield data


def _problems(report, check) -> list[str]:
    found = []
    for order in report["orders"]:
        found += [f"{order['dr_order_id']} ({order['story']}): {problem}" for problem in check(order)]
    return found


def _fmt(problems: list[str]) -> str:
    return f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])


def test_the_run_was_chaotic(report):
    """Guards against a vacuous pass: the faults really happened."""
    chaos = report["chaos"]
    assert len(report["orders"]) == ORDERS
    assert report["kill"]["pid"] and report["kill"].get("restarted_at_seconds"), report["kill"]
    assert report["worker_starts"] == 2
    assert chaos["injected_5xx"] >= 20, chaos
    assert chaos["timeouts"] >= 5, chaos
    assert chaos["events_during_chaos"] >= ORDERS * 3, chaos
    assert not chaos["events_delivered_fewer_than_three_times"], chaos["deliveries_per_event"]


def test_every_order_ends_as_in_a_clean_run(report):
    def check(order):
        ours, expected = order["ours"], order["expected"]
        if order["driver_errors"]:
            yield f"the story could not be played: {order['driver_errors']}"
        if order["steps_done"] != order["steps"]:
            yield f"stuck after step {order['steps_done']} of {order['steps']}"
        if ours is None:
            yield "never mirrored"
            return
        if ours["state"] != expected["state"] or order["dr"]["state"] != expected["state"]:
            yield f"ours {ours['state']}, DR {order['dr']['state']}, expected {expected['state']}"
        for flag in ("capture_failed", "cancellation_rejected", "backordered"):
            if ours[flag]:
                yield f"flagged {flag}"
        for key in ("captured_amount", "cancelled_amount", "total_amount"):
            if Decimal(ours[key]) != Decimal(order["dr"][key]):
                yield f"{key}: ours {ours[key]}, DR {order['dr'][key]}"
        if Decimal(ours["captured_amount"]) + Decimal(ours["cancelled_amount"]) != Decimal(ours["total_amount"]):
            yield f"captured {ours['captured_amount']} + cancelled {ours['cancelled_amount']} != {ours['total_amount']}"
        for sku, (shipped, captured, released) in expected["lines"].items():
            line = order["lines"][sku]["ours"]
            if line is None:
                yield f"{sku}: line never mirrored"
                continue
            got = (line["shipped"], line["fulfilled"], line["cancelled"])
            if got != (shipped, captured, released):
                yield f"{sku}: shipped/captured/released {got}, expected {(shipped, captured, released)}"
            if line["cancel_requested"] or line["backordered"]:
                yield f"{sku}: left open {line}"

    problems = _problems(report, check)
    assert not problems, _fmt(problems)


def test_per_line_captured_units_equal_shipped_units_and_released_equal_cancelled(report):
    def check(order):
        for sku, line in order["lines"].items():
            ours, dr = line["ours"], line["dr"]
            if ours is None:
                continue
            # What DR holds, three ways: the item's counters, the POST /fulfillments it stored (ours
            # for distributed, third-party and digital lines; its own for orchestrated ones) …
            posts = (dr["captured_in_posts"], dr["released_in_posts"])
            counters = (dr["fulfilled_quantity"], dr["cancelled_quantity"])
            if posts != counters:
                yield f"{sku}: DR's posts captured/released {posts}, its item counts {counters}"
            # … and, for lines DR's warehouse handles, what that warehouse shipped and cancelled.
            warehouse = (dr["warehouse_shipped"], dr["warehouse_cancelled"])
            if ours["model"] in ("distributed", "orchestrated") and warehouse != counters:
                yield f"{sku}: the warehouse shipped/cancelled {warehouse}, DR captured/released {counters}"
            if ours["shipped"] != counters[0] or ours["fulfilled"] != counters[0]:
                yield f"{sku}: ours shipped {ours['shipped']} captured {ours['fulfilled']}, DR captured {counters[0]}"
            if ours["cancelled"] != dr["cancelled_quantity"]:
                yield f"{sku}: ours released {ours['cancelled']}, DR released {dr['cancelled_quantity']}"

    problems = _problems(report, check)
    assert not problems, _fmt(problems)


def test_no_duplicate_capture_or_request_at_dr(report):
    def check(order):
        dr = order["dr"]
        if dr["posts_sharing_an_instruction"]:
            yield f"one instruction posted more than once: {dr['posts_sharing_an_instruction']}"
        if dr["captures_sharing_a_shipment"]:
            yield f"one shipment captured more than once: {dr['captures_sharing_a_shipment']}"
        distributed = any(line["ours"] and line["ours"]["model"] == "distributed" for line in order["lines"].values())
        if dr["distributed_fulfillment_orders"] != (1 if distributed else 0):
            yield f"{dr['distributed_fulfillment_orders']} fulfillment orders created for the distributed lines"
        if len(dr["cancellation_requests"]) > 1:
            yield f"{len(dr['cancellation_requests'])} cancellation requests reached DR: {dr['cancellation_requests']}"

    problems = _problems(report, check)
    assert not problems, _fmt(problems)


def test_no_instruction_is_lost(report):
    instructions = report["instructions"]
    assert not instructions["unfinished"], instructions["unfinished"][:20]
    assert not instructions["failed_without_reason"], instructions["failed_without_reason"]
    assert instructions["by_state"].get("done", 0) > ORDERS, instructions["by_state"]


def test_no_event_is_lost(report):
    events = report["events"]
    assert not events["emitted_not_stored"], events["emitted_not_stored"][:20]
    assert not events["unfinished"], events["unfinished"][:20]
    assert not events["failed_without_reason"], events["failed_without_reason"]
    assert events["by_state"].get("processed", 0) >= ORDERS * 3, events["by_state"]


def test_concurrent_deliveries_never_fail_on_our_own_database_locks(report):
    """DR delivers concurrently and out of order: a handler may fail because DR is down (then the
    event waits for a replay), never because two of our own transactions deadlocked or raced."""
    failed = report["sweeps"]["replayed_failed_events"] + report["events"]["failed"]
    ours = [error for error in failed if "OperationalError" in error or "IntegrityError" in error]
    assert not ours, f"{len(ours)} event(s) failed on our own database:\n" + "\n".join(ours[:20])


def test_returns_and_refunds_add_up_with_dr(report):
    """Per line: refunded <= captured, returned <= fulfilled and equal to what DR's returns accepted;
    per order: our refunded amount is DR's and our succeeded refunds' sum; DR holds exactly one refund
    per refund we asked, and each of its own is ours too; no refund or return left asked or failed."""
    problems = _problems(report, chaos_reversals.problems)
    assert not problems, _fmt(problems)


def test_every_return_and_refund_event_is_processed(report):
    events = report["reversals"]["events"]
    assert not events["not_processed"], events["not_processed"][:20]
    assert events["by_state"].get("processed", 0) > 0, events

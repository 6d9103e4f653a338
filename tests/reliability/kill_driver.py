"""The worker-kill run: the Celery worker SIGKILLed mid-batch while it holds claims; how long until
another worker has taken over and finished each of them; writes what it saw as JSON.

Run by tests/reliability/test_worker_kill.py in a process of its own, like chaos_driver.py (whose
processes and helpers it reuses), on a migrated database of its own:

    python tests/reliability/kill_driver.py --database-url postgres://…/dr_kill \
        --broker-url redis://…/5 --out report.json --logs DIR

The deployment runs with the defaults that matter here (leases, their heartbeat, the sweeps and their
schedule); only the SKU push delay is cut, to shorten the setup. gunicorn serves the app and the
sandbox, one Celery worker (a pool of 8 threads, as in production) and Celery beat run on the broker.

Warm-up: `--shipped` orders are placed and delivered until their fulfillment orders are at DR. Then
every sandbox API call is made slow (`latency_ms`) and the batch is made: those orders are shipped
by DR's warehouse (each shipment becomes a capture, `POST /fulfillments`) and `--orders` new orders
are placed (each becomes `POST /fulfillment-orders`). Their events are posted by this driver, DR's
own fulfillment orders first (DR delivers out of order): their order is not known yet, so handling
them asks DR for it (`GET /orders/{id}`), which is what makes event handlers slow here. The sandbox
then delivers every event again (DR delivers at least once) and whatever the batch makes it emit.

Once the worker holds live claims on events and on instructions at once, its process group is
SIGKILLed and a new worker started. The run records the claims the dead worker held and when each was
taken over and finished, then waits for everything to settle and collects what DR holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402
from tests.reliability.chaos_driver import (  # noqa: E402
    Processes,
    deployment_environment,
    outstanding,
    push_skus,
    wait_until,
)
from tests.reliability.chaos_reversals import ORCH, A  # noqa: E402

#: Every sandbox API call takes this long: a DR call outlives many polls of the claims.
LATENCY_MS = 1000
#: The production worker's pool of threads (README, Production).
CONCURRENCY = 8
LINES = ((A, 2), (ORCH, 1))


# --- the batch --------------------------------------------------------------------------------------


def place(count: int) -> list[str]:
    from sandbox.services.orders import Line, order_place

    return [order_place(lines=[Line(sku_id=sku, quantity=q) for sku, q in LINES]).dr_id for _ in range(count)]


def distributed_fulfillment_order(dr_order_id: str):
    from sandbox.models import FulfillmentOrder

    return FulfillmentOrder.objects.filter(upstream_id=dr_order_id, managed=False).first()


def ship(dr_order_ids: list[str]) -> None:
    """DR's warehouse ships every unit of each order's distributed lines."""
    from sandbox.services.warehouse import warehouse_ship

    for dr_order_id in dr_order_ids:
        fulfillment_order = distributed_fulfillment_order(dr_order_id)
        items = [(item.dr_id, item.quantity) for item in fulfillment_order.items.all()]
        warehouse_ship(fulfillment_order_id=fulfillment_order.dr_id, items=items)


def post_events(after_pk: int) -> int:
    """Post the sandbox's events newer than ``after_pk`` to our inbox, signed as DR signs them:
    fulfillment order events first (taking turns with shipments), the orders' own events last."""
    import requests
    from django.conf import settings

    from sandbox.models import Event
    from sandbox.signing import signature_header

    events = list(Event.objects.filter(pk__gt=after_pk).order_by("pk").values_list("type", "envelope"))
    managed = [envelope for kind, envelope in events if kind == "fulfillment_order.pending"]
    shipped = [envelope for kind, envelope in events if kind == "fulfillment_order.shipped"]
    rest = [envelope for kind, envelope in events if not kind.startswith("fulfillment_order.")]
    turns = [envelope for pair in zip(managed, shipped, strict=False) for envelope in pair]
    ordered = turns + managed[len(shipped) :] + shipped[len(managed) :] + rest
    secret = settings.DR_WEBHOOK_SECRETS[0]
    with requests.Session() as session:
        for envelope in ordered:
            body = json.dumps(envelope).encode()
            headers = {"Content-Type": "application/json", "DigitalRiver-Signature": signature_header(secret, body)}
            answer = session.post(settings.SANDBOX_DEFAULT_WEBHOOK_URL, data=body, headers=headers, timeout=10)
            answer.raise_for_status()
    return len(ordered)


# --- the claims -------------------------------------------------------------------------------------


def live_claims() -> tuple[dict[int, object], dict[int, object]]:
    """Events and instructions whose lease has not run out: {pk: lease end} and {pk: claim token}."""
    from django.utils import timezone

    from digitalriver.models import Instruction, WebhookEvent

    now = timezone.now()
    events = WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED, lease_expires_at__gt=now)
    instructions = Instruction.objects.filter(state=Instruction.State.SENDING, lease_expires_at__gt=now)
    return (
        dict(events.values_list("pk", "lease_expires_at")),
        dict(instructions.values_list("pk", "claim_token")),
    )


def follow(held_events: dict, held_instructions: dict, killed_at: float, timeout: float) -> dict:
    """Poll until every claim the dead worker held is finished (or ``timeout``): for each, seconds
    from the kill until another worker claimed it and until it was finished."""
    from digitalriver.models import Instruction, WebhookEvent

    taken: dict[str, float] = {}
    finished: dict[str, float] = {}
    deadline = killed_at + timeout
    while time.monotonic() < deadline:
        now = round(time.monotonic() - killed_at, 2)
        for pk, state, lease in WebhookEvent.objects.filter(pk__in=held_events).values_list(
            "pk", "state", "lease_expires_at"
        ):
            key = f"event {pk}"
            if state != WebhookEvent.State.RECEIVED or lease != held_events[pk]:
                taken.setdefault(key, now)
            if state != WebhookEvent.State.RECEIVED:
                finished.setdefault(key, now)
        for pk, state, token in Instruction.objects.filter(pk__in=held_instructions).values_list(
            "pk", "state", "claim_token"
        ):
            key = f"instruction {pk}"
            if state != Instruction.State.SENDING or token != held_instructions[pk]:
                taken.setdefault(key, now)
            if state in (Instruction.State.DONE, Instruction.State.FAILED, Instruction.State.CANCELLED):
                finished.setdefault(key, now)
        if len(finished) == len(held_events) + len(held_instructions):
            break
        time.sleep(0.1)
    return {"taken_over_s": taken, "finished_s": finished}


def settled() -> bool:
    from digitalriver.models import WebhookEvent
    from sandbox.models import Event

    stored = set(WebhookEvent.objects.values_list("dr_event_id", flat=True))
    emitted = set(Event.objects.values_list("dr_id", flat=True))
    return not any(outstanding().values()) and emitted <= stored


# --- the run ----------------------------------------------------------------------------------------


def run(args) -> dict:
    import django

    django.setup()
    from sandbox.delivery import start_background_delivery, stop_background_delivery
    from sandbox.models import Event
    from sandbox.services.control import control_update

    processes = Processes(dict(os.environ), args.port, Path(args.logs), concurrency=CONCURRENCY)
    started = time.monotonic()
    processes.start()
    try:
        control_update({"reset": True})
        start_background_delivery(interval=0.05)
        push_skus()
        shipped = place(args.shipped)
        wait_until(lambda: all(distributed_fulfillment_order(o) for o in shipped), "the warm-up orders", 120)
        wait_until(settled, "the warm-up to settle", 120)
        stop_background_delivery()
        setup_s = round(time.monotonic() - started, 1)

        control_update({"latency_ms": LATENCY_MS})
        last_pk = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        ship(shipped)
        placed = place(args.orders)
        batch_from = time.monotonic()
        posted = post_events(last_pk)
        start_background_delivery(interval=0.05)

        # Mid-batch: the worker holds events and instructions at once.
        wait_until(lambda: all(live_claims()), "the worker to hold events and instructions", 120)
        before = outstanding()
        pid = processes.kill_worker()
        killed_at = time.monotonic()
        time.sleep(0.2)  # what the dead worker's connections sent is committed or rolled back by now
        held_events, held_instructions = live_claims()
        processes.start_worker()
        timings = follow(held_events, held_instructions, killed_at, timeout=args.takeover_timeout)
        wait_until(settled, "the batch to settle", args.settle_seconds)
        return {
            "setup_s": setup_s,
            "batch": {"orders": placed, "shipped": shipped, "events_posted": posted},
            "kill": {
                "pid": pid,
                "at_s": round(killed_at - batch_from, 1),
                "outstanding": before,
                "held_events": sorted(held_events),
                "held_instructions": sorted(held_instructions),
                **timings,
            },
            "settled_s": round(time.monotonic() - killed_at, 1),
            "worker_starts": processes.worker_starts,
            **collect(placed, shipped, held_events, held_instructions),
        }
    finally:
        stop_background_delivery()
        processes.stop()


def collect(placed: list[str], shipped: list[str], held_events: dict, held_instructions: dict) -> dict:
    from commerce.models import Order
    from digitalriver.models import Instruction, WebhookEvent
    from sandbox.models import Event, Fulfillment
    from sandbox.models import FulfillmentOrder as DrFulfillmentOrder
    from sandbox.models import Order as DrOrder

    orders = {}
    for dr_order_id in placed + shipped:
        ours = Order.objects.filter(dr_order_id=dr_order_id).first()
        dr_order = DrOrder.objects.get(dr_id=dr_order_id)
        posts = [post.data for post in Fulfillment.objects.filter(order=dr_order)]
        captures = [post for post in posts if any(item.get("quantity") for item in post.get("items", []))]
        orders[dr_order_id] = {
            "shipped": dr_order_id in shipped,
            "ours": None
            if ours is None
            else {
                "state": ours.state,
                "captured_amount": str(ours.captured_amount),
                "fulfillment_orders": ours.fulfillment_orders.count(),
            },
            "dr": {
                "state": dr_order.state,
                "captured_amount": str(dr_order.captured_amount),
                "fulfilled_units": sum(item.fulfilled_quantity for item in dr_order.items.all()),
                "distributed_fulfillment_orders": DrFulfillmentOrder.objects.filter(
                    upstream_id=dr_order_id, managed=False
                ).count(),
                "captures": len(captures),
                "posts_per_instruction": dict(
                    Counter(str((post.get("metadata") or {}).get("instructionId")) for post in posts)
                ),
            },
        }
    instructions = Instruction.objects.all()
    events = WebhookEvent.objects.all()
    stored = set(events.values_list("dr_event_id", flat=True))
    return {
        "orders": orders,
        "instructions": {
            "by_state": dict(Counter(instructions.values_list("state", flat=True))),
            "not_done": [
                f"{i.pk} {i.kind} {i.subject} {i.state}: {i.last_error[:200]}"
                for i in instructions.exclude(state=Instruction.State.DONE)
            ],
            "taken_over": {
                f"{i.pk} {i.kind}": list(i.attempt_set.order_by("pk").values_list("outcome", flat=True))
                for i in instructions.filter(pk__in=held_instructions)
            },
            # Nothing fails here, so only a claim taken from its holder is tried twice.
            "claimed_twice_besides": list(
                instructions.filter(attempts__gt=1).exclude(pk__in=held_instructions).values_list("pk", flat=True)
            ),
        },
        "events": {
            "by_state": dict(Counter(events.values_list("state", flat=True))),
            "not_processed": [
                f"{e.pk} {e.type} {e.state}: {e.error[:200]}"
                for e in events.exclude(state=WebhookEvent.State.PROCESSED)
            ],
            "emitted_not_stored": [
                f"{kind} {dr_id}" for dr_id, kind in Event.objects.values_list("dr_id", "type") if dr_id not in stored
            ],
            "taken_over": [f"{e.pk} {e.type}" for e in events.filter(pk__in=held_events)],
            "claimed_twice_besides": list(
                events.filter(attempts__gt=1).exclude(pk__in=held_events).values_list("pk", flat=True)
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--broker-url", required=True)
    parser.add_argument("--orders", type=int, default=40, help="new orders in the batch")
    parser.add_argument("--shipped", type=int, default=20, help="orders shipped in the batch")
    parser.add_argument("--takeover-timeout", type=float, default=120, help="most seconds to follow the claims")
    parser.add_argument("--settle-seconds", type=float, default=180, help="most seconds for the batch to settle")
    parser.add_argument("--out", required=True)
    parser.add_argument("--logs", required=True)
    args = parser.parse_args()
    args.port = free_port()
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    os.environ.update(
        deployment_environment(port=args.port, database_url=args.database_url, broker_url=args.broker_url)
    )
    try:
        report = run(args)
    except Exception:
        report = {"crashed": traceback.format_exc()}
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()

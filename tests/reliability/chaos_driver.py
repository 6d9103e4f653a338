"""The chaos run: real processes, a bad network, a killed worker; writes what it saw as JSON.

Run by tests/reliability/test_chaos.py in a process of its own, because this process configures
Django against the run's own PostgreSQL database (separate processes must see committed data, so
pytest's test database cannot be used):

    python tests/reliability/chaos_driver.py --database-url postgres://…/dr_chaos \
        --broker-url redis://…/15 --orders 200 --out report.json --logs DIR

The database must exist and be migrated. The driver starts gunicorn (the app and the sandbox), a
Celery worker and Celery beat on the broker, and the sandbox's delivery loop in this process; it
pushes the SKUs, then turns the bad network on (20% of sandbox API calls answer 5xx, 5% take longer
than the app's 1 s timeout, every event is delivered three times: the sandbox's delivery and its
duplicate, and a third copy this driver posts a few seconds later; deliveries are shuffled and a
share held back). It places the orders and plays the warehouse and customer service for each
order's story (returns and refunds among them: chaos_reversals.py), SIGKILLs the worker's process
group mid-run and restarts it. Then it turns the network off, runs the sweeps until nothing moves,
and writes the facts the test asserts on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, Gunicorn, free_port  # noqa: E402
from tests.reliability import chaos_reversals as reversals  # noqa: E402
from tests.reliability.chaos_reversals import ORCH, A, B, G, Step, Story, T  # noqa: E402

# --- the deployment ---------------------------------------------------------------------------

#: The app's DR timeout in the web and worker processes; `SLOW_MS` is longer, so slow calls time out.
TIMEOUT_SECONDS = 1
SLOW_MS = 1500
BAD_NETWORK = {
    "error_rate": 0.2,
    "error_statuses": [500, 502, 503],
    "slow_rate": 0.05,
    "slow_ms": SLOW_MS,
    "duplicate_rate": 1.0,
    "reorder": True,
    "delay_rate": 0.2,
    "delay_seconds": 2,
    "backoff_seconds": 1,
    "max_attempts": 20,
}


def deployment_environment(*, port: int, database_url: str, broker_url: str, **settings: str) -> dict:
    """The environment of a deployment with its sandbox on ``port`` (and of this driver), with
    ``settings`` laid over it and none of this process's own DJANGO_, DR_, CELERY_ or DATABASE_."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "CELERY_", "DATABASE_"))}
    env.update(
        DJANGO_DEBUG="1",  # plain HTTP between the app and its sandbox, as in `make run`
        DJANGO_SETTINGS_MODULE="config.settings",
        DR_SANDBOX="1",
        DR_API_BASE_URL=f"http://127.0.0.1:{port}/sandbox/api",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        DJANGO_LOG_LEVEL="WARNING",
        CATALOG_PUSH_DELAY_SECONDS="0",
        **settings,
    )
    return env


def environment(*, port: int, database_url: str, broker_url: str, logs: Path) -> dict:
    return deployment_environment(
        port=port,
        database_url=database_url,
        broker_url=broker_url,
        DR_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        DR_OUTBOX_BACKOFF_BASE_SECONDS="1",
        DR_OUTBOX_BACKOFF_CAP_SECONDS="8",
        DR_OUTBOX_SWEEP_SECONDS="3",
        # The limit is shared by every process through Redis (digitalriver/ratelimit.py); the
        # emulator is not DR's test mode, so the run is not held to 25 calls a second.
        DR_RATE_LIMIT_PER_SECOND="200",
        CHAOS_LOGS=str(logs),
    )


class Processes:
    """gunicorn, the Celery worker (killable) and Celery beat, each logging to a file."""

    def __init__(self, env: dict, port: int, logs: Path, *, concurrency: int = 3):
        self.env, self.port, self.logs, self.concurrency = env, port, logs, concurrency
        self.gunicorn = None
        self.worker = None
        self.beat = None
        self.worker_starts = 0

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        # A session of its own: killing the worker kills its pool children too, and nothing else.
        return subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True)

    def start(self) -> None:
        subprocess.run(
            [PYTHON, "-m", "celery", "-A", "config", "purge", "-f"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )
        args = Gunicorn(env=self.env, workers=2, threads=8, port=self.port).args
        self.gunicorn = self._spawn(args, "gunicorn")
        self.start_worker()
        schedule = self.logs / "beat-schedule"
        self.beat = self._spawn(
            [PYTHON, "-m", "celery", "-A", "config", "beat", "--schedule", str(schedule), "--loglevel", "WARNING"],
            "beat",
        )
        wait_until(self._listening, "gunicorn to listen", timeout=30)

    def start_worker(self) -> None:
        self.worker_starts += 1
        self.worker = self._spawn(
            [
                PYTHON, "-m", "celery", "-A", "config", "worker",
                "--pool", "threads", "--concurrency", str(self.concurrency), "--loglevel", "WARNING",
                "--hostname", f"chaos{self.worker_starts}@%h",
                "--without-mingle", "--without-gossip",
            ],
            f"worker{self.worker_starts}",
        )  # fmt: skip

    def kill_worker(self) -> int:
        pid = self.worker.pid
        os.killpg(pid, signal.SIGKILL)
        self.worker.wait(timeout=10)
        return pid

    def _listening(self) -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        # The work is done (or the run failed): no graceful drain, SIGQUIT stops gunicorn and the
        # worker at once.
        signals = ((self.beat, signal.SIGTERM), (self.worker, signal.SIGQUIT), (self.gunicorn, signal.SIGQUIT))
        for process, sig in signals:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, sig)
        for process in (self.beat, self.worker, self.gunicorn):
            if process is None:
                continue
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.forget_killed_workers_messages()

    def forget_killed_workers_messages(self) -> None:
        """Drop what the run leaves on the broker: queued tasks, and the tasks the killed worker had
        taken (acks_late keeps them in Redis's `unacked` hash and hands them to whichever worker
        consumes this broker once the visibility timeout, an hour, has passed; they name rows of this
        run's database, which is gone by then)."""
        subprocess.run(
            [PYTHON, "-m", "celery", "-A", "config", "purge", "-f"], cwd=ROOT, env=self.env, capture_output=True
        )
        url = self.env.get("CELERY_BROKER_URL", "")
        if url.startswith(("redis://", "rediss://")):
            import redis

            redis.Redis.from_url(url).delete("unacked", "unacked_index")


def wait_until(done, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.05)
    raise RuntimeError(f"gave up waiting for {what}")


# --- the third copy of every event --------------------------------------------------------------


class ThirdCopies(threading.Thread):
    """Posts each event once more, signed like the sandbox does, a few seconds after it was emitted
    (the sandbox itself delivers each event and one duplicate), in shuffled order."""

    def __init__(self, url: str):
        super().__init__(name="third-copies", daemon=True)
        self.url = url
        self.due: list[tuple[float, str, bytes]] = []
        self.answers: dict[str, list[int | None]] = defaultdict(list)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def add(self, event_id: str, envelope: dict) -> None:
        with self.lock:
            self.due.append((time.monotonic() + random.uniform(0.3, 4.0), event_id, json.dumps(envelope).encode()))

    def pending(self) -> int:
        with self.lock:
            return len(self.due)

    def run(self) -> None:
        import requests
        from django.conf import settings

        from sandbox.signing import signature_header

        secret = settings.DR_WEBHOOK_SECRETS[0]
        with requests.Session() as session:
            while not (self.stop.is_set() and not self.pending()):
                now = time.monotonic()
                with self.lock:
                    ready = [entry for entry in self.due if entry[0] <= now]
                    self.due = [entry for entry in self.due if entry[0] > now]
                random.shuffle(ready)
                for _, event_id, body in ready:
                    status = None
                    for _try in range(5):
                        try:
                            headers = {
                                "Content-Type": "application/json",
                                "DigitalRiver-Signature": signature_header(secret, body),
                            }
                            status = session.post(self.url, data=body, headers=headers, timeout=5).status_code
                        except Exception:
                            status = None
                        if status is not None and 200 <= status < 300:
                            break
                        time.sleep(0.5)
                    self.answers[event_id].append(status)
                time.sleep(0.05)


# --- the stories --------------------------------------------------------------------------------

FLOW_STORIES = (
    Story(
        "distributed, two shipments",
        ((A, 2), (B, 1)),
        (Step("ship", ((A, 1),)), Step("ship", ((A, 1), (B, 1)))),
        "complete",
        {A: (2, 2, 0), B: (1, 1, 0)},
    ),
    Story(
        "distributed, the warehouse cancels a unit",
        ((A, 3),),
        (Step("ship", ((A, 2),)), Step("wh_cancel", ((A, 1),))),
        "complete",
        {A: (2, 2, 1)},
    ),
    Story(
        "distributed, customer service cancels a unit through the warehouse",
        ((A, 3), (B, 1)),
        (Step("cs_cancel", ((A, 1),)), Step("accepted"), Step("ship", ((A, 2), (B, 1)))),
        "complete",
        {A: (2, 2, 1), B: (1, 1, 0)},
    ),
    Story("orchestrated", ((ORCH, 2),), (Step("ship_managed", ((ORCH, 2),)),), "complete", {ORCH: (2, 2, 0)}),
    Story(
        "orchestrated with a warehouse cancel, and a digital line",
        ((ORCH, 3), (G, 1)),
        (Step("ship_managed", ((ORCH, 2),)), Step("wh_cancel_managed", ((ORCH, 1),)), Step("record", ((G, 1),))),
        "complete",
        {ORCH: (2, 2, 1), G: (1, 1, 0)},
    ),
    Story(
        "third-party and digital, customer service cancels a unit",
        ((T, 3), (G, 1)),
        (Step("record", ((T, 2), (G, 1))), Step("cs_cancel", ((T, 1),))),
        "complete",
        {T: (2, 2, 1), G: (1, 1, 0)},
    ),
    Story(
        "every model in one order",
        ((A, 1), (ORCH, 1), (T, 1), (G, 1)),
        (Step("ship", ((A, 1),)), Step("ship_managed", ((ORCH, 1),)), Step("record", ((T, 1), (G, 1)))),
        "complete",
        {A: (1, 1, 0), ORCH: (1, 1, 0), T: (1, 1, 0), G: (1, 1, 0)},
    ),
    Story(
        "customer service cancels the whole order",
        ((B, 2), (T, 1)),
        (Step("cs_cancel_all"), Step("accepted")),
        "cancelled",
        {B: (0, 0, 2), T: (0, 0, 1)},
    ),
    Story(
        "customer service cancels an orchestrated unit",
        ((ORCH, 2), (A, 1)),
        (
            Step("cs_cancel", ((ORCH, 1),)),
            Step("accepted"),
            Step("ship_managed", ((ORCH, 1),)),
            Step("ship", ((A, 1),)),
        ),
        "complete",
        {ORCH: (1, 1, 1), A: (1, 1, 0)},
    ),
)
STORIES = (*FLOW_STORIES, *reversals.STORIES)


@dataclass
class Run:
    story: Story
    dr_order_id: str
    items: dict[str, str]  # SKU -> DR item id
    next_step: int = 0
    errors: list[str] = field(default_factory=list)
    waiting_since: float = 0.0

    @property
    def done(self) -> bool:
        return self.next_step >= len(self.story.steps)


class Driver:
    def __init__(self, args, processes: Processes, third: ThirdCopies):
        self.args = args
        self.processes = processes
        self.third = third
        self.runs: list[Run] = []
        self.steps_done = 0
        self.total_steps = 0
        self.kill: dict = {}
        self.last_event_pk = 0
        self.seen_events: set[int] = set()

    # preconditions and actions, all against this process's Django
    def ours(self, run: Run):
        from commerce.models import Order

        order = Order.objects.filter(dr_order_id=run.dr_order_id, state=Order.State.ACCEPTED).first()
        if order is None or order.lines.count() != len(run.story.lines):
            return None
        return order

    def dr_fulfillment_order(self, run: Run, managed: bool):
        from sandbox.models import FulfillmentOrder

        return FulfillmentOrder.objects.filter(upstream_id=run.dr_order_id, managed=managed).order_by("pk").first()

    def fo_items(self, fulfillment_order, run: Run, items) -> list[tuple[str, int]]:
        by_upstream = {item.upstream_id: item.dr_id for item in fulfillment_order.items.all()}
        return [(by_upstream[run.items[sku]], quantity) for sku, quantity in items]

    def try_step(self, run: Run) -> bool:
        """Run the story's next step if what it needs is there; True if it ran (or failed for good)."""
        from fulfillment.cancellations import CancellationRefused, cancellable_units, order_cancel
        from fulfillment.shipments import shipment_record
        from sandbox.models import FulfillmentCancellation
        from sandbox.services.warehouse import warehouse_cancel, warehouse_ship

        step = run.story.steps[run.next_step]
        if step.kind in reversals.REVERSAL_KINDS:
            return reversals.try_step(run, step)
        if step.kind in ("ship", "ship_managed", "wh_cancel", "wh_cancel_managed"):
            fulfillment_order = self.dr_fulfillment_order(run, managed=step.kind.endswith("managed"))
            if fulfillment_order is None:
                return False
            items = self.fo_items(fulfillment_order, run, step.items)
            if step.kind.startswith("ship"):
                warehouse_ship(fulfillment_order_id=fulfillment_order.dr_id, items=items)
            else:
                warehouse_cancel(fulfillment_order_id=fulfillment_order.dr_id, items=items)
            return True
        if step.kind == "accepted":
            return FulfillmentCancellation.objects.filter(
                fulfillment_order__upstream_id=run.dr_order_id, state=FulfillmentCancellation.State.ACCEPTED
            ).exists()
        order = self.ours(run)
        if order is None:
            return False
        if step.kind == "record":
            shipment_record(
                order=order,
                items=[(run.items[sku], quantity) for sku, quantity in step.items],
                tracking_company="DHL",
                tracking_number=f"JD{random.randrange(10**9):09d}",
            )
            return True
        open_units = {entry.line.dr_sku_id: entry.quantity for entry in cancellable_units(order=order).values()}
        if step.kind == "cs_cancel_all":
            if any(open_units.get(sku, 0) < quantity for sku, quantity in run.story.lines):
                return False  # the fulfillment order is not mirrored yet
            order_cancel(order=order, cancel_all=True, reason="customer asked (chaos)")
            return True
        if step.kind == "cs_cancel":
            if any(open_units.get(sku, 0) < quantity for sku, quantity in step.items):
                return False
            try:
                order_cancel(
                    order=order,
                    items=[(run.items[sku], quantity) for sku, quantity in step.items],
                    reason="customer asked (chaos)",
                )
            except CancellationRefused:
                return False
            return True
        raise ValueError(step.kind)

    def advance(self) -> int:
        moved = 0
        for run in self.runs:
            if run.done:
                continue
            try:
                ran = self.try_step(run)
            except Exception as exc:
                run.errors.append(f"step {run.next_step} {run.story.steps[run.next_step].kind}: {exc!r}")
                ran = True  # the story goes on; the end state shows what the failure meant
            if ran:
                run.next_step += 1
                run.waiting_since = time.monotonic()
                self.steps_done += 1
                moved += 1
        return moved

    def warehouse_answers(self) -> int:
        """The warehouse accepts every cancellation request DR passes on to it."""
        from sandbox.models import FulfillmentCancellation
        from sandbox.services.warehouse import WarehouseError, cancellation_accept

        answered = 0
        for dr_id in FulfillmentCancellation.objects.filter(state=FulfillmentCancellation.State.PENDING).values_list(
            "dr_id", flat=True
        ):
            try:
                cancellation_accept(cancellation_id=dr_id)
                answered += 1
            except WarehouseError:
                pass
        return answered

    def copy_new_events(self) -> None:
        """Queue a third copy of each event DR emitted since the last look.

        Events commit out of id order (a lower id can commit after a higher one was seen), so each
        look goes back a window of ids and skips the ones already seen.
        """
        from sandbox.models import Event

        recent = Event.objects.filter(pk__gt=self.last_event_pk - 500).values_list("pk", flat=True)
        new = [pk for pk in recent if pk not in self.seen_events]
        for pk, dr_id, envelope in (
            Event.objects.filter(pk__in=new).order_by("pk").values_list("pk", "dr_id", "envelope")
        ):
            self.seen_events.add(pk)
            self.last_event_pk = max(self.last_event_pk, pk)
            self.third.add(dr_id, envelope)

    def place(self, index: int) -> Run:
        from sandbox.services.orders import Line, order_place

        story = STORIES[index % len(STORIES)]
        lines = [Line(sku_id=sku, quantity=quantity) for sku, quantity in story.lines]
        order = order_place(lines=lines, **({"card": story.card} if story.card else {}))
        items = {item.sku_id: item.dr_id for item in order.items.all()}
        return Run(story=story, dr_order_id=order.dr_id, items=items, waiting_since=time.monotonic())

    def maybe_kill_worker(self, started: float) -> None:
        from digitalriver.models import Instruction, WebhookEvent

        if not self.kill and self.steps_done >= 0.4 * self.total_steps:
            in_flight = {
                "events_received": WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED).count(),
                "instructions_waiting": Instruction.objects.filter(
                    state__in=[Instruction.State.PENDING, Instruction.State.RETRY_WAIT, Instruction.State.SENDING]
                ).count(),
            }
            pid = self.processes.kill_worker()
            self.kill = {
                "pid": pid,
                "at_seconds": round(time.monotonic() - started, 1),
                "steps_done": self.steps_done,
                "in_flight": in_flight,
                "killed_at": time.monotonic(),
            }
        elif self.kill and "restarted_at_seconds" not in self.kill and time.monotonic() - self.kill["killed_at"] > 3:
            self.processes.start_worker()
            self.kill["restarted_at_seconds"] = round(time.monotonic() - started, 1)


# --- the run ------------------------------------------------------------------------------------


def push_skus() -> None:
    from catalog.models import Sku
    from catalog.services import sku_create, skus_push

    common = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "weight": 1, "weight_unit": "lb"}
    models = {
        A: Sku.FulfillmentModel.DISTRIBUTED,
        B: Sku.FulfillmentModel.DISTRIBUTED,
        ORCH: Sku.FulfillmentModel.ORCHESTRATED,
        T: Sku.FulfillmentModel.THIRD_PARTY,
        G: Sku.FulfillmentModel.DIGITAL,
    }
    skus = []
    for sku_id, model in models.items():
        values = {"name": f"Chaos {sku_id}", "part_number": f"PN-{sku_id}", "allow_oversell": True, **common}
        if model == Sku.FulfillmentModel.DIGITAL:
            values.update(tax_code="4512.2", part_number="", weight=None)
        skus.append(sku_create(values={"sku_id": sku_id, "fulfillment_model": model, **values}))
    skus_push(skus=skus)
    wait_until(
        lambda: Sku.objects.filter(sku_id__in=models, sync_state=Sku.SyncState.SYNCED).count() == len(models),
        "the SKU pushes",
        timeout=60,
    )
    # Overselling is the inventory item's to allow, and DR keeps the orchestrated SKU's item: the
    # warehouse is stocked for every order of the run instead.
    from sandbox.errors import ApiError as SandboxApiError
    from sandbox.services.catalog import DEFAULT_LOCATION, inventory_level_set

    for sku_id in models:
        with contextlib.suppress(SandboxApiError):  # no inventory item: a digital SKU
            inventory_level_set(item_id=sku_id, location_id=DEFAULT_LOCATION, available_quantity=1_000_000)


def outstanding() -> dict:
    from digitalriver.models import Instruction, WebhookEvent
    from sandbox.models import Delivery, FulfillmentCancellation, Refund

    return {
        "instructions": Instruction.objects.filter(
            state__in=[Instruction.State.PENDING, Instruction.State.RETRY_WAIT, Instruction.State.SENDING]
        ).count(),
        "events": WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED).count(),
        "deliveries": Delivery.objects.filter(state=Delivery.State.PENDING).count(),
        "cancellation_requests": FulfillmentCancellation.objects.filter(
            state=FulfillmentCancellation.State.PENDING
        ).count(),
        "refunds_at_the_bank": Refund.objects.filter(
            state__in=[Refund.State.PENDING, Refund.State.PENDING_INFORMATION]
        ).count(),
    }


def sweep(log: dict) -> None:
    """What an operator runs after an outage: the outbox with backoff ignored, failed events
    replayed, and the inbox sweep."""
    from io import StringIO

    from django.core.management import call_command

    from digitalriver.models import WebhookEvent
    from digitalriver.services import inbox

    out = StringIO()
    call_command("process_outbox", ignore_backoff=True, stdout=out)
    failed = list(WebhookEvent.objects.filter(state=WebhookEvent.State.FAILED).values_list("type", "error"))
    if failed:
        first_lines = (f"{kind}: {error.splitlines()[0] if error else ''}" for kind, error in failed)
        log["replayed_failed_events"].extend(first_lines)
        call_command("replay_events", failed=True, stdout=out, stderr=out)
    # Events the killed worker had claimed are among these once its lease has run out
    # (DR_INBOX_LEASE_SECONDS after it died), as they are for Celery beat's own inbox sweep.
    inbox.inbox_sweep()


def run(args) -> dict:
    import django

    django.setup()
    from django.conf import settings

    from sandbox.delivery import start_background_delivery, stop_background_delivery
    from sandbox.services.control import control_update

    logs = Path(args.logs)
    random.seed(args.seed)
    processes = Processes(dict(os.environ), args.port, logs)
    third = ThirdCopies(settings.SANDBOX_DEFAULT_WEBHOOK_URL)
    driver = Driver(args, processes, third)
    timings: dict = {}
    sweep_log = {"replayed_failed_events": []}
    started = time.monotonic()
    processes.start()
    try:
        control_update({"reset": True})
        start_background_delivery(interval=0.05)
        third.start()
        push_skus()
        timings["setup_s"] = round(time.monotonic() - started, 1)

        # Phase 1: the bad network, orders placed as the stories go on, the worker killed mid-run.
        control_update(BAD_NETWORK)
        bad_from = time.monotonic()
        driver.total_steps = sum(len(STORIES[i % len(STORIES)].steps) for i in range(args.orders))
        placed = 0
        while time.monotonic() - bad_from < args.chaos_seconds:
            for _ in range(4):
                if placed < args.orders:
                    driver.runs.append(driver.place(placed))
                    placed += 1
            driver.copy_new_events()
            driver.warehouse_answers()
            driver.advance()
            driver.maybe_kill_worker(started)
            if placed == args.orders and all(r.done for r in driver.runs) and "restarted_at_seconds" in driver.kill:
                break
            time.sleep(0.05)
        if not driver.kill:
            driver.maybe_kill_worker(started)  # a run too quick to reach 40% still loses its worker
        while "restarted_at_seconds" not in driver.kill:
            time.sleep(0.2)
            driver.maybe_kill_worker(started)
        timings["chaos_s"] = round(time.monotonic() - bad_from, 1)
        timings["steps_left_after_chaos"] = sum(len(r.story.steps) - r.next_step for r in driver.runs)

        # Phase 2: DR answers every call again (deliveries stay tripled and shuffled); the sweeps
        # run until nothing moves.
        control_update({"error_rate": 0, "slow_rate": 0})
        calm_from = time.monotonic()
        quiet_rounds = 0
        while time.monotonic() - calm_from < args.settle_seconds:
            driver.copy_new_events()
            driver.warehouse_answers()
            driver.advance()
            sweep(sweep_log)
            driver.copy_new_events()  # what the sweep made DR emit gets its third copy too
            left = outstanding()
            if all(r.done for r in driver.runs) and not any(left.values()) and not third.pending():
                quiet_rounds += 1
                if quiet_rounds >= 3:
                    break
            else:
                quiet_rounds = 0
            time.sleep(1)
        timings["settle_s"] = round(time.monotonic() - calm_from, 1)
        timings["outstanding_at_end"] = outstanding()
        third.stop.set()
        third.join(timeout=30)
        stop_background_delivery()
        report = collect(driver, third, bad_from_wall=time.time() - (time.monotonic() - bad_from))
        report["timings"] = timings
        report["sweeps"] = sweep_log
        report["kill"] = {k: v for k, v in driver.kill.items() if k != "killed_at"}
        report["worker_starts"] = processes.worker_starts
        report["total_s"] = round(time.monotonic() - started, 1)
        return report
    finally:
        stopping = time.monotonic()
        processes.stop()
        print(f"processes stopped in {time.monotonic() - stopping:.1f} s", file=sys.stderr)


# --- what happened ------------------------------------------------------------------------------


def collect(driver: Driver, third: ThirdCopies, bad_from_wall: float) -> dict:
    from datetime import UTC, datetime

    from commerce.models import Order, OrderLine
    from digitalriver.models import ApiCall, Attempt, Instruction, WebhookEvent
    from sandbox.models import DeliveryAttempt, Event, Fulfillment
    from sandbox.models import FulfillmentOrder as DrFulfillmentOrder
    from sandbox.models import FulfillmentOrderItem as DrFulfillmentOrderItem
    from sandbox.models import Order as DrOrder

    orders = []
    for run in driver.runs:
        ours = Order.objects.filter(dr_order_id=run.dr_order_id).first()
        dr_order = DrOrder.objects.get(dr_id=run.dr_order_id)
        posts = list(Fulfillment.objects.filter(order=dr_order).order_by("pk"))
        captured, released = Counter(), Counter()
        for post in posts:
            for item in post.data.get("items", []):
                captured[item["itemId"]] += item.get("quantity") or 0
                released[item["itemId"]] += item.get("cancelQuantity") or 0
        at_warehouse = defaultdict(lambda: [0, 0])
        for fo_item in DrFulfillmentOrderItem.objects.filter(fulfillment_order__upstream_id=run.dr_order_id):
            at_warehouse[fo_item.upstream_id][0] += fo_item.shipped + fo_item.returned  # returns take from shipped
            at_warehouse[fo_item.upstream_id][1] += fo_item.cancelled
        dr_items = {item.sku_id: item for item in dr_order.items.all()}
        lines = {}
        for sku, item_id in run.items.items():
            line = ours.lines.filter(dr_item_id=item_id).first() if ours else None
            item = dr_items[sku]
            lines[sku] = {
                "ours": None
                if line is None
                else {
                    "model": line.fulfillment_model,
                    "quantity": line.quantity,
                    "shipped": line.shipped,
                    "fulfilled": line.fulfilled,
                    "cancelled": line.cancelled,
                    "cancel_requested": line.cancel_requested,
                    "pending": line.pending,
                    "backordered": line.backordered,
                },
                "dr": {
                    "fulfilled_quantity": item.fulfilled_quantity,
                    "cancelled_quantity": item.cancelled_quantity,
                    "captured_in_posts": captured[item_id],
                    "released_in_posts": released[item_id],
                    "warehouse_shipped": at_warehouse[item_id][0],
                    "warehouse_cancelled": at_warehouse[item_id][1],
                },
            }
        capture_posts = [p for p in posts if any(i.get("quantity") for i in p.data.get("items", []))]
        instruction_ids = Counter(
            (p.data.get("metadata") or {}).get("instructionId")
            for p in posts
            if (p.data.get("metadata") or {}).get("instructionId")
        )
        shipment_ids = Counter(p.data.get("shipmentId") for p in capture_posts if p.data.get("shipmentId"))
        attempts = defaultdict(list)
        for instruction_id, outcome, code in Attempt.objects.filter(
            instruction__subject=f"order:{run.dr_order_id}"
        ).values_list("instruction_id", "outcome", "error_codes"):
            attempts[instruction_id].append(f"{outcome}{code or ''}")
        orders.append(
            {
                "dr_order_id": run.dr_order_id,
                "instructions": [
                    f"{i.pk} {i.kind} {i.state}: {' '.join(attempts[i.pk])}"
                    for i in Instruction.objects.filter(subject=f"order:{run.dr_order_id}").order_by("pk")
                ],
                "story": run.story.name,
                "expected": {"state": run.story.state, "lines": {k: list(v) for k, v in run.story.end.items()}},
                "steps_done": run.next_step,
                "steps": len(run.story.steps),
                "driver_errors": run.errors,
                "ours": None
                if ours is None
                else {
                    "state": ours.state,
                    "capture_failed": ours.capture_failed,
                    "cancellation_rejected": ours.cancellation_rejected,
                    "backordered": ours.backordered,
                    "captured_amount": str(ours.captured_amount),
                    "cancelled_amount": str(ours.cancelled_amount),
                    "total_amount": str(ours.total_amount),
                },
                "dr": {
                    "state": dr_order.state,
                    "captured_amount": str(dr_order.captured_amount),
                    "cancelled_amount": str(dr_order.cancelled_amount),
                    "total_amount": str(dr_order.total_amount),
                    "distributed_fulfillment_orders": DrFulfillmentOrder.objects.filter(
                        upstream_id=run.dr_order_id, managed=False
                    ).count(),
                    "posts_sharing_an_instruction": {k: v for k, v in instruction_ids.items() if v > 1},
                    "captures_sharing_a_shipment": {k: v for k, v in shipment_ids.items() if v > 1},
                    "cancellation_requests": list(
                        dr_order_cancellations(run.dr_order_id),
                    ),
                },
                "lines": lines,
                "reversals": reversals.collect_order(run),
                "story_reversals": {"returned": run.story.returned, "refunds": run.story.refunds},
            }
        )

    instructions = Instruction.objects.all()
    events = WebhookEvent.objects.all()
    bad_from = datetime.fromtimestamp(bad_from_wall, tz=UTC)
    chaos_events = list(Event.objects.filter(created_time__gte=bad_from).values_list("dr_id", flat=True))
    stale_pending = [
        f"{line.order.dr_order_id} {line.dr_sku_id}: pending {line.pending}, shipped {line.shipped}"
        for line in OrderLine.objects.select_related("order").filter(pending__gt=0, order__state="complete")
    ]
    # Sends, answered or not: the sandbox's (first tries, retries and duplicates) and the third copies.
    delivered = Counter(
        DeliveryAttempt.objects.filter(event__dr_id__in=chaos_events)
        .exclude(note="dropped")
        .values_list("event__dr_id", flat=True)
        .iterator()
    )
    for event_id, statuses in third.answers.items():
        delivered[event_id] += len(statuses)
    stored = set(events.values_list("dr_event_id", flat=True))
    all_emitted = list(Event.objects.values_list("dr_id", "type"))
    calls = ApiCall.objects.all()
    return {
        "orders": orders,
        "instructions": {
            "by_state": dict(Counter(instructions.values_list("state", flat=True))),
            "unfinished": [
                f"{i.pk} {i.kind} {i.subject} {i.state}: {i.last_error[:200]}"
                for i in instructions.exclude(state__in=[Instruction.State.DONE, Instruction.State.FAILED])
            ],
            "failed": [
                f"{i.pk} {i.kind} {i.subject}: {i.last_error[:300]}" for i in instructions.filter(state="failed")
            ],
            "failed_without_reason": [i.pk for i in instructions.filter(state="failed", last_error="")],
            "uncertain_resolved_by_lookup": instructions.filter(attempt_set__outcome="already_done").distinct().count(),
        },
        "events": {
            "by_state": dict(Counter(events.values_list("state", flat=True))),
            "unfinished": [
                f"{e.pk} {e.type} {e.dr_event_id}"
                for e in events.exclude(state__in=[WebhookEvent.State.PROCESSED, WebhookEvent.State.IGNORED]).exclude(
                    state=WebhookEvent.State.FAILED
                )
            ],
            "failed": [f"{e.type} {e.dr_event_id}: {e.error[:300]}" for e in events.filter(state="failed")],
            "failed_without_reason": [e.pk for e in events.filter(state="failed", error="")],
            "emitted_not_stored": [f"{kind} {dr_id}" for dr_id, kind in all_emitted if dr_id not in stored],
            "emitted": len(all_emitted),
        },
        "observations": {"complete_orders_with_pending_units": stale_pending},
        "reversals": {"figures": reversals.figures(orders), "events": reversals.collect_events()},
        "chaos": {
            "events_during_chaos": len(chaos_events),
            "events_delivered_fewer_than_three_times": [e for e in chaos_events if delivered[e] < 3],
            "deliveries_per_event": dict(Counter(delivered[e] for e in chaos_events)),
            "api_calls": calls.count(),
            "injected_5xx": calls.filter(error_code__startswith="sandbox_5").count(),
            "timeouts": calls.filter(error_code="timeout").count(),
            "webhook_deliveries": DeliveryAttempt.objects.count() + sum(len(v) for v in third.answers.values()),
        },
    }


def dr_order_cancellations(dr_order_id: str):
    from sandbox.models import FulfillmentCancellation

    for cancellation in FulfillmentCancellation.objects.filter(fulfillment_order__upstream_id=dr_order_id).order_by(
        "pk"
    ):
        yield {
            "state": cancellation.state,
            "items": [(item.quantity, item.quantity_accepted) for item in cancellation.items.all()],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--broker-url", required=True)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chaos-seconds", type=float, default=180, help="most time under the bad network")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=300,
        help="most time for the stories and sweeps to settle (ends when quiet)",
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--logs", required=True)
    args = parser.parse_args()
    args.port = free_port()
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    os.environ.update(
        environment(port=args.port, database_url=args.database_url, broker_url=args.broker_url, logs=Path(args.logs))
    )
    try:
        report = run(args)
    except Exception:
        report = {"crashed": traceback.format_exc()}
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()

"""Orders per second through the production pipeline, against a DR that answers at once.

The production shape of the README: gunicorn (`config.wsgi`, 2 workers x 4 threads, production
settings) on PostgreSQL, N Celery workers (`celery -A config worker --pool threads --concurrency 8`) on Redis, and a
DR stand-in (bench/dr_standin.py, its own process) that records every call. No beat: each step is a
task queued when the step before commits; the sweeps only pick up what was lost. Two bursts of
signed webhooks from tests/fixtures/dr/, posted with concurrency 8:

1. `order.accepted` for each of N orders (a distributed and an orchestrated line) -> our
   `POST /fulfillment-orders`;
2. `fulfillment_order.shipped` of every unit of each fulfillment order the stand-in created -> our
   `POST /fulfillments` (the capture).

Per phase: orders/s (N / (the last order's call - the first post)), p50 / p99 lag from posting an
order's event to DR receiving its call, CPU seconds per order of each process kind (from /proc, until
the app is idle again), and the busiest wall-clock seconds at DR. A few orders go through both phases
first, unmeasured, so that no figure includes a cold start.

The database is dropped, created and migrated on every run. Results: bench/results/pipeline_throughput.json,
or pipeline_rate_limit.json when --rate-limit is below the default (which never limits).

    .venv/bin/python bench/pipeline_throughput.py --orders 500
    .venv/bin/python bench/pipeline_throughput.py --orders 300 --workers 3 --rate-limit 40
"""

import argparse
import copy
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import psycopg
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    PYTHON,
    Gunicorn,
    free_port,
    fresh_database,
    manage,
    percentile,
    process_table,
    production_env,
    tree_cpu_seconds,
    wait_for,
    write_result,
)
from bench.dr_standin import call_figures, dr_read  # noqa: E402
from digitalriver.signature import sign  # noqa: E402

SECRET = "whsec_bench_secret"  # production_env's DR_WEBHOOK_SECRETS
FIXTURES = ROOT / "tests" / "fixtures" / "dr"
UNLIMITED = 1000.0
CONCURRENCY = 8
WARMUP_ORDERS = 8
# The fixture's SKUs: a distributed line (we ask DR for its fulfillment order) and an orchestrated one.
CATALOG = """
from catalog.models import Sku
common = {"tax_code": "4512.1", "eccn": "EAR99", "country_of_origin": "US", "part_number": "P-1"}
Sku.objects.create(sku_id="dist-1", name="Distributed widget", **common)
Sku.objects.create(sku_id="orch-1", name="Managed widget", fulfillment_model="orchestrated", **common)
"""
# PostgreSQL's: ours estimated (see Stand.cpu), the whole server's, and other databases' live backends.
CPU_KINDS = (
    "gunicorn",
    "celery",
    "postgres",
    "dr_standin",
    "load_generator",
    "postgres_server",
    "postgres_other_databases",
)
PHASES = {
    "order_accepted": ("order.accepted", "/fulfillment-orders"),
    "fulfillment_order_shipped": ("fulfillment_order.shipped", "/fulfillments"),
}


def accepted_event(number: int) -> tuple[str, bytes]:
    """event_order_accepted.json as order number ``number``: its own order, line and charge ids."""
    event = json.loads((FIXTURES / "event_order_accepted.json").read_text())
    order = event["data"]["object"]
    order_id = str(240_000_000_000 + number)
    event["id"] = str(uuid.uuid4())
    order.update(id=order_id, upstreamId=f"WEB-{number}")
    for index, item in enumerate(order["items"]):
        item["id"] = f"{order_id}{index}"
    for charge in order["payment"]["charges"]:
        charge.update(id=f"chg_{uuid.uuid4()}", orderId=order_id)
    return order_id, json.dumps(event).encode()


def shipped_event(order_id: str, fulfillment_order: dict) -> tuple[str, bytes]:
    """event_fulfillment_order_shipped.json shipping every unit of the stand-in's fulfillment order."""
    event = json.loads((FIXTURES / "event_fulfillment_order_shipped.json").read_text())
    shipment = event["data"]["object"]
    template = shipment["items"][0]
    event["id"] = str(uuid.uuid4())
    shipment.update(
        id=str(uuid.uuid4()),
        fulfillmentOrderId=fulfillment_order["id"],
        fulfillmentOrderUpstreamId=order_id,
        trackingNumber=f"1Z{order_id}",
        items=[
            {
                **copy.deepcopy(template),
                "id": str(uuid.uuid4()),
                "fulfillmentOrderItemId": item["id"],
                "fulfillmentOrderItemUpstreamId": item["upstreamId"],
                "inventoryItemId": item["inventoryItemId"],
                "quantity": item["quantity"],
            }
            for item in fulfillment_order["items"]
        ],
    )
    return order_id, json.dumps(event).encode()


def post_all(port: int, events: list[tuple[str, bytes]]) -> tuple[dict[str, float], Counter]:
    """POST the events, signed as they go, CONCURRENCY at a time; when each was posted, and the statuses."""
    posted: dict[str, float] = {}
    statuses: Counter = Counter()
    lock = threading.Lock()
    cursor = iter(events)

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                order_id, body = next(cursor, (None, b""))
            if order_id is None:
                break
            headers = {
                "Content-Type": "application/json",
                "DigitalRiver-Signature": sign(SECRET, body),
                "X-Forwarded-Proto": "https",  # as the TLS proxy says; else the app redirects
            }
            at = time.time()
            conn.request("POST", "/webhooks/digitalriver/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            with lock:
                posted[order_id] = at
                statuses[response.status] += 1
        conn.close()

    threads = [threading.Thread(target=sender) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return posted, statuses


class Stand:
    """The running deployment: the DR stand-in, gunicorn and the Celery workers."""

    def __init__(self, args, logs: Path):
        self.args, self.logs = args, logs
        self.dr_port = free_port()
        self.calls: list[list] = []
        self.env = production_env(
            DATABASE_URL=args.database_url,
            CELERY_BROKER_URL=args.broker_url,
            DR_API_BASE_URL=f"http://127.0.0.1:{self.dr_port}",
            DR_RATE_LIMIT_PER_SECOND=args.rate_limit,
        )

    def __enter__(self):
        self.control = Celery(broker=self.args.broker_url).control
        self.control.purge()  # tasks a killed run left behind would be about another database's rows
        with psycopg.connect(self.args.database_url) as conn:  # read while its backend lives
            self.postmaster = process_table()[conn.execute("SELECT pg_backend_pid()").fetchone()[0]][0]
        output = (self.logs / "processes.log").open("w")
        self.children: list[subprocess.Popen] = []
        try:
            self.start(output)
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self, output) -> None:
        quiet = {"cwd": ROOT, "env": self.env, "stdout": output, "stderr": output}
        self.dr = subprocess.Popen([PYTHON, "bench/dr_standin.py", "--port", str(self.dr_port)], **quiet)
        self.children.append(self.dr)
        self.gunicorn = Gunicorn(env=self.env, workers=2, threads=4, app="config.wsgi:application", output=output)
        try:
            self.gunicorn.__enter__()
        finally:
            if self.gunicorn.process is not None:
                self.children.append(self.gunicorn.process)
        command = [PYTHON, "-m", "celery", "-A", "config", "worker", "--concurrency", str(self.args.concurrency)]
        command += ["--pool", self.args.pool]
        self.workers = [subprocess.Popen([*command, "-n", f"bench{n}@%h"], **quiet) for n in range(self.args.workers)]
        self.children += self.workers
        wait_for("the Celery workers", lambda: len(self.control.ping(timeout=0.5)) >= self.args.workers, 120)
        answering = sorted(name for reply in self.control.ping(timeout=1.0) for name in reply)
        if len(answering) != self.args.workers:
            # Another run's worker on this broker would take our tasks and call its own DR stand-in.
            raise RuntimeError(f"other Celery workers consume from {self.args.broker_url}: {answering}")

    def __exit__(self, *exc):
        """Workers first (a warm shutdown finishes their tasks), then the web, then DR."""
        for child in reversed(self.children):
            child.terminate()
            child.wait(timeout=60)

    def new_calls(self) -> list[list]:
        fresh = dr_read(self.dr_port, f"/_calls?since={len(self.calls)}")["calls"]
        self.calls.extend(fresh)
        return fresh

    def monitor(self, query: str) -> list[tuple]:
        """A query about the server, from its `postgres` database: our own database's counts stay ours."""
        with psycopg.connect(urlparse(self.args.database_url)._replace(path="/postgres").geturl()) as conn:
            return conn.execute(query, {"ours": urlparse(self.args.database_url).path.lstrip("/")}).fetchall()

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process kind. Celery closes its database connection after every
        task, so most of our backends have exited (into the postmaster's count of its children) when a
        phase ends: PostgreSQL's figure is the whole server's, and "other:<pid>" the live backends of
        other databases, to take off it."""
        others = self.monitor("SELECT pid FROM pg_stat_activity WHERE datname <> %(ours)s")
        table = process_table()
        return {
            "gunicorn": tree_cpu_seconds(table, [self.gunicorn.process.pid]),
            "celery": tree_cpu_seconds(table, [worker.pid for worker in self.workers]),
            "postgres_server": tree_cpu_seconds(table, [self.postmaster]),
            "dr_standin": tree_cpu_seconds(table, [self.dr.pid]),
            "load_generator": table[os.getpid()][1],
            **{f"other:{pid}": tree_cpu_seconds(table, [pid]) for (pid,) in others},
        }

    def database_counters(self) -> Counter:
        """Our database's sessions (connections opened) and commits so far, as PostgreSQL counts them
        (each backend reports at most every second, so a little late)."""
        [(sessions, commits)] = self.monitor(
            "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = %(ours)s"
        )
        return Counter(sessions=sessions, commits=commits)

    def settle(self) -> None:
        """Until the app's processes are idle again (the work after a call: its outcome, emails)."""
        deadline = time.monotonic() + 15
        before = self.app_cpu()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.app_cpu()
            if now - before < 0.05:
                return
            before = now

    def app_cpu(self) -> float:
        return tree_cpu_seconds(process_table(), [self.gunicorn.process.pid, *(worker.pid for worker in self.workers)])

    def run_phase(self, event_type: str, path: str, events: list[tuple[str, bytes]]) -> dict:
        self.settle()
        self.new_calls()
        start, cpu_before, counters_before = len(self.calls), self.cpu(), self.database_counters()
        load = os.getloadavg()[0]
        posted, statuses = post_all(self.gunicorn.port, events)
        posting = time.time() - min(posted.values())
        first_call: dict[str, float] = {}
        deadline = time.monotonic() + max(300, len(events))
        while len(first_call) < len(events):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{event_type}: DR received {len(first_call)} of {len(events)} POST {path} "
                    f"(statuses {dict(statuses)}); see {self.logs}"
                )
            time.sleep(0.2)
            for at, method, called, key in self.new_calls():
                if method == "POST" and called == path and key in posted:
                    first_call.setdefault(key, at)
        self.settle()
        self.new_calls()
        cpu_after = self.cpu()
        result = figures(posted, first_call, self.calls[start:], cpu_before, cpu_after)
        counters = self.database_counters()
        counters.subtract(counters_before)
        result.update(
            webhook_statuses={str(code): count for code, count in sorted(statuses.items())},
            webhooks_per_second=round(len(events) / posting, 1),
            load_average_1m=round(load, 2),
            database_sessions_per_order=round(counters["sessions"] / len(events), 2),
            database_commits_per_order=round(counters["commits"] / len(events), 2),
        )
        return result


def figures(posted, first_call, calls, cpu_before, cpu_after) -> dict:
    orders = len(posted)
    lags = [first_call[key] - posted[key] for key in posted]
    span = max(first_call.values()) - min(posted.values())
    cpu: dict[str, float] = Counter()
    for name, seconds in cpu_after.items():
        cpu["postgres_other_databases" if name.startswith("other:") else name] += seconds - cpu_before.get(name, 0.0)
    # Ours, with the server's own work (WAL, autovacuum) and other databases' connections that ended.
    cpu["postgres"] = cpu["postgres_server"] - cpu["postgres_other_databases"]
    return {
        "orders": orders,
        "orders_per_second": round(orders / span, 1),
        "seconds": round(span, 2),
        "lag_p50_s": round(percentile(lags, 0.50), 2),
        "lag_p99_s": round(percentile(lags, 0.99), 2),
        "lag_max_s": round(max(lags), 2),
        "cpu_seconds_per_order": {name: round(cpu[name] / orders, 4) for name in CPU_KINDS},
        **call_figures(calls),
    }


def outcome(database_url: str) -> dict:
    """What the app made of it: events and instructions by state (all processed and done, or not)."""
    with psycopg.connect(database_url) as conn:
        events = conn.execute("SELECT type, state, count(*) FROM digitalriver_webhookevent GROUP BY 1, 2").fetchall()
        done = conn.execute("SELECT kind, state, count(*) FROM digitalriver_instruction GROUP BY 1, 2").fetchall()
    return {
        "events": {f"{kind} {state}": count for kind, state, count in sorted(events)},
        "instructions": {f"{kind} {state}": count for kind, state, count in sorted(done)},
    }


def report(args, phases: dict, logs: Path, problems: list[str]) -> None:
    limit, near = args.rate_limit, int(0.8 * args.rate_limit)
    workers = f"{args.workers} x {args.concurrency}"
    print(f"orders={args.orders} celery workers={workers} gunicorn=2 x 4 DR_RATE_LIMIT_PER_SECOND={limit:g}")
    print(f"{'':<40}" + "".join(f"{name:>27}" for name in phases))
    rows = {
        "orders/s": "orders_per_second",
        "lag p50 s": "lag_p50_s",
        "lag p99 s": "lag_p99_s",
        "lag max s": "lag_max_s",
        "webhooks posted /s": "webhooks_per_second",
        "commits / order": "database_commits_per_order",
        "new database sessions / order": "database_sessions_per_order",
        "busiest second at DR": "busiest_second",
        "busiest 1 s window at DR": "busiest_sliding_second",
        "load average (1 min) at start": "load_average_1m",
    }
    for label, key in rows.items():
        print(f"{label:<40}" + "".join(f"{phase[key]:>27}" for phase in phases.values()))
    for kind in CPU_KINDS:
        print(
            f"{'CPU s / order, ' + kind:<40}"
            + "".join(f"{p['cpu_seconds_per_order'][kind]:>27}" for p in phases.values())
        )
    for name, phase in phases.items():
        counts = phase["calls_per_second"]
        print(
            f"{name}: webhooks {phase['webhook_statuses']}; DR calls {phase['dr_calls']}; "
            f"top 5 seconds {phase['top_seconds']}; seconds over {limit:g}: {sum(c > limit for c in counts)}, "
            f"at >= {near}: {sum(c >= near for c in counts)} of {len(counts)}"
        )
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(f"process logs: {logs}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="each worker's pool size")
    parser.add_argument("--pool", default="threads", choices=["prefork", "threads"], help="each worker's pool")
    parser.add_argument("--rate-limit", type=float, default=UNLIMITED, help="DR_RATE_LIMIT_PER_SECOND")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_pipeline")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/1")
    args = parser.parse_args()

    fresh_database(args.database_url)
    logs = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    stand = Stand(args, logs)
    manage("migrate", "--noinput", env=stand.env)
    manage("shell", "-c", CATALOG, env=stand.env)
    warmup = [accepted_event(number) for number in range(WARMUP_ORDERS)]
    measured = [accepted_event(number) for number in range(WARMUP_ORDERS, WARMUP_ORDERS + args.orders)]
    with stand:
        for batch in (warmup, measured):  # the warm-up's figures are overwritten by the measured burst's
            accepted = stand.run_phase(*PHASES["order_accepted"], batch)
            created = dr_read(stand.dr_port, "/_created")
            shipped = stand.run_phase(
                *PHASES["fulfillment_order_shipped"], [shipped_event(key, created[key]) for key, _ in batch]
            )
            phases = {"order_accepted": accepted, "fulfillment_order_shipped": shipped}
    state = outcome(args.database_url)
    unfinished = {**state["events"], **state["instructions"]}.items()
    problems = [f"{count} x {what}" for what, count in unfinished if not what.endswith(("processed", "done"))]
    log_lines = (logs / "processes.log").read_text().splitlines()
    problems += [line.strip()[:200] for line in log_lines if "Traceback" in line or " ERROR" in line]
    report(args, phases, logs, problems)
    name = "pipeline_throughput" if args.rate_limit >= UNLIMITED else "pipeline_rate_limit"
    write_result(
        name,
        {
            "orders": args.orders,
            "celery_workers": f"{args.workers} x concurrency {args.concurrency} ({args.pool})",
            "gunicorn": "2 workers x 4 threads",
            "rate_limit_per_second": args.rate_limit,
            "post_concurrency": CONCURRENCY,
            "phases": phases,
            "outcome": state,
            "problems": problems,
        },
        script="pipeline_throughput",
    )


if __name__ == "__main__":
    main()

"""Latency from a `fulfillment_order.shipped` delivery to the sandbox receiving our `POST /fulfillments`.

Two deployments of the same code:

* embedded: `manage.py serve` (runserver) on SQLite, jobs on the server's background thread, the
  sandbox's delivery loop inside the server;
* celery: gunicorn on PostgreSQL with a Celery worker on Redis; the sandbox's delivery loop runs
  in this process.

For each of N orders the warehouse ships every unit; the figure is the time from the sandbox
starting the delivery of the `.shipped` event to the sandbox storing our capture.

    .venv/bin/python bench/flow_latency.py --orders 40
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PYTHON, Gunicorn, ensure_database, free_port, percentile, wait_for, write_result  # noqa: E402


def environment(mode: str, port: int, database_url: str, broker_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DR_", "CELERY_", "DATABASE_"))}
    env.update(
        DJANGO_DEBUG="1",  # plain HTTP between the app and its sandbox, as in `make run`
        DR_SANDBOX="1",
        DR_API_BASE_URL=f"http://127.0.0.1:{port}/sandbox/api",
        DATABASE_URL=database_url,
        DJANGO_LOG_LEVEL="WARNING",
    )
    if mode == "celery":
        env["CELERY_BROKER_URL"] = broker_url
    return env


class Processes:
    """The server (and worker) of one mode, stopped on exit."""

    def __init__(self, mode: str, env: dict, port: int):
        self.mode, self.env, self.port = mode, env, port
        self.children: list[subprocess.Popen] = []
        self.gunicorn = None

    def __enter__(self):
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        if self.mode == "embedded":
            self.children.append(
                subprocess.Popen(
                    [PYTHON, "manage.py", "serve", f"127.0.0.1:{self.port}", "--noreload"],
                    cwd=ROOT,
                    env=self.env,
                    **quiet,
                )
            )
        else:
            self.gunicorn = Gunicorn(env=self.env, workers=2, threads=4, port=self.port).__enter__()
            self.children.append(
                subprocess.Popen(
                    [PYTHON, "-m", "celery", "-A", "config", "worker", "--concurrency", "2", "--loglevel", "WARNING"],
                    cwd=ROOT,
                    env=self.env,
                    **quiet,
                )
            )
        _wait_for_port(self.port)
        return self

    def __exit__(self, *exc):
        for child in self.children:
            child.terminate()
        for child in self.children:
            child.wait(timeout=20)
        if self.gunicorn is not None:
            self.gunicorn.__exit__(*exc)


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


# A latency benchmark polls often: a 0.2 s poll would add up to 0.2 s to every figure.
POLL = 0.005


def measure(mode: str, orders: int) -> list[float]:
    """Runs in a child process whose Django is configured for the mode (see main)."""
    import django

    django.setup()
    from catalog.models import Sku
    from catalog.services import sku_create, skus_push
    from fulfillment.models import FulfillmentOrder
    from sandbox.delivery import start_background_delivery
    from sandbox.models import DeliveryAttempt, Fulfillment
    from sandbox.services.orders import Line, order_place
    from sandbox.services.warehouse import warehouse_ship

    if mode == "celery":
        start_background_delivery(interval=0.01)
    sku = sku_create(
        values={
            "sku_id": f"BENCH-{mode}-{int(time.time())}",
            "name": "Benchmark widget",
            "tax_code": "4512.1",
            "eccn": "EAR99",
            "country_of_origin": "US",
            "part_number": "BW-1",
        }
    )
    skus_push(skus=[sku])
    wait_for("the SKU push", lambda: Sku.objects.get(pk=sku.pk).sync_state == Sku.SyncState.SYNCED, poll=POLL)

    placed = [order_place(lines=[Line(sku.sku_id, 1)]) for _ in range(orders)]
    wait_for(
        "the fulfillment orders",
        lambda: FulfillmentOrder.objects.filter(order__dr_order_id__in=[o.dr_id for o in placed]).count() == orders,
        poll=POLL,
    )
    latencies = []
    for order in placed:
        fulfillment_order = FulfillmentOrder.objects.get(order__dr_order_id=order.dr_id)
        line = fulfillment_order.lines.get()
        warehouse_ship(fulfillment_order_id=fulfillment_order.dr_fulfillment_order_id, items=[(line.dr_item_id, 1)])
        wait_for("the capture", lambda o=order: Fulfillment.objects.filter(order__dr_id=o.dr_id).exists(), poll=POLL)
        captured = Fulfillment.objects.get(order__dr_id=order.dr_id).created_time
        attempts = DeliveryAttempt.objects.filter(event__type="fulfillment_order.shipped", event__order_id=order.dr_id)
        # The sandbox logs a delivery once our inbox has answered, which may be after the capture.
        wait_for("the delivery log", attempts.exists, poll=POLL)
        attempt = attempts.order_by("created_time").first()
        sent = attempt.created_time.timestamp() - attempt.duration_ms / 1000
        latencies.append((captured.timestamp() - sent) * 1000)
    return latencies


def run_mode(mode: str, args) -> dict:
    port = free_port()
    if mode == "embedded":
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix='flow-bench-')}/db.sqlite3"
    else:
        database_url = args.database_url
        ensure_database(database_url)
    env = environment(mode, port, database_url, args.broker_url)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    with Processes(mode, env, port):
        child = subprocess.run(
            [PYTHON, __file__, "--measure", mode, "--orders", str(args.orders)],
            cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
            capture_output=True,
            text=True,
            check=False,
        )
    if child.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{child.stderr[-3000:]}")
    latencies = [float(value) for value in child.stdout.split()]
    return {
        "orders": len(latencies),
        "median_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--modes", nargs="+", default=["embedded", "celery"], choices=["embedded", "celery"])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dr_bench_flow")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--measure", choices=["embedded", "celery"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(" ".join(f"{value:.3f}" for value in measure(args.measure, args.orders)))
        return

    results = {mode: run_mode(mode, args) for mode in args.modes}
    print(f"{'mode':<10}{'orders':>8}{'median ms':>12}{'p99 ms':>10}{'max ms':>10}")
    for mode, figures in results.items():
        print(
            f"{mode:<10}{figures['orders']:>8}{figures['median_ms']:>12}{figures['p99_ms']:>10}{figures['max_ms']:>10}"
        )
    write_result("flow_latency", {"modes": results})


if __name__ == "__main__":
    main()

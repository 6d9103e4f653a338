"""Catalog push throughput: N distributed SKU-inventory item pairs pushed to the sandbox through the outbox.

Starts gunicorn (production settings, PostgreSQL, the sandbox mounted) and makes the sandbox answer
every call after 50 ms and enforce DR's rate limit (429 above it, counted per calendar second as
calls arrive, after the latency).
Then, in this process, queues a push of each new distributed SKU and lets several sender threads
run the outbox sweep, each claiming one instruction at a time, all sharing the client's
process-wide rate limiter. Prints pairs per second, calls per second as a share of
DR_RATE_LIMIT_PER_SECOND, the busiest second, 429s, and checks every pair in the sandbox's tables;
writes bench/results/catalog_push.json.

    .venv/bin/python bench/catalog_push.py --pairs 1000 --senders 4 --latency-ms 50

The client's limiter keeps its own clock's sliding second at DR_RATE_LIMIT_PER_SECOND; what DR counts
is when calls arrive, so delays between the limiter and the wire (a busy machine) can put one call
too many into DR's second. ``--dr-limit`` lets the client ceiling sit below DR's to measure that.
"""

import argparse
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Gunicorn, ensure_database, manage, production_env, write_result


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4, help="threads running the outbox sweep")
    parser.add_argument("--latency-ms", type=int, default=50, help="added by the sandbox to every call")
    parser.add_argument("--rate-limit", type=float, default=25.0, help="DR_RATE_LIMIT_PER_SECOND (DR test mode: 25)")
    parser.add_argument(
        "--dr-limit", type=int, default=None, help="the limit the sandbox enforces like DR (default: --rate-limit)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dr_bench_catalog")
    args = parser.parse_args()
    if args.dr_limit is None:
        args.dr_limit = int(args.rate_limit)
    return args


def configure(args, port: int) -> dict:
    """One environment for the server and this process: same database, this process calls the server."""
    env = production_env(
        DATABASE_URL=args.database_url,
        DR_SANDBOX="1",
        DR_API_BASE_URL=f"http://127.0.0.1:{port}/sandbox/api",
        DR_RATE_LIMIT_PER_SECOND=args.rate_limit,
        # Queued pushes wait for the senders below, not for the in-process job that would run at once.
        CATALOG_PUSH_DELAY_SECONDS=3600,
        DJANGO_LOG_LEVEL="WARNING",
    )
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return env


def reset_tables() -> None:
    from catalog.models import Sku
    from digitalriver.models import ApiCall, Attempt, Instruction
    from sandbox.models import InventoryItem
    from sandbox.models import Sku as DrSku

    for model in (Attempt, Instruction, ApiCall, Sku, InventoryItem, DrSku):
        model.objects.all().delete()


def queue_pushes(pairs: int) -> None:
    from django.conf import settings

    from catalog.models import Sku
    from catalog.services import skus_push

    # The job run on commit would only find the push not yet due; run it inline instead of
    # leaving a timer thread per push behind.
    settings.TASKS_MODE = "inline"
    Sku.objects.bulk_create(
        Sku(
            sku_id=f"BENCH-{number:05d}",
            name=f"Bench widget {number}",
            tax_code="4512.1",
            eccn="EAR99",
            hs_code="8471.30.0100",
            country_of_origin="US",
            part_number=f"PN-{number:05d}",
            manufacturer_id="MFR-BENCH",
            allow_oversell=number % 2 == 0,
        )
        for number in range(pairs)
    )
    skus_push(skus=Sku.objects.order_by("pk"))


def run_senders(count: int) -> float:
    from django.db import connection

    from digitalriver.services.outbox import outbox_sweep

    def sender():
        try:
            # A sweep sends each row it claims once; rows DR asked to retry (429) are claimed again
            # by the next sweep, until a sweep finds nothing left.
            while outbox_sweep(ignore_backoff=True).sent:
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, name=f"sender-{number}") for number in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def busiest_second(starts: list[float]) -> int:
    """The most calls started within any one-second window (sliding, not calendar seconds)."""
    most, first = 0, 0
    for last, start in enumerate(starts):
        while start - starts[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def pairs_agreeing() -> int:
    from catalog.rules import SHARED_ATTRIBUTES
    from sandbox.models import InventoryItem
    from sandbox.models import Sku as DrSku

    items = {item.dr_id: item.data for item in InventoryItem.objects.all()}
    shared = [key for _, key in SHARED_ATTRIBUTES]
    agreeing = 0
    for sku in DrSku.objects.all():
        item = items.get(sku.dr_id)
        if item is not None and all(sku.data.get(key) == item.get(key) for key in shared):
            agreeing += 1
    return agreeing


def main():
    args = parse_args()
    ensure_database(args.database_url)
    server = Gunicorn(env={}, workers=args.workers, threads=args.threads)
    server.env = configure(args, server.port)
    manage("migrate", "--noinput", env=server.env)

    import django

    django.setup()
    from catalog.models import Sku
    from digitalriver.client import get_client
    from digitalriver.models import ApiCall
    from sandbox.services.control import control_update

    # Production settings redirect plain HTTP; here the proxy that would say "https" is absent.
    get_client().session.headers["X-Forwarded-Proto"] = "https"
    reset_tables()
    control_update({"reset": True, "latency_ms": args.latency_ms, "rate_limit_per_second": args.dr_limit})
    queue_pushes(args.pairs)

    with server:
        get_client().get("/skus", {"limit": 1})  # connect and warm the server before the clock starts
        ApiCall.objects.all().delete()
        elapsed = run_senders(args.senders)
    control_update({"reset": True})

    calls = list(ApiCall.objects.order_by("started_at").values_list("started_at", "status"))
    starts = [started.timestamp() for started, _ in calls]
    statuses = Counter(str(status) for _, status in calls)
    synced = Sku.objects.filter(sync_state=Sku.SyncState.SYNCED).count()
    agreeing = pairs_agreeing()
    calls_per_second = len(calls) / elapsed
    figures = {
        "pairs": args.pairs,
        "senders": args.senders,
        "latency_ms": args.latency_ms,
        "rate_limit_per_second": args.rate_limit,
        "dr_limit_per_second": args.dr_limit,
        "gunicorn": f"{args.workers} workers x {args.threads} threads",
        "seconds": round(elapsed, 2),
        "pairs_synced": synced,
        "pairs_agreeing_at_dr": agreeing,
        "pairs_per_second": round(synced / elapsed, 2),
        "calls": len(calls),
        "calls_per_second": round(calls_per_second, 2),
        "share_of_rate_limit": round(calls_per_second / args.rate_limit, 3),
        "share_of_dr_limit": round(calls_per_second / args.dr_limit, 3),
        "over_dr_limit_429": statuses.get("429", 0),
        "busiest_second_calls": busiest_second(starts),
        "statuses": dict(sorted(statuses.items())),
    }
    print(
        f"pairs={args.pairs} senders={args.senders} latency={args.latency_ms} ms "
        f"rate limit={args.rate_limit:g}/s (DR enforces {args.dr_limit}/s) gunicorn={figures['gunicorn']}"
    )
    print(f"{synced} pairs synced in {elapsed:.1f} s: {figures['pairs_per_second']} pairs/s")
    print(
        f"{len(calls)} calls: {figures['calls_per_second']} calls/s = "
        f"{figures['share_of_rate_limit']:.0%} of the limit; busiest second {figures['busiest_second_calls']} calls; "
        f"statuses {figures['statuses']}"
    )
    print(
        f"share of DR's limit: {figures['share_of_dr_limit']:.0%}; calls DR refused as over its limit (429): "
        f"{figures['over_dr_limit_429']}"
    )
    print(f"pairs whose SKU and inventory item agree in the sandbox: {agreeing}/{args.pairs}")
    write_result("catalog_push", figures)


if __name__ == "__main__":
    main()

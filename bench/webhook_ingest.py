"""Webhook ingest throughput and latency, against a no-op endpoint of the same server.

Starts gunicorn (production settings, PostgreSQL, a Redis broker so processing is queued, not run)
and sends N signed events with concurrency C to /webhooks/digitalriver/ and the same number of
requests to /bench/noop/. Prints events/s, p50 and p99 for both and their ratio, and writes
bench/results/webhook_ingest.json.

    .venv/bin/python bench/webhook_ingest.py --events 5000 --concurrency 8
"""

import argparse
import http.client
import json
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Gunicorn, migrated_database, percentile, write_result
from digitalriver.signature import sign

SECRET = "whsec_bench_secret"


def build_requests(count: int) -> list[tuple[bytes, str]]:
    prepared = []
    for number in range(count):
        event = {
            "id": str(uuid.uuid4()),
            "type": "order.accepted",
            "data": {"object": {"id": str(240_000_000_000 + number), "state": "accepted", "items": []}},
            "liveMode": False,
            "createdTime": "2026-11-20T10:00:00Z",
        }
        body = json.dumps(event).encode()
        prepared.append((body, sign(SECRET, body)))
    return prepared


def blast(port: int, path: str, prepared: list[tuple[bytes, str]], concurrency: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(prepared)))

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, codes = [], {}
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            body, signature = prepared[index]
            headers = {
                "Content-Type": "application/json",
                "DigitalRiver-Signature": signature,
                "X-Forwarded-Proto": "https",
            }
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            codes[response.status] = codes.get(response.status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dr_bench")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    env = migrated_database(args.database_url, static=True, CELERY_BROKER_URL=args.broker_url)

    # Every worker serves both endpoints before anything is measured: its first requests import the
    # URLconf and open its database and broker connections (tenths of a second of CPU), which otherwise
    # fell into the measured run of whichever endpoint first reached a worker the warm-up had missed.
    warmup = build_requests(600)
    warmup_connections = 2 * args.workers * args.threads
    events = build_requests(args.events)
    noop_requests = build_requests(args.events)
    with Gunicorn(env=env, workers=args.workers, threads=args.threads) as server:
        blast(server.port, "/bench/noop/", warmup, warmup_connections)
        blast(server.port, "/webhooks/digitalriver/", warmup, warmup_connections)
        noop = blast(server.port, "/bench/noop/", noop_requests, args.concurrency)
        ingest = blast(server.port, "/webhooks/digitalriver/", events, args.concurrency)

    from celery import Celery

    Celery(broker=args.broker_url).control.purge()  # the queued processing jobs are not part of this run

    ratio = round(ingest["per_second"] / noop["per_second"], 2)
    print(f"events={args.events} concurrency={args.concurrency} gunicorn={args.workers}x{args.threads} threads")
    print(f"{'endpoint':<26}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}  statuses")
    for name, figures in (("/bench/noop/", noop), ("/webhooks/digitalriver/", ingest)):
        row = f"{figures['per_second']:>10}{figures['p50_ms']:>10}{figures['p99_ms']:>10}"
        print(f"{name:<26}{row}  {figures['statuses']}")
    print(f"ingest / no-op throughput ratio: {ratio}")
    write_result(
        "webhook_ingest",
        {
            "events": args.events,
            "concurrency": args.concurrency,
            "gunicorn": f"{args.workers} workers x {args.threads} threads",
            "noop": noop,
            "webhook": ingest,
            "throughput_ratio": ratio,
        },
    )


if __name__ == "__main__":
    main()

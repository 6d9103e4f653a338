"""Where a webhook delivery's time goes: wall and CPU time per part of the request, in-process.

Calls the production WSGI app (production settings, PostgreSQL, a Redis broker) directly from one
thread, so the figures are the request's own, without gunicorn, the load generator or waiting for
a core: first N requests to the no-op endpoint, then N signed events to the webhook endpoint. Each
part's time excludes the parts timed inside it; "the rest" is the WSGI handler, middleware, URL
resolving, the view and the response. The gatherer thread's sends (core.jobs.Gatherer) are timed on
that thread and counted per delivery; one thread sending as fast as it can fills every message to
Gatherer.MAX_ITEMS, so that share is smaller here than under bench/webhook_ingest.py.

    .venv/bin/python bench/webhook_profile.py --events 3000
"""

import argparse
import functools
import io
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import migrated_database, write_result
from bench.webhook_ingest import build_requests

#: (module, attribute path, part) of every part timed; each is called through its module's global.
PARTS = [
    ("digitalriver.views", "verified_body", "signature check and body read"),
    ("digitalriver.views", "webhook_delivery_store", "JSON parse, field checks, the model (our code)"),
    ("digitalriver.services.inbox", "_storable", "storable check and redaction walk"),
    ("digitalriver.services.inbox", "redact_headers", "header redaction"),
    ("digitalriver.services.inbox", "insert_unless_exists", "INSERT … ON CONFLICT, committed (one round trip)"),
    ("core.jobs", "Gatherer.add", "hand-over to the gatherer thread"),
    ("core.jobs", "Gatherer._send", "broker publish (gatherer thread, per delivery)"),
]
REST = "the rest: handler, middleware, URL resolving, view, response"


class Timer:
    """Exclusive wall and CPU time per part; a thread-local stack keeps nested parts apart."""

    def __init__(self):
        self.totals: dict[str, list[float]] = {}
        self.local = threading.local()

    def wrap(self, name, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            stack = self.local.__dict__.setdefault("stack", [])
            stack.append([0.0, 0.0])
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
                inner_wall, inner_cpu = stack.pop()
                total = self.totals.setdefault(name, [0.0, 0.0])
                total[0] += wall - inner_wall
                total[1] += cpu - inner_cpu
                if stack:
                    stack[-1][0] += wall
                    stack[-1][1] += cpu

        return timed


def environ(path: str, body: bytes, signature: str) -> dict:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_X_FORWARDED_PROTO": "https",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "HTTP_DIGITALRIVER_SIGNATURE": signature, "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/dr_bench")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    env = migrated_database(args.database_url, CELERY_BROKER_URL=args.broker_url)
    os.environ.update(env)
    from bench.wsgi import application
    from core.jobs import gatherer

    timer = Timer()
    for module_name, path, name in PARTS:
        owner = __import__(module_name, fromlist=["_"])
        *outer, attribute = path.split(".")
        for step in outer:
            owner = getattr(owner, step)
        setattr(owner, attribute, timer.wrap(name, getattr(owner, attribute)))
    app = timer.wrap(REST, application)
    statuses: Counter[str] = Counter()

    def run(path: str, requests: list) -> None:
        for body, signature in requests:
            answer = app(environ(path, body, signature), lambda status, headers: statuses.update([status[:3]]))
            b"".join(answer)
            answer.close()
        gatherer.flush(30)

    run("/bench/noop/", build_requests(200))  # warm: the URLconf, the database and broker connections
    run("/webhooks/digitalriver/", build_requests(200))
    figures = {}
    for endpoint in ("/bench/noop/", "/webhooks/digitalriver/"):
        timer.totals.clear()
        statuses.clear()
        run(endpoint, build_requests(args.events))
        wall = sum(total[0] for total in timer.totals.values())
        cpu = sum(total[1] for total in timer.totals.values())
        parts = {
            name: {"wall_us": round(w / args.events * 1e6), "cpu_us": round(c / args.events * 1e6)}
            for name, (w, c) in sorted(timer.totals.items(), key=lambda item: -item[1][1])
        }
        figures[endpoint] = {
            "wall_us": round(wall / args.events * 1e6),
            "cpu_us": round(cpu / args.events * 1e6),
            "parts": parts,
            "statuses": dict(statuses),
        }
        print(
            f"\n{endpoint}: {wall / args.events * 1e6:.0f} µs wall, {cpu / args.events * 1e6:.0f} µs CPU per request,"
            f" answers {dict(statuses)}"
        )
        print(f"{'part':<62}{'wall µs':>9}{'wall %':>8}{'CPU µs':>8}{'CPU %':>7}")
        for name, part in parts.items():
            print(
                f"{name:<62}{part['wall_us']:>9}{part['wall_us'] / figures[endpoint]['wall_us'] * 100:>7.1f}%"
                f"{part['cpu_us']:>8}{part['cpu_us'] / figures[endpoint]['cpu_us'] * 100:>6.1f}%"
            )

    from celery import Celery

    Celery(broker=args.broker_url).control.purge()  # the queued processing jobs are not part of this run
    write_result("webhook_profile", {"events": args.events, **figures})


if __name__ == "__main__":
    main()

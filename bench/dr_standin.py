"""A DR stand-in that answers at once, for benchmarks of the pipeline behind it.

It answers the calls of the order flow with DR-shaped bodies (those of tests/fixtures/dr/):
``POST /fulfillment-orders`` and ``POST /fulfillments`` (201, the created object), their lists
(``GET /fulfillment-orders?upstreamIds=…``, ``GET /fulfillments?orderId=…``, what a sender reads after
an uncertain try) and, for anything else, DR's ``404 not_found``. Nothing is validated: the sandbox
(sandbox/) checks the wire format; this only has to be fast and keep count.

Every call is recorded as (wall time it arrived, method, path, key), the key being the DR order id
the call is about. The benchmark reads them, and the fulfillment orders it created, from two paths
no DR call uses:

    GET /_calls?since=N     the calls from the N-th on: {"calls": [[time, method, path, key], ...]}
    GET /_created           {"<DR order id>": <the fulfillment order created for it>, ...}

``dr_read`` reads them, ``call_figures`` sums the calls up.

    python bench/dr_standin.py --port 8765
"""

import argparse
import http.client
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

NOW_FORMAT = "%Y-%m-%dT%H:%M:%S.000Z"


class Ledger:
    """What DR was asked, and what it created; the handler threads share one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[float, str, str, str]] = []
        self.fulfillment_orders: dict[str, dict[str, Any]] = {}
        self.fulfillments: dict[str, list[dict[str, Any]]] = {}
        self.sequence = 700_000_000_000

    def next_id(self) -> str:
        with self.lock:
            self.sequence += 1
            return str(self.sequence)


LEDGER = Ledger()


def now() -> str:
    return time.strftime(NOW_FORMAT, time.gmtime())


def create_fulfillment_order(body: dict[str, Any]) -> dict[str, Any]:
    """fulfillment_order.json's shape: the request with DR's ids and counters."""
    items = [
        {
            "id": LEDGER.next_id(),
            "upstreamId": item.get("upstreamId"),
            "inventoryItemId": item.get("inventoryItemId"),
            "quantity": item.get("quantity", 0),
            "pending": item.get("quantity", 0),
            "backordered": 0,
            "shipped": 0,
            "cancelled": 0,
            "returned": 0,
            "state": "pending",
        }
        for item in body.get("items") or []
    ]
    created = {**body, "id": LEDGER.next_id(), "createdTime": now(), "state": "pending", "items": items}
    created["liveMode"] = False
    with LEDGER.lock:
        LEDGER.fulfillment_orders[str(body.get("upstreamId"))] = created
    return created


def create_fulfillment(body: dict[str, Any]) -> dict[str, Any]:
    """fulfillment.json's shape: the request with DR's id."""
    created = {**body, "id": f"ful_{uuid.uuid4()}", "createdTime": now(), "liveMode": False}
    created.setdefault("metadata", {})
    with LEDGER.lock:
        LEDGER.fulfillments.setdefault(str(body.get("orderId")), []).append(created)
    return created


def dr_read(port: int, path: str) -> Any:
    """What the stand-in on ``port`` answers to one of its own paths (/_calls, /_created)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    data = json.loads(conn.getresponse().read())
    conn.close()
    return data


def call_figures(calls: list[list]) -> dict[str, Any]:
    """What a benchmark reports of the calls of ``/_calls``: how many of each kind, and the
    busiest seconds (DR counts calls per key as they arrive)."""
    per_second = Counter(int(call[0]) for call in calls)
    kinds = Counter(f"{method} {path_pattern(path)}" for _, method, path, _ in calls)
    times = sorted(call[0] for call in calls)
    busiest_window, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        busiest_window = max(busiest_window, last - first + 1)
    return {
        "dr_calls": dict(kinds.most_common()),
        "busiest_second": max(per_second.values()),
        "busiest_sliding_second": busiest_window,  # the most within any one second, wherever it starts
        "top_seconds": [
            [time.strftime("%H:%M:%S", time.localtime(at)), count] for at, count in per_second.most_common(5)
        ],
        "calls_per_second": [per_second[at] for at in range(min(per_second), max(per_second) + 1)],
    }


def path_pattern(path: str) -> str:
    """/orders/240000000001 -> /orders/{id}: one row per kind of call, not per order."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(parts[:1] + ["{id}"] * (len(parts) > 1))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's pooled session expects
    # Headers and body go out in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK (40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        arrived = time.time()
        url = urlparse(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path == "/_calls":
            with LEDGER.lock:
                calls = LEDGER.calls[int(query.get("since", 0)) :]
            self.answer(200, {"calls": calls})
            return
        if url.path == "/_created":
            with LEDGER.lock:
                created = dict(LEDGER.fulfillment_orders)
            self.answer(200, created)
            return
        if url.path == "/fulfillment-orders":
            key = query.get("upstreamIds", "")
            self.record(arrived, key)
            with LEDGER.lock:
                found = [LEDGER.fulfillment_orders[key]] if key in LEDGER.fulfillment_orders else []
            self.answer(200, {"data": found})
        elif url.path == "/fulfillments":
            key = query.get("orderId", "")
            self.record(arrived, key)
            with LEDGER.lock:
                found = list(LEDGER.fulfillments.get(key, []))
            self.answer(200, {"hasMore": False, "data": found})
        else:
            self.record(arrived, url.path.rsplit("/", 1)[-1])
            self.not_found(url.path)

    def do_POST(self) -> None:
        arrived = time.time()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        path = urlparse(self.path).path
        if path == "/fulfillment-orders":
            self.record(arrived, str(body.get("upstreamId")))
            self.answer(201, create_fulfillment_order(body))
        elif path == "/fulfillments":
            self.record(arrived, str(body.get("orderId")))
            self.answer(201, create_fulfillment(body))
        else:
            self.record(arrived, "")
            self.not_found(path)

    def record(self, arrived: float, key: str) -> None:
        with LEDGER.lock:
            LEDGER.calls.append((arrived, self.command, urlparse(self.path).path, key))

    def not_found(self, path: str) -> None:
        error = {"code": "not_found", "parameter": "id", "message": f"Resource '{path}' not found."}
        self.answer(404, {"type": "not_found", "errors": [error]})

    def answer(self, status: int, data: Any) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-dr-requestid", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a line per call would cost more than the answer."""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Every sender (Celery children of several workers) connects at once when a burst starts; the
    # default backlog of 5 would drop some SYNs and cost them a 1 s retransmit.
    request_queue_size = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Server(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()

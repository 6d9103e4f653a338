"""The DR client's own counters, for Prometheus (``/metrics``, served by ``operations.metrics``).

They count in this process only: each web or worker process has its own, and a scrape sees the
process that answered it. The backlogs, which every process shares, are read from the database
at scrape time instead (``operations.metrics``).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

API_CALLS = Counter(
    "dr_api_calls",
    "Calls made to DR by this process, by method and HTTP status ('none' when no answer came).",
    ["method", "status"],
)
API_CALL_SECONDS = Histogram(
    "dr_api_call_duration_seconds",
    "How long DR took to answer (or to fail), by method.",
    ["method"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RATE_LIMITED = Counter("dr_api_rate_limited", "Answers of 429 Too Many Requests from DR in this process.")
RATE_LIMIT_WAITS = Counter(
    "dr_rate_limit_waits", "Times this process's rate limiter held a call back to stay under DR's limit."
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "dr_rate_limit_wait_seconds", "Seconds this process's calls spent waiting for the rate limiter."
)


def call_observe(method: str, status: int | None, seconds: float) -> None:
    """Count one call as the call log records it."""
    API_CALLS.labels(method=method, status=str(status) if status is not None else "none").inc()
    API_CALL_SECONDS.labels(method=method).observe(seconds)
    if status == 429:
        RATE_LIMITED.inc()


def rate_limit_wait_observe(seconds: float) -> None:
    RATE_LIMIT_WAITS.inc()
    RATE_LIMIT_WAIT_SECONDS.inc(seconds)

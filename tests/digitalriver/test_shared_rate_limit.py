"""The DR rate limit shared by the whole deployment through Redis: one bucket per key, one pause.

Skipped when no Redis answers at ``TEST_REDIS_URL`` (default redis://127.0.0.1:6379/14).
"""

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import responses

from digitalriver import errors, ratelimit
from digitalriver.client import DigitalRiverClient
from digitalriver.ratelimit import RateLimiter, SharedRateLimiter, key_prefix, make_limiter

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
ROOT = Path(__file__).resolve().parents[2]


def _redis_or_none() -> redis.Redis | None:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        return None
    return client


_REDIS = _redis_or_none()
needs_redis = pytest.mark.skipif(_REDIS is None, reason=f"needs a Redis at {REDIS_URL} (set TEST_REDIS_URL)")


@pytest.fixture
def secret_key():
    """A key of its own per test, so tests (and parallel runs) never share a bucket; cleaned up after."""
    key = f"sk_test_{uuid.uuid4().hex}"
    yield key
    if _REDIS is not None:
        _REDIS.delete(*(f"{key_prefix(key)}:{name}" for name in ("bucket", "recent", "paused")))


class SharedClock:
    """Redis's clock stood in for by a number, and sleeps that move it (the shared limiter's tests)."""

    def __init__(self, start: float = 1_000_000.0):
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def shared(secret_key, clock: SharedClock, rate: float = 10, **options) -> SharedRateLimiter:
    assert _REDIS is not None
    return SharedRateLimiter(
        rate, redis_client=_REDIS, secret_key=secret_key, now=clock.time, sleep=clock.sleep, **options
    )


def test_the_redis_keys_name_a_hash_of_the_secret_key_never_the_key():
    prefix = key_prefix("sk_live_very_secret")
    assert "very_secret" not in prefix and "sk_live" not in prefix
    assert prefix == key_prefix("sk_live_very_secret") != key_prefix("sk_live_another")


def test_without_a_redis_broker_each_process_keeps_its_own_bucket():
    assert isinstance(make_limiter(25, secret_key="sk", broker_url=""), RateLimiter)
    assert isinstance(make_limiter(25, secret_key="sk", broker_url="amqp://guest@localhost//"), RateLimiter)
    assert isinstance(make_limiter(25, secret_key="sk", broker_url="redis://127.0.0.1:1/0"), SharedRateLimiter)


# --- the Lua bucket, on a clock the test moves -------------------------------------------------------


@needs_redis
def test_the_bucket_lets_a_small_burst_through_then_spaces_calls(secret_key):
    clock = SharedClock()
    limiter = shared(secret_key, clock, rate=10)

    assert [limiter.try_take() for _ in range(2)] == [0.0, 0.0]  # capacity: a fifth of a second's worth
    assert limiter.try_take() == pytest.approx(0.1, abs=1e-4)  # the next token, a tenth of a second away
    clock.now += 0.1
    assert limiter.try_take() == 0.0


@needs_redis
def test_two_limiters_on_one_key_share_one_bucket_and_every_second_stays_under_the_rate(secret_key):
    clock = SharedClock()
    first, second = shared(secret_key, clock, rate=10), shared(secret_key, clock, rate=10)
    times = []
    for index in range(40):
        (first if index % 2 else second).acquire()
        times.append(clock.now)

    most = max(sum(1 for other in times if 0 <= other - start < 1.0) for start in times)
    assert most <= 10
    assert times[-1] - times[0] <= 4.3  # 40 calls at 10/s: throttled to the rate, not below it


@needs_redis
def test_another_key_has_a_bucket_of_its_own(secret_key):
    clock = SharedClock()
    limiter = shared(secret_key, clock, rate=1)
    other = shared(f"{secret_key}_other", clock, rate=1)
    try:
        assert limiter.try_take() == 0.0
        assert limiter.try_take() > 0
        assert other.try_take() == 0.0
    finally:
        _REDIS.delete(*(f"{key_prefix(secret_key + '_other')}:{name}" for name in ("bucket", "recent", "paused")))


@needs_redis
def test_a_retry_after_seen_by_one_limiter_pauses_the_other(secret_key):
    clock = SharedClock()
    first, second = shared(secret_key, clock), shared(secret_key, clock)

    first.pause(2.5)

    assert second.try_take() == pytest.approx(2.5, abs=1e-3)
    first.pause(1.0)  # a shorter pause does not cut the longer one short
    assert second.try_take() == pytest.approx(2.5, abs=1e-3)
    second.acquire()
    assert clock.now >= 1_000_002.5 and sum(clock.sleeps) == pytest.approx(2.5, abs=1e-3)


@needs_redis
@pytest.mark.django_db
def test_a_429_pauses_every_client_on_the_key(secret_key):
    clock = SharedClock()
    first = DigitalRiverClient(
        base_url="https://dr.example", secret_key=secret_key, limiter=shared(secret_key, clock), max_retries=0
    )
    second_limiter = shared(secret_key, clock)
    with responses.RequestsMock() as dr:
        dr.get("https://dr.example/orders/1", status=429, headers={"Retry-After": "7"}, json={"type": "rate_limit"})
        with pytest.raises(errors.RateLimited):
            first.get("/orders/1")

    assert second_limiter.try_take() == pytest.approx(7.0, abs=1e-2)


# --- real processes, real time -------------------------------------------------------------------------

TAKER = """
import json, os, sys, time
import django
django.setup()
import redis
from digitalriver.ratelimit import SharedRateLimiter
client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
limiter = SharedRateLimiter(float(sys.argv[1]), redis_client=client, secret_key=sys.argv[2])
print("ready", flush=True)
start, end = map(float, sys.stdin.readline().split())
while time.time() < start:
    time.sleep(0.005)
times = []
while True:
    limiter.acquire()
    now = time.time()
    if now >= end:
        break
    times.append(now)
print(json.dumps(times))
"""


@needs_redis
@pytest.mark.slow
def test_two_processes_share_one_bucket(secret_key):
    rate, seconds = 20, 2.0
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "TEST_REDIS_URL": REDIS_URL}
    env.pop("CELERY_BROKER_URL", None)
    args = [sys.executable, "-c", TAKER, str(rate), secret_key]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
    takers = [subprocess.Popen(args, cwd=ROOT, env=env, **pipes) for _ in range(2)]
    # Both have set Django up (seconds on a busy machine) before either is given the start time.
    assert [taker.stdout.readline().strip() for taker in takers] == ["ready", "ready"]
    start = time.time() + 0.5
    for taker in takers:
        taker.stdin.write(f"{start} {start + seconds}\n")
        taker.stdin.flush()
    outputs = [taker.communicate(timeout=30)[0] for taker in takers]
    assert all(taker.returncode == 0 for taker in takers)
    each = [json.loads(output) for output in outputs]
    times = sorted(each[0] + each[1])

    assert all(each), "both processes got tokens"
    most = max(sum(1 for other in times if 0 <= other - begin < 1.0) for begin in times)
    assert most <= rate
    assert len(times) >= 0.8 * rate * seconds


# --- Redis away ----------------------------------------------------------------------------------------


class BrokenRedis:
    """A Redis client whose every script fails the way a dropped connection does."""

    def __init__(self):
        self.calls = 0

    def register_script(self, script):
        def run(**_):
            self.calls += 1
            raise redis.ConnectionError("Connection refused")

        return run


def test_when_redis_does_not_answer_calls_go_ahead_under_the_process_bucket_with_one_warning(caplog):
    broken = BrokenRedis()
    limiter = SharedRateLimiter(1000, redis_client=broken, secret_key="sk_test_x")

    with caplog.at_level(logging.WARNING, logger="digitalriver.ratelimit"):
        for _ in range(5):
            limiter.acquire()
        limiter.pause(0.0)

    assert broken.calls == 1  # Redis is left alone for a while after failing, not asked on every call
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Redis" in warnings[0].getMessage()


def test_redis_is_tried_again_after_a_while_and_the_warning_is_not_repeated(caplog, monkeypatch):
    broken = BrokenRedis()
    now = [100.0]
    limiter = SharedRateLimiter(1000, redis_client=broken, secret_key="sk_test_x", clock=lambda: now[0])
    limiter.fallback = RateLimiter(1000, clock=lambda: now[0], sleep=lambda s: None)
    with caplog.at_level(logging.WARNING, logger="digitalriver.ratelimit"):
        limiter.acquire()
        now[0] += ratelimit.REDIS_RETRY_SECONDS + 1
        limiter.acquire()

    assert broken.calls == 2
    assert len([record for record in caplog.records if record.levelno == logging.WARNING]) == 1


def test_an_unreachable_redis_url_does_not_fail_the_call(caplog):
    limiter = make_limiter(1000, secret_key="sk_test_x", broker_url="redis://127.0.0.1:1/14")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="digitalriver.ratelimit"):
        limiter.acquire()
    assert time.monotonic() - started < 2
    assert any("Redis" in record.getMessage() for record in caplog.records)


def test_the_process_bucket_honours_a_pause_within_the_process():
    now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(100, clock=lambda: now[0], sleep=sleep)
    limiter.pause(3.0)
    limiter.acquire()
    assert now[0] >= 3.0
    limiter.pause(1.0)
    limiter.pause(0.5)  # the later end is kept
    limiter.acquire()
    assert now[0] >= 4.0

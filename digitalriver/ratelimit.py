"""The ceiling on calls to DR: shared by the whole deployment through Redis, or per process.

DR limits calls per secret key, whichever process makes them. With a Redis broker
(``CELERY_BROKER_URL=redis://…``) every process takes its tokens from one bucket per key kept in
that Redis, refilled and taken by one Lua script (atomic, on Redis's clock); a ``Retry-After`` from
DR is written there too and pauses every sender. Without Redis (no broker, RabbitMQ, or Redis not
answering) each process keeps its own bucket, which also honours a ``Retry-After`` within the process.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from . import metrics

logger = logging.getLogger(__name__)

#: How long the shared limiter leaves Redis alone after it failed to answer (the process's own
#: bucket meanwhile), so that a Redis outage costs one short timeout now and then, not one per call.
REDIS_RETRY_SECONDS = 10.0
#: Redis must answer within this, or the call goes ahead under the process's own bucket.
REDIS_TIMEOUT_SECONDS = 0.5


class Limiter(Protocol):
    rate: float

    def acquire(self) -> None: ...

    def pause(self, seconds: float) -> None: ...


def _check_rate(rate: float) -> None:
    if rate <= 0:
        raise ImproperlyConfigured("DR_RATE_LIMIT_PER_SECOND must be positive")


class RateLimiter:
    """At most ``rate`` calls in any one second, spread out rather than bunched: one process's own.

    A token bucket refilled at ``rate`` a second and holding a fifth of a second's worth smooths
    bursts. On its own it would let ``capacity + rate`` calls into one second (a full bucket, then
    the refill), so a log of the last ``rate`` start times also keeps every sliding second at or
    under ``rate``. The window is a little longer than a second because DR counts calls as they
    arrive, and arrival times jitter. ``pause`` holds every call of the process back (DR's
    ``Retry-After``).
    """

    WINDOW_SECONDS = 1.05
    _EPSILON = 1e-9
    _MIN_SLEEP = 1e-4

    def __init__(
        self, rate: float, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        _check_rate(rate)
        self.rate = rate
        self.capacity = max(1.0, rate / 5)
        self.per_second = max(1, math.floor(rate))
        self._tokens = self.capacity
        self._recent: collections.deque[float] = collections.deque(maxlen=self.per_second)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        """No call starts for ``seconds`` from now (a later pause already set is kept)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                wait = max(0.0, self._paused_until - now)
                if self._tokens < 1 - self._EPSILON:
                    wait = max(wait, (1 - self._tokens) / self.rate)
                if len(self._recent) == self.per_second and now - self._recent[0] < self.WINDOW_SECONDS:
                    wait = max(wait, self.WINDOW_SECONDS - (now - self._recent[0]))
                if wait <= 0:
                    self._tokens = max(0.0, self._tokens - 1)
                    self._recent.append(now)
                    return
            pause = max(wait, self._MIN_SLEEP)
            metrics.rate_limit_wait_observe(pause)
            self._sleep(pause)


# The same bucket and sliding second as RateLimiter, in Redis. KEYS: the bucket (a hash of tokens
# and the time they were counted), the start times of the last `per_second` calls (a list, newest
# first), and the time until which DR asked us to pause. ARGV: rate, capacity, per_second, window,
# and optionally "now" in seconds (tests); otherwise Redis's own clock, the one every process shares.
# Answers the microseconds to wait before asking again, 0 when a token was taken.
TAKE_SCRIPT = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local per_second, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local keep_ms = math.ceil((window + capacity / rate) * 1000) + 1000
local wait = 0
local paused = tonumber(redis.call('GET', KEYS[3]) or '0')
if paused > now then wait = paused - now end
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local updated = tonumber(redis.call('HGET', KEYS[1], 'updated') or now)
if now > updated then tokens = math.min(capacity, tokens + (now - updated) * rate) end
if tokens < 1 - 1e-9 then wait = math.max(wait, (1 - tokens) / rate) end
if redis.call('LLEN', KEYS[2]) >= per_second then
  local oldest = tonumber(redis.call('LINDEX', KEYS[2], per_second - 1))
  if now - oldest < window then wait = math.max(wait, window - (now - oldest)) end
end
if wait > 0 then return math.max(1, math.ceil(wait * 1000000)) end
redis.call('HSET', KEYS[1], 'tokens', tostring(math.max(0, tokens - 1)), 'updated', tostring(math.max(now, updated)))
redis.call('PEXPIRE', KEYS[1], keep_ms)
redis.call('LPUSH', KEYS[2], tostring(now))
redis.call('LTRIM', KEYS[2], 0, per_second - 1)
redis.call('PEXPIRE', KEYS[2], keep_ms)
return 0
"""

# KEYS: the pause key. ARGV: seconds to pause, optionally "now". Keeps the later of two pauses.
PAUSE_SCRIPT = """
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 0
"""


def key_prefix(secret_key: str) -> str:
    """The Redis keys' prefix for one DR key: a hash of it, never the key itself."""
    digest = hashlib.sha256(f"dr-rate-limit:{secret_key}".encode()).hexdigest()[:24]
    return f"dr:ratelimit:{{{digest}}}"


class SharedRateLimiter:
    """One bucket per DR key for every process that reaches the same Redis.

    If Redis fails to answer, the call goes ahead under ``fallback`` (the process's own limiter),
    a warning is logged once, and Redis is tried again after ``REDIS_RETRY_SECONDS``. A pause is
    recorded in both, so the process honours it even while Redis is away.
    """

    _MIN_SLEEP = 1e-3

    def __init__(
        self,
        rate: float,
        *,
        redis_client: Any,
        secret_key: str,
        fallback: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] | None = None,
    ) -> None:
        """``now``: the shared clock's time, for tests; by default the scripts read Redis's clock."""
        _check_rate(rate)
        self.rate = rate
        self.capacity = max(1.0, rate / 5)
        self.per_second = max(1, math.floor(rate))
        self.fallback = fallback or RateLimiter(rate, sleep=sleep)
        self.redis = redis_client
        prefix = key_prefix(secret_key)
        self.keys = (f"{prefix}:bucket", f"{prefix}:recent", f"{prefix}:paused")
        self._take = redis_client.register_script(TAKE_SCRIPT)
        self._pause = redis_client.register_script(PAUSE_SCRIPT)
        self._sleep = sleep
        self._clock = clock
        self._now = now
        self._redis_down_until: float | None = None
        self._lock = threading.Lock()

    @property
    def using_redis(self) -> bool:
        return self._redis_down_until is None or self._clock() >= self._redis_down_until

    def try_take(self) -> float:
        """Take a token if one is free: 0.0, else the seconds to wait. Raises Redis's errors."""
        args: list[float] = [self.rate, self.capacity, self.per_second, RateLimiter.WINDOW_SECONDS]
        if self._now is not None:
            args.append(self._now())
        return int(self._take(keys=list(self.keys), args=args)) / 1_000_000

    def acquire(self) -> None:
        while self.using_redis:
            try:
                wait = self.try_take()
            except Exception as exc:  # redis.RedisError, or a socket error it did not wrap
                self._redis_failed(exc)
                break
            self._redis_answered()
            if wait <= 0:
                return
            pause = max(wait, self._MIN_SLEEP)
            metrics.rate_limit_wait_observe(pause)
            self._sleep(pause)
        self.fallback.acquire()

    def pause(self, seconds: float) -> None:
        """Hold every sender back for ``seconds`` (DR's ``Retry-After``): in Redis and in this process."""
        self.fallback.pause(seconds)
        if not self.using_redis:
            return
        args: list[float] = [max(0.0, seconds)]
        if self._now is not None:
            args.append(self._now())
        try:
            self._pause(keys=[self.keys[2]], args=args)
        except Exception as exc:
            self._redis_failed(exc)

    def _redis_failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._redis_down_until is None
            self._redis_down_until = self._clock() + REDIS_RETRY_SECONDS
        if first:
            logger.warning(
                "the shared DR rate limit's Redis did not answer (%s: %s); each process limits its own calls "
                "until it answers again",
                type(exc).__name__,
                exc,
            )

    def _redis_answered(self) -> None:
        if self._redis_down_until is not None:
            with self._lock:
                self._redis_down_until = None
            logger.info("the shared DR rate limit's Redis answers again")


def make_limiter(rate: float, *, secret_key: str, broker_url: str) -> RateLimiter | SharedRateLimiter:
    """The deployment's limiter: shared through the broker's Redis when the broker is Redis."""
    if not broker_url.startswith(("redis://", "rediss://", "unix://")):
        return RateLimiter(rate)
    import redis

    client = redis.Redis.from_url(
        broker_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )
    return SharedRateLimiter(rate, redis_client=client, secret_key=secret_key)

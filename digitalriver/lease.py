"""Short leases kept alive while their holder works: a dead worker's claims come free within seconds.

A worker claims an outbox instruction or a webhook event for a short lease (15 s by default) and,
while it works (a slow call to DR, retries, a paused rate limit), a heartbeat thread renews the
lease every third of it. A worker that dies stops renewing, so its claims are free once the lease
runs out, not minutes later, and the next sweep takes them over. A renewal that finds the claim no
longer ours (its lease ran out and another worker took it) stops; the holder then must not record
its outcome over the new owner's, which the callers check under a row lock when they record.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType

from django.db import connections

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Calls ``renew`` every ``every`` seconds while the ``with`` block runs.

    ``renew`` answers whether the claim was still ours; the first False stops the renewals and
    sets ``lost``. A renewal that raises (the database hiccupped) is logged and tried again at the
    next beat. No renewal runs once the block has ended: leaving it waits for one in progress.

    One heartbeat thread per process schedules every keeper's renewals (``_Heartbeat``): a thread
    started and joined for each event and instruction was a few per cent of a worker's time in a
    burst, where almost no job lasts long enough to be renewed even once (issue 14).
    """

    def __init__(self, renew: Callable[[], bool], *, every: float, what: str) -> None:
        self._renew = renew
        self.every = max(0.01, every)
        self.what = what
        self.lost = False
        self.renewals = 0
        self._renewing = threading.Lock()  # held while renewing; leaving the block takes it too
        self._ended = False

    def __enter__(self) -> LeaseKeeper:
        _heartbeat.add(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._renewing:
            self._ended = True
        _heartbeat.remove(self)

    def beat(self) -> bool:
        """Renew once; False when the keeper has nothing more to renew (ended, or the claim lost)."""
        with self._renewing:
            if self._ended:
                return False
            try:
                still_ours = self._renew()
            except Exception:
                logger.exception("could not renew the lease of %s; trying again", self.what)
                return True
            if not still_ours:
                self.lost = True
                logger.warning("the lease of %s ran out and another worker took it over", self.what)
                return False
            self.renewals += 1
            return True


class _Heartbeat:
    """The process's one thread that starts each registered keeper's renewal when its beat is due.

    A renewal runs on a thread of its own, which ends with it: one that waits (a row lock, a slow
    connection) holds up no other keeper's, and renewals are rare (a job that lasts a third of its
    lease) where jobs are many. A keeper whose renewal is still running is not renewed again meanwhile.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """A fresh state: at start, and in a forked child, which must not renew its parent's leases
        (nor wait on a lock a parent's thread held when it forked)."""
        self._changed = threading.Condition()
        self._due: dict[LeaseKeeper, float] = {}  # keeper -> time.monotonic() of its next beat
        self._thread: threading.Thread | None = None

    def add(self, keeper: LeaseKeeper) -> None:
        with self._changed:
            self._due[keeper] = time.monotonic() + keeper.every
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease heartbeat", daemon=True)
                self._thread.start()
            self._changed.notify()

    def remove(self, keeper: LeaseKeeper) -> None:
        with self._changed:
            self._due.pop(keeper, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [keeper for keeper, at in self._due.items() if at <= now]
                if not due:
                    next_at = min(self._due.values(), default=math.inf)
                    self._changed.wait(None if next_at == math.inf else next_at - now)
                    continue
                for keeper in due:
                    self._due[keeper] = math.inf  # running: not due again until it is done
            for keeper in due:
                threading.Thread(target=self._renew, args=(keeper,), name=f"lease {keeper.what}", daemon=True).start()

    def _renew(self, keeper: LeaseKeeper) -> None:
        try:
            still_kept = keeper.beat()
        finally:
            connections.close_all()  # this thread's own connection, if the renewal opened one
        with self._changed:
            if keeper in self._due:
                if still_kept:
                    self._due[keeper] = time.monotonic() + keeper.every
                else:
                    del self._due[keeper]
            self._changed.notify()


_heartbeat = _Heartbeat()
os.register_at_fork(after_in_child=_heartbeat._reset)

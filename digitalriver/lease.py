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

    One heartbeat thread per process renews every keeper (``_Heartbeat``): a thread started and
    joined for each event and instruction was a few per cent of a worker's time in a burst, where
    almost no job lasts long enough to be renewed even once (issue 14).
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
    """The process's one thread that renews each registered keeper when its next beat is due."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[LeaseKeeper, float] = {}  # keeper -> time.monotonic() of its next beat
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, keeper: LeaseKeeper) -> None:
        with self._changed:
            self._due[keeper] = time.monotonic() + keeper.every
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # Started on first use in each process: a forked worker child has no thread of its parent's.
                self._pid = os.getpid()
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
                    self._changed.wait(min(self._due.values(), default=now + 60) - now)
                    continue
                for keeper in due:
                    self._due[keeper] = now + keeper.every
            for keeper in due:
                if not keeper.beat():
                    self.remove(keeper)
            # Renewals are rare (a job longer than a third of its lease): this thread keeps no
            # database connection between them, which would also outlive a test's database.
            connections.close_all()


_heartbeat = _Heartbeat()

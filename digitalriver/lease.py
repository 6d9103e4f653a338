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
import threading
from collections.abc import Callable
from types import TracebackType

from django.db import connections

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Calls ``renew`` every ``every`` seconds in a thread while the ``with`` block runs.

    ``renew`` answers whether the claim was still ours; the first False stops the heartbeat and
    sets ``lost``. A renewal that raises (the database hiccupped) is logged and tried again at the
    next beat. The thread's database connection is closed when it ends.
    """

    def __init__(self, renew: Callable[[], bool], *, every: float, what: str) -> None:
        self._renew = renew
        self.every = max(0.01, every)
        self.what = what
        self.lost = False
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {what}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    still_ours = self._renew()
                except Exception:
                    logger.exception("could not renew the lease of %s; trying again", self.what)
                    continue
                if not still_ours:
                    self.lost = True
                    logger.warning("the lease of %s ran out and another worker took it over", self.what)
                    return
                self.renewals += 1
        finally:
            connections.close_all()  # this thread's own connections, if it opened any

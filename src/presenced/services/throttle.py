"""Graph's throttling: each application may make so many requests in a tenant per window (docs/graph-api.md,
"Throttling").

Each process counts its own requests and admits or refuses them at once, from what it counted and what
every process had counted together at the last synchronisation; ``sync`` (every ``SYNC_INTERVAL``) adds
this process's new counts to the shared counters (the database, or Redis) and reads the totals back. So
one process alone holds the limit exactly, and several together hold it to within what they admit
between two synchronisations.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from presenced.errors import TooManyRequests
from presenced.services.loops import repeat
from presenced.services.ports import ThrottleCounts

log = logging.getLogger("presenced.throttle")

#: How often each process adds its counts to the shared ones, in seconds.
SYNC_INTERVAL = 0.25

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int
    seconds: int


class Throttle:
    """Admits a request of an application in a tenant, or refuses it with 429 and ``Retry-After``."""

    def __init__(self, limit: Limit, shared: ThrottleCounts, now: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._shared = shared
        self._now = now
        self._window = -1
        #: What every process had counted this window, at the last synchronisation.
        self._totals: dict[Key, int] = {}
        #: What this process admitted since.
        self._unsynced: dict[Key, int] = {}

    def admit(self, tenant_id: str, app_id: str) -> None:
        now = self._now()
        window = int(now // self.limit.seconds)
        if window != self._window:
            self._start(window)
        key = (tenant_id, app_id)
        unsynced = self._unsynced.get(key, 0)
        if self._totals.get(key, 0) + unsynced >= self.limit.requests:
            # A refused request is not counted: it did nothing, and its retry should pass once the window ends.
            retry_after = max(1, math.ceil((window + 1) * self.limit.seconds - now))
            raise TooManyRequests(
                f"Too many requests: this application may make {self.limit.requests} requests in "
                f"{self.limit.seconds} seconds in this tenant. Retry after {retry_after} seconds.",
                retry_after=retry_after,
            )
        self._unsynced[key] = unsynced + 1

    def _start(self, window: int) -> None:
        self._window = window
        self._totals = {}
        self._unsynced = {}

    async def sync(self) -> None:
        """Add this process's counts to the shared ones and take the totals of every key it has seen."""
        window = self._window
        if window < 0:
            return
        if int(self._now() // self.limit.seconds) != window:
            # The window ended with no request since: its keys need no more syncing (an idle process
            # stops writing to the shared counters within one window).
            self._start(int(self._now() // self.limit.seconds))
            return
        sent = dict(self._unsynced)
        deltas = {key: sent.get(key, 0) for key in self._totals.keys() | sent.keys()}
        if not deltas:
            return
        totals = await self._shared.add(window, self.limit.seconds, deltas)
        if window != self._window:  # a new window began meanwhile: these counts were of the last one
            return
        for key, count in sent.items():
            left = self._unsynced.get(key, 0) - count
            if left > 0:
                self._unsynced[key] = left
            else:
                self._unsynced.pop(key, None)
        self._totals.update(totals)

    async def run_forever(self) -> NoReturn:
        await repeat(self.sync, SYNC_INTERVAL, "throttle counts", log)

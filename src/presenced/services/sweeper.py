"""Time-driven changes: fades, expiries and out-of-office windows, made durable.

The sweeper takes users whose next transition is due and stores it through the
same path as a write: ``services.writes.due_changes`` (the first step of every
``change_facts``: what the facts decided, when they were written, would happen
by itself) through the same ``PresenceWriter``, so a fade gets its sequence
number, change-log entry and notifications exactly as a write would. The writer
stores them in transactions of a bounded size, taking turns with the
interactive writes: a write waits for at most one of them, and a crash loses
nothing, because the due users stay due until their transaction commits.
"""

from __future__ import annotations

import logging
import time

from presenced.logs import with_fields
from presenced.services.loops import repeat
from presenced.services.ports import PresenceWriter
from presenced.services.writes import due_changes

log = logging.getLogger("presenced.sweeper")

#: Due users listed at a time. The writer stores them in transactions of runs of consecutive
#: user ids, so the rows one changes lie together, and no page is written again by the next.
SCAN = 50_000
#: How often the sweeper looks for due users: changes land within this of their due time.
INTERVAL = 0.5


class Sweeper:
    def __init__(self, writer: PresenceWriter, interval: float = INTERVAL, scan: int = SCAN) -> None:
        self._writer = writer
        self._interval = interval
        self._scan = scan
        #: When ``run_forever`` began (``time.monotonic()``): None while this process runs no sweeper loop.
        self.started: float | None = None
        #: When the sweeper last listed the due users and stored their changes (``time.monotonic()``), each
        #: transaction of a long sweep counting: the readiness check's sign that it works (docs/deployment.md,
        #: "Health checks"). None until the first.
        self.last_sweep: float | None = None

    async def run_due(self, wait: bool = False) -> int:
        """Store every transition due now; the number of changes logged.

        Users another transaction holds are skipped (their writer stores their
        transitions anyway, or the next sweep does), unless ``wait``: then every
        user due when it was called is stored when it returns.
        """
        logged = 0
        while True:
            due = await self._writer.due(self._scan)
            taken, changes = await self._writer.sweep(due_changes, due, wait)
            logged += changes
            self.last_sweep = time.monotonic()
            # A full list may have left others out. Otherwise all that was due is stored, but for
            # users others held (skipped) and users that stopped being due meanwhile.
            if len(due) < self._scan or taken == 0:
                return logged

    async def run_forever(self) -> None:
        """Sweep every ``interval`` seconds until cancelled; errors are logged, not fatal."""
        self.started = time.monotonic()
        await repeat(self._round, self._interval, "sweep", log)

    async def _round(self) -> None:
        changes = await self.run_due()
        if changes:
            log.debug("sweep stored %d presence changes", changes, extra=with_fields(job="sweep", changes=changes))

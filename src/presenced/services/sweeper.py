"""Time-driven changes: fades, expiries and out-of-office windows, made durable.

The sweeper takes users whose next transition is due and stores it through the
same path as a write: ``services.writes.due_changes`` (the first step of every
``change_facts``: what the facts decided, when they were written, would happen
by itself) through the same ``PresenceWriter``, so a fade gets its sequence
number, change-log entry and notifications exactly as a write would. Each chunk
of due users is one transaction of its own, queued with the interactive writes:
a write waits for at most one chunk, and a crash loses nothing, because the due
users stay due until a chunk commits.
"""

from __future__ import annotations

import asyncio
import logging

from presenced.services.ports import PresenceWriter
from presenced.services.writes import due_changes

log = logging.getLogger("presenced.sweeper")

#: Due users stored per transaction: large enough to store an organisation's worth quickly,
#: small enough that a write queued behind a chunk waits milliseconds, not seconds.
CHUNK = 500
#: How often the sweeper looks for due users: changes land within this of their due time.
INTERVAL = 0.5


class Sweeper:
    def __init__(self, writer: PresenceWriter, interval: float = INTERVAL, chunk: int = CHUNK) -> None:
        self._writer = writer
        self._interval = interval
        self._chunk = chunk

    async def run_due(self, wait: bool = False) -> int:
        """Store every transition due now; the number of changes logged.

        Users another transaction holds are skipped (their writer stores their
        transitions anyway, or the next sweep does), unless ``wait``: then every
        user due when it was called is stored when it returns.
        """
        logged = 0
        while True:
            taken, changes = await self._writer.sweep(due_changes, self._chunk, wait)
            logged += changes
            # Skipping locked users, a short chunk means the rest are held by others; waiting,
            # a chunk can come back short because a user stopped being due while it waited.
            if taken == 0 or (not wait and taken < self._chunk):
                return logged

    async def run_forever(self) -> None:
        """Sweep every ``interval`` seconds until cancelled; errors are logged, not fatal."""
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed; retrying")
            await asyncio.sleep(self._interval)

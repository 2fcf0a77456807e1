"""Time-driven changes: fades, expiries and out-of-office windows, made durable.

The sweeper takes users whose next transition is due and stores it through
the same path as a write (``services.writes.change_facts`` with the facts
unchanged), so a fade gets its sequence number and change-log entry exactly as
a write would. Each batch is one transaction: a crash loses nothing, because
the due users stay due until a batch commits.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from presenced.clock import Clock
from presenced.domain.model import PresenceFacts
from presenced.services.ports import UnitOfWork
from presenced.services.writes import change_facts

log = logging.getLogger("presenced.sweeper")

BATCH = 200
#: How often the sweeper looks for due users: changes land within this of their due time.
INTERVAL = 0.5


def _unchanged(facts: PresenceFacts, now: datetime) -> PresenceFacts:
    return facts


class Sweeper:
    def __init__(self, uow: UnitOfWork, clock: Clock, interval: float = INTERVAL) -> None:
        self._uow = uow
        self._clock = clock
        self._interval = interval

    async def run_due(self, wait: bool = False) -> int:
        """Store every transition due now; the number of changes logged.

        Users another transaction holds are skipped (their writer stores their
        transitions anyway, or the next sweep does), unless ``wait``.
        """
        logged = 0
        while True:
            now = await self._clock.now()
            async with self._uow.begin() as tx:
                due = await tx.lock_due(now, BATCH, skip_locked=not wait)
                for user in due:
                    _, changes = await change_facts(tx, user, _unchanged, self._clock, "timer")
                    logged += len(changes)
            if len(due) < BATCH:
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

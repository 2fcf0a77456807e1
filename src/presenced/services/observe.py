"""The gauges of a metrics scrape (docs/deployment.md, "Metrics"): backlogs, measured when asked.

``/metrics`` calls ``Observer.refresh`` before it renders: the outbox's and the change log's
backlogs, the sweeper's lag and the database pool come from one cheap query each
(``ports.Measures``); the live streams are this process's count. A scrape while the database
is unreachable keeps the last values and still shows the counters.

The processes of ``serve --processes N`` share their metrics (``presenced.metrics``): each also
measures every ``MEASURE_INTERVAL`` seconds, so that a scrape another process answers shows its
live streams, pool and process metrics as of a few seconds ago at most.
"""

from __future__ import annotations

import logging

from presenced.clock import Clock
from presenced.logs import warn_occasionally
from presenced.metrics import (
    CHANGE_LOG_UNREAD,
    DB_POOL,
    LIVE_STREAMS,
    MULTIPROCESS,
    OUTBOX_OLDEST,
    OUTBOX_PENDING,
    SWEEPER_LAG,
    measure_process,
)
from presenced.services.feed import ChangeFeed
from presenced.services.loops import repeat
from presenced.services.ports import Measures

log = logging.getLogger("presenced.metrics")

#: Seconds between a process's own measures when processes share their metrics.
MEASURE_INTERVAL = 5.0


class Observer:
    def __init__(self, measures: Measures, clock: Clock, feed: ChangeFeed) -> None:
        self._measures = measures
        #: Presence time (the manual clock on an emulator): the time transitions and notifications are written in.
        self._clock = clock
        self._feed = feed
        self._checked_out = DB_POOL.labels("checked_out")
        self._idle = DB_POOL.labels("idle")

    async def refresh(self) -> None:
        """Set the gauges to what is waiting now."""
        LIVE_STREAMS.set(self._feed.listening)
        measure_process()
        try:
            backlogs = await self._measures.backlogs()
            now = await self._clock.now()
        except Exception as error:
            warn_occasionally(log, "scrape", f"cannot measure the backlogs for /metrics: {error!r}")
            return
        OUTBOX_PENDING.set(backlogs.outbox_pending)
        oldest = backlogs.outbox_oldest
        OUTBOX_OLDEST.set(0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0))
        CHANGE_LOG_UNREAD.set(self._feed.unread(backlogs.latest_change_id))
        due = backlogs.next_transition
        SWEEPER_LAG.set(0.0 if due is None else max((now - due).total_seconds(), 0.0))
        if backlogs.pool_checked_out is not None:
            self._checked_out.set(backlogs.pool_checked_out)
        if backlogs.pool_idle is not None:
            self._idle.set(backlogs.pool_idle)

    async def run_forever(self) -> None:
        """Measure every ``MEASURE_INTERVAL`` seconds when processes share their metrics; else return at once."""
        if MULTIPROCESS:
            await repeat(self.refresh, MEASURE_INTERVAL, "measuring for /metrics", log)
        return None

"""The change feed: every entry once, out-of-order commits caught, slow listeners cut off."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from presenced.domain.model import OFFLINE
from presenced.domain.sequence import PresenceState
from presenced.services import feed as feed_module
from presenced.services.entities import LoggedChange
from presenced.services.feed import ChangeFeed

TENANT = "00000000-0000-0000-0000-000000000001"
ANNA, BEN = "00000000-0000-0000-0000-0000000000a1", "00000000-0000-0000-0000-0000000000b1"


class MemoryChangeLog:
    """An in-memory change log: rows become visible when 'committed', in any order."""

    def __init__(self) -> None:
        self.rows: list[LoggedChange] = []

    def commit(self, change_id: int, user_id: str) -> None:
        state = PresenceState(OFFLINE, change_id, datetime(2026, 1, 1, tzinfo=UTC), None)
        self.rows.append(LoggedChange(change_id, TENANT, user_id, state))

    async def latest_change_id(self) -> int:
        return max((r.id for r in self.rows), default=0)

    async def changes_after(self, after_id: int, limit: int) -> list[LoggedChange]:
        return sorted((r for r in self.rows if r.id > after_id), key=lambda r: r.id)[:limit]

    async def changes_since(
        self, tenant_id: str, user_ids: Sequence[str], sequence: int, limit: int
    ) -> list[LoggedChange]:
        return []


def _drain(queue: asyncio.Queue[LoggedChange]) -> list[int]:
    found = []
    while not queue.empty():
        found.append(queue.get_nowait().id)
    return found


async def test_each_entry_reaches_its_users_listeners_once() -> None:
    """A listener gets its users' entries, each once, however often the log is read."""
    log = MemoryChangeLog()
    log.commit(1, ANNA)
    feed = ChangeFeed(log, interval=3600)
    async with feed.listen(TENANT, [ANNA]) as listener:
        log.commit(2, ANNA)
        log.commit(3, BEN)
        await feed.poll()
        await feed.poll()
        assert _drain(listener.queue) == [2]


async def test_an_entry_committed_after_a_later_one_is_not_missed() -> None:
    """An id that becomes visible after a higher one was passed on still reaches the listener."""
    log = MemoryChangeLog()
    feed = ChangeFeed(log, interval=3600)
    async with feed.listen(TENANT, [ANNA]) as listener:
        log.commit(5, ANNA)
        await feed.poll()
        log.commit(4, ANNA)  # its transaction committed later
        await feed.poll()
        assert _drain(listener.queue) == [5, 4]


async def test_a_listener_that_falls_behind_is_cut_off_alone() -> None:
    """A listener whose queue is full is marked overflowed; another listener keeps receiving."""
    log = MemoryChangeLog()
    feed = ChangeFeed(log, interval=3600)
    async with feed.listen(TENANT, [ANNA]) as slow, feed.listen(TENANT, [ANNA]) as fast:
        for n in range(1, feed_module.QUEUE_SIZE + 2):
            log.commit(n, ANNA)
            await feed.poll()
            if n % 100 == 0:
                _drain(fast.queue)
        assert slow.overflowed.is_set()
        assert not fast.overflowed.is_set()

"""The change feed: every entry once, out-of-order commits caught, one memo per entry; listeners ended when
their credential expires, their session is signed out, or the process shuts down; keep-alives spread."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from presenced.domain.model import OFFLINE
from presenced.domain.sequence import PresenceState
from presenced.services import feed as feed_module
from presenced.services.entities import LoggedChange
from presenced.services.feed import ChangeFeed, Ending

TENANT = "00000000-0000-0000-0000-000000000001"
ANNA, BEN = "00000000-0000-0000-0000-0000000000a1", "00000000-0000-0000-0000-0000000000b1"
NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


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


class Recorder:
    """A listener that records what the feed hands it."""

    def __init__(
        self, user_ids: tuple[str, ...] = (ANNA,), expires: datetime | None = None, session: str | None = None
    ) -> None:
        self.tenant_id = TENANT
        self.user_ids = user_ids
        self.expires = expires
        self.session = session
        self.changes: list[int] = []
        self.memos: list[dict[Any, Any]] = []
        self.keep_alives = 0
        self.ended: Ending | None = None

    def push(self, change: LoggedChange, memo: dict[Any, Any]) -> None:
        self.changes.append(change.id)
        self.memos.append(memo)

    def keep_alive(self) -> None:
        self.keep_alives += 1

    def end(self, why: Ending) -> None:
        self.ended = why


class Sessions:
    """The live sessions, as the sign-in side would answer."""

    def __init__(self, *live: str) -> None:
        self.live = set(live)

    async def live_sessions(self, keys: Collection[str]) -> set[str]:
        return self.live & set(keys)


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def __call__(self) -> datetime:
        return self.at


async def test_each_entry_reaches_its_users_listeners_once() -> None:
    """A listener gets its users' entries, each once, however often the log is read."""
    log = MemoryChangeLog()
    log.commit(1, ANNA)
    feed = ChangeFeed(log, interval=3600)
    async with feed.listen(Recorder()) as listener:
        log.commit(2, ANNA)
        log.commit(3, BEN)
        await feed.poll()
        await feed.poll()
        assert listener.changes == [2]


async def test_an_entry_committed_after_a_later_one_is_not_missed() -> None:
    """An id that becomes visible after a higher one was passed on still reaches the listener."""
    log = MemoryChangeLog()
    feed = ChangeFeed(log, interval=3600)
    async with feed.listen(Recorder()) as listener:
        log.commit(5, ANNA)
        await feed.poll()
        log.commit(4, ANNA)  # its transaction committed later
        await feed.poll()
        assert listener.changes == [5, 4]


async def test_every_listener_of_an_entry_shares_one_memo() -> None:
    """What listeners derive from an entry (its encoding) is made once: they are handed the same memo."""
    log = MemoryChangeLog()
    feed = ChangeFeed(log, interval=3600)
    async with feed.listen(Recorder()) as first, feed.listen(Recorder((BEN, ANNA))) as second:
        log.commit(1, ANNA)
        log.commit(2, ANNA)
        await feed.poll()
        assert first.changes == second.changes == [1, 2]
        assert first.memos[0] is second.memos[0]
        assert first.memos[1] is second.memos[1]
        assert first.memos[0] is not first.memos[1]


async def test_a_detached_listener_gets_nothing_and_the_last_one_stops_the_poller() -> None:
    log = MemoryChangeLog()
    feed = ChangeFeed(log, interval=3600)
    gone, staying = Recorder(), Recorder()
    await feed.attach(gone)
    await feed.attach(staying)
    feed.detach(gone)
    feed.detach(gone)  # twice changes nothing
    assert feed.listening == 1
    log.commit(1, ANNA)
    await feed.poll()
    assert (gone.changes, staying.changes) == ([], [1])
    feed.detach(staying)
    await asyncio.sleep(0)
    assert feed.listening == 0
    assert feed.unread(10) == 0  # no one listens: nothing is read


async def test_shutdown_ends_every_listener_and_any_that_comes_after() -> None:
    feed = ChangeFeed(MemoryChangeLog(), interval=3600)
    first, second = Recorder(), Recorder((BEN,))
    await feed.attach(first)
    await feed.attach(second)
    feed.close()
    assert (first.ended, second.ended) == (Ending.SHUTDOWN, Ending.SHUTDOWN)
    assert feed.listening == 0
    late = Recorder()
    await feed.attach(late)
    assert late.ended is Ending.SHUTDOWN
    assert feed.listening == 0


async def test_a_listener_ends_when_its_token_or_session_expires() -> None:
    clock = Clock()
    feed = ChangeFeed(MemoryChangeLog(), interval=3600, now=clock, sessions=Sessions("s1"))
    token = Recorder(expires=NOW + timedelta(seconds=30))
    session = Recorder(expires=NOW + timedelta(seconds=60), session="s1")
    forever = Recorder()
    for listener in (token, session, forever):
        await feed.attach(listener)
    await feed.upkeep()
    assert (token.ended, session.ended) == (None, None)
    clock.at = NOW + timedelta(seconds=30)
    await feed.upkeep()
    assert (token.ended, session.ended) == (Ending.TOKEN_EXPIRED, None)
    clock.at = NOW + timedelta(seconds=61)
    await feed.upkeep()
    assert (session.ended, forever.ended) == (Ending.SESSION_EXPIRED, None)
    assert feed.listening == 1


async def test_a_listener_whose_token_has_expired_already_ends_at_once() -> None:
    feed = ChangeFeed(MemoryChangeLog(), interval=3600, now=Clock())
    late = Recorder(expires=NOW - timedelta(seconds=1))
    await feed.attach(late)
    assert late.ended is Ending.TOKEN_EXPIRED
    assert feed.listening == 0


async def test_a_sign_out_ends_its_sessions_listeners_here_at_once_and_elsewhere_at_the_next_check() -> None:
    sessions = Sessions("here", "elsewhere", "kept")
    feed = ChangeFeed(MemoryChangeLog(), interval=3600, now=Clock(), sessions=sessions)
    here, elsewhere, kept, token = (
        Recorder(session="here"),
        Recorder(session="elsewhere"),
        Recorder(session="kept"),
        Recorder(),
    )
    for listener in (here, elsewhere, kept, token):
        await feed.attach(listener)
    feed.session_ended("here")  # signed out in this process
    assert here.ended is Ending.SIGNED_OUT
    sessions.live.discard("here")
    sessions.live.discard("elsewhere")  # signed out in another process
    await feed.check_sessions()
    assert (elsewhere.ended, kept.ended, token.ended) == (Ending.SIGNED_OUT, None, None)
    assert feed.listening == 2


async def test_keep_alives_come_every_so_often_and_never_to_all_at_once() -> None:
    feed = ChangeFeed(MemoryChangeLog(), interval=3600)
    listeners = [Recorder() for _ in range(300)]
    for listener in listeners:
        await feed.attach(listener)
    await feed.upkeep()
    once = sum(listener.keep_alives for listener in listeners)
    assert 0 < once < len(listeners)
    for _ in range(feed_module.KEEP_ALIVE - 1):
        await feed.upkeep()
    assert {listener.keep_alives for listener in listeners} == {1}
    for listener in listeners:
        feed.detach(listener)

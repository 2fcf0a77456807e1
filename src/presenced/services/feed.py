"""The live feed of presence changes: the change log, pushed to listeners, and how long each listens
(an extension: docs/notifications.md, "The live stream").

One poller per process reads new change-log entries (every 100 ms while anyone
listens) and hands each to the listeners watching that user. The database is the
record, so every process sees every change, whichever process wrote it.

Change-log entries are handed over, not queued: each listener writes what it makes of an
entry at once (a live stream: to its connection), so a listener costs no task and no queue.
Every listener of one entry gets the same ``memo``, so what they derive from it (an encoding)
is made once for all of them.

Change-log ids are assigned when a row is written but become visible when its
transaction commits, and on PostgreSQL concurrent writers may commit out of id
order. The poller therefore rereads the last ``LOOKBACK`` ids each time and
passes on only the entries it has not passed on before.

A listener lives as long as the credential that opened it: the feed ends it when its token
or portal session expires, when its session is signed out (at once in this process, within
``SESSION_CHECK`` seconds in any other), and when the process shuts down. Once a second,
while anyone listens, the upkeep round ends what expired and asks a fifteenth of the
listeners to show they are alive (so each does every ``KEEP_ALIVE`` seconds, and never all at
once).

A follower (``follow``: the cache of single reads, ``services.presence_cache``) gets every new
entry, whoever it concerns, for as long as it follows; the poller runs meanwhile.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from presenced.services.entities import LoggedChange
from presenced.services.loops import repeat
from presenced.services.ports import ChangeLog

log = logging.getLogger("presenced.feed")

POLL_INTERVAL = 0.1
LOOKBACK = 500
BATCH = 1000
#: Seconds between two signs of life on an idle listener (a comment line on a stream).
KEEP_ALIVE = 15
#: Seconds between upkeep rounds: ends that fell due, and a share of the keep-alives.
UPKEEP_INTERVAL = 1.0
#: Seconds between two checks that the portal sessions of this process's listeners are still signed in.
SESSION_CHECK = 5.0


class Ending(enum.Enum):
    """Why the feed ends a listener (its ``reason`` on the wire)."""

    SHUTDOWN = "serverShutdown"
    TOKEN_EXPIRED = "tokenExpired"
    SESSION_EXPIRED = "sessionExpired"
    SIGNED_OUT = "signedOut"


class Listener(Protocol):
    """What the feed needs of a listener: whose changes it wants, until when, and where they go."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def user_ids(self) -> Collection[str]: ...
    @property
    def expires(self) -> datetime | None:
        """When the credential it was opened with runs out (real time); None: never."""
        ...

    @property
    def session(self) -> str | None:
        """The portal session (its stored key) it was opened with; None for a token."""
        ...

    def push(self, change: LoggedChange, memo: dict[Any, Any]) -> None:
        """One change of a watched user. ``memo`` is shared by every listener of this change."""
        ...

    def keep_alive(self) -> None:
        """Nothing happened for a while: show the other end it is still connected."""
        ...

    def end(self, why: Ending) -> None:
        """The feed has let it go (it gets nothing more): say why and close."""
        ...


class LiveSessions(Protocol):
    async def live_sessions(self, keys: Collection[str]) -> set[str]:
        """Which of these portal sessions (their stored keys) are still signed in."""
        ...


class ChangeFeed:
    def __init__(
        self,
        changes: ChangeLog,
        interval: float = POLL_INTERVAL,
        now: Callable[[], datetime] | None = None,
        sessions: LiveSessions | None = None,
    ) -> None:
        self._changes = changes
        self._interval = interval
        #: Real time, for the credentials' expiry; None: listeners never expire.
        self._now = now
        self._sessions_port = sessions
        self._listeners: dict[str, set[Listener]] = {}
        #: Every listener, in ``KEEP_ALIVE`` groups: the upkeep round asks one group a second.
        self._groups: list[set[Listener]] = [set() for _ in range(KEEP_ALIVE)]
        self._round = 0
        self._count = 0
        self._followers: list[Callable[[Sequence[LoggedChange]], None]] = []
        #: Listeners by the instant their credential expires, and those instants, soonest first.
        self._expiring: dict[datetime, set[Listener]] = {}
        self._deadlines: list[datetime] = []
        #: Listeners by the portal session they were opened with.
        self._sessions: dict[str, set[Listener]] = {}
        self._next_session_check = 0.0
        self._poller: asyncio.Task[None] | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self._cursor: int | None = None
        #: Entries up to here were written before anyone listened: not passed on.
        self._floor = 0
        self._seen: deque[int] = deque(maxlen=LOOKBACK * 4)
        self._seen_set: set[int] = set()
        self._wake = asyncio.Event()
        #: The process is shutting down: every listener has ended, and any new one ends at once.
        self._closed = False

    @property
    def listening(self) -> int:
        """How many listeners are attached (each live stream has one)."""
        return self._count

    def unread(self, latest_change_id: int) -> int:
        """How many change log entries up to ``latest_change_id`` the poller has not read (0 when no one listens)."""
        return 0 if self._cursor is None else max(latest_change_id - self._cursor, 0)

    def wake(self) -> None:
        """Something was committed: look now rather than at the next tick."""
        self._wake.set()

    def close(self) -> None:
        """The process is shutting down: end every listener (a stream tells its client to reconnect elsewhere)."""
        self._closed = True
        for group in self._groups:
            for listener in list(group):
                self._end(listener, Ending.SHUTDOWN)

    def session_ended(self, key: str) -> None:
        """A portal session was signed out in this process: end its listeners now."""
        for listener in list(self._sessions.get(key, ())):
            self._end(listener, Ending.SIGNED_OUT)

    # ---- attaching and detaching ----

    async def attach(self, listener: Listener) -> None:
        """Pass ``listener`` the changes of its users from now on, until it is detached or ended."""
        if self._cursor is None:
            latest = await self._changes.latest_change_id()
            if self._cursor is None:  # no other listener set it meanwhile
                self._cursor = self._floor = latest
        for user_id in listener.user_ids:
            self._listeners.setdefault(user_id, set()).add(listener)
        self._groups[_group(listener)].add(listener)
        self._count += 1
        if listener.expires is not None:
            watchers = self._expiring.get(listener.expires)
            if watchers is None:
                watchers = self._expiring[listener.expires] = set()
                heapq.heappush(self._deadlines, listener.expires)
            watchers.add(listener)
        if listener.session is not None:
            self._sessions.setdefault(listener.session, set()).add(listener)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever())
        if self._upkeep is None or self._upkeep.done():
            self._upkeep = asyncio.create_task(repeat(self.upkeep, UPKEEP_INTERVAL, "keeping live streams", log))
        if self._closed:
            self._end(listener, Ending.SHUTDOWN)
        elif listener.expires is not None and self._now is not None and listener.expires <= self._now():
            self._end(listener, _expiry(listener))

    def detach(self, listener: Listener) -> None:
        """Stop passing ``listener`` anything (nothing happens if it is not attached)."""
        group = self._groups[_group(listener)]
        if listener not in group:
            return
        group.discard(listener)
        for user_id in listener.user_ids:
            _discard(self._listeners, user_id, listener)
        if listener.expires is not None:
            _discard(self._expiring, listener.expires, listener)
            if len(self._deadlines) > 2 * len(self._expiring) + 64:  # forget the instants no one waits for
                self._deadlines = list(self._expiring)
                heapq.heapify(self._deadlines)
        if listener.session is not None:
            _discard(self._sessions, listener.session, listener)
        self._count -= 1
        if self._count == 0:
            # Between two steps of the loop's tasks, so that the poller is never stopped in the middle of a round
            # (a listener may be detached from within one).
            asyncio.get_running_loop().call_soon(self._stop_if_idle)

    @asynccontextmanager
    async def listen(self, listener: Listener) -> AsyncIterator[Listener]:
        """``listener`` attached while the block runs."""
        await self.attach(listener)
        try:
            yield listener
        finally:
            self.detach(listener)

    async def follow(self, changed: Callable[[Sequence[LoggedChange]], None]) -> None:
        """Hand every new entry to ``changed`` (in batches, as they are read) until cancelled."""
        if self._cursor is None:
            latest = await self._changes.latest_change_id()
            if self._cursor is None:  # no listener set it meanwhile
                self._cursor = self._floor = latest
        self._followers.append(changed)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever())
        try:
            await asyncio.Event().wait()
        finally:
            self._followers.remove(changed)
            self._stop_if_idle()

    def _end(self, listener: Listener, why: Ending) -> None:
        self.detach(listener)
        listener.end(why)

    def _stop_if_idle(self) -> None:
        if self._count:
            return
        if self._upkeep is not None:
            self._upkeep.cancel()
        self._upkeep = None
        self._deadlines.clear()
        if self._followers:  # the poller goes on for them
            return
        if self._poller is not None:
            self._poller.cancel()
        self._poller = None
        self._cursor = None
        self._seen.clear()
        self._seen_set.clear()

    # ---- the change log ----

    async def _poll_forever(self) -> None:
        await repeat(self.poll, self._interval, "reading the change log", log, self._wake)

    async def poll(self) -> None:
        """Pass on the entries written since the last look."""
        cursor = self._cursor or 0
        entries = await self._changes.changes_after(max(cursor - LOOKBACK, 0), BATCH + LOOKBACK)
        fresh: list[LoggedChange] = []
        for entry in entries:
            if entry.id <= self._floor or entry.id in self._seen_set:
                continue
            fresh.append(entry)
            if len(self._seen) == self._seen.maxlen:
                self._seen_set.discard(self._seen[0])
            self._seen.append(entry.id)
            self._seen_set.add(entry.id)
            self._cursor = max(self._cursor or 0, entry.id)
            watchers = self._listeners.get(entry.user_id)
            if not watchers:
                continue
            memo: dict[Any, Any] = {}
            # A copy: a listener that falls too far behind leaves while the others are handed the entry.
            for listener in list(watchers):
                if listener.tenant_id == entry.tenant_id:
                    listener.push(entry, memo)
        if fresh:
            for changed in self._followers:
                changed(fresh)

    # ---- how long listeners live ----

    async def upkeep(self) -> None:
        """End the listeners whose credential expired or whose session was signed out elsewhere; ask one group
        of listeners to show they are alive."""
        self._round += 1
        for listener in list(self._groups[self._round % KEEP_ALIVE]):
            listener.keep_alive()
        if self._now is not None:
            now = self._now()
            while self._deadlines and self._deadlines[0] <= now:
                for listener in list(self._expiring.pop(heapq.heappop(self._deadlines), ())):
                    self._end(listener, _expiry(listener))
        loop_time = asyncio.get_running_loop().time()
        if self._sessions and self._sessions_port is not None and loop_time >= self._next_session_check:
            self._next_session_check = loop_time + SESSION_CHECK
            await self.check_sessions()

    async def check_sessions(self) -> None:
        """End the listeners whose portal session is no longer signed in (signed out in another process)."""
        if self._sessions_port is None or not self._sessions:
            return
        keys = list(self._sessions)
        live = await self._sessions_port.live_sessions(keys)
        now = self._now() if self._now is not None else None
        for key in keys:
            if key in live:
                continue
            for listener in list(self._sessions.get(key, ())):
                expired = now is not None and listener.expires is not None and listener.expires <= now
                self._end(listener, Ending.SESSION_EXPIRED if expired else Ending.SIGNED_OUT)


def _group(listener: Listener) -> int:
    """The listener's keep-alive group: its hash, mixed (object hashes follow their addresses, which advance in
    steps of the object's size) so that the groups come out even."""
    return (hash(listener) * 2654435761 >> 16) % KEEP_ALIVE


def _expiry(listener: Listener) -> Ending:
    return Ending.SESSION_EXPIRED if listener.session is not None else Ending.TOKEN_EXPIRED


def _discard(index: dict[Any, set[Listener]], key: Any, listener: Listener) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(listener)
        if not members:
            del index[key]

"""The live feed of presence changes: the change log, pushed to listeners (an extension:
docs/notifications.md, "The live stream").

One poller per process reads new change-log entries (every 100 ms while anyone
listens) and hands each to the listeners watching that user. The database is the
record, so every process sees every change, whichever process wrote it.

Change-log ids are assigned when a row is written but become visible when its
transaction commits, and on PostgreSQL concurrent writers may commit out of id
order. The poller therefore rereads the last ``LOOKBACK`` ids each time and
passes on only the entries it has not passed on before.

A listener has a bounded queue: one that falls ``QUEUE_SIZE`` changes behind
is cut off (and told so) rather than slowing the others or growing without end.

A follower (``follow``: the cache of single reads, ``services.presence_cache``) gets every new
entry, whoever it concerns, for as long as it follows; the poller runs meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from presenced.services.entities import LoggedChange
from presenced.services.loops import repeat
from presenced.services.ports import ChangeLog

log = logging.getLogger("presenced.feed")

POLL_INTERVAL = 0.1
LOOKBACK = 500
QUEUE_SIZE = 1000
BATCH = 1000


@dataclass(eq=False)
class Listener:
    tenant_id: str
    user_ids: frozenset[str]
    queue: asyncio.Queue[LoggedChange] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    #: Set when the listener fell too far behind: it gets nothing more.
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)


class ChangeFeed:
    def __init__(self, changes: ChangeLog, interval: float = POLL_INTERVAL) -> None:
        self._changes = changes
        self._interval = interval
        self._listeners: dict[str, set[Listener]] = {}
        self._count = 0
        self._followers: list[Callable[[Sequence[LoggedChange]], None]] = []
        self._poller: asyncio.Task[None] | None = None
        self._cursor: int | None = None
        #: Entries up to here were written before anyone listened: not passed on.
        self._floor = 0
        self._seen: deque[int] = deque(maxlen=LOOKBACK * 4)
        self._seen_set: set[int] = set()
        self._wake = asyncio.Event()
        #: Set when the process is shutting down: every live stream ends, telling its client to reconnect.
        self.closing = asyncio.Event()

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
        """The process is shutting down: end every stream (each tells its client to reconnect elsewhere)."""
        self.closing.set()

    @asynccontextmanager
    async def listen(self, tenant_id: str, user_ids: Sequence[str]) -> AsyncIterator[Listener]:
        """Receive the changes of these users from now on, while the block runs."""
        listener = Listener(tenant_id, frozenset(user_ids))
        await self._start()
        for user_id in listener.user_ids:
            self._listeners.setdefault(user_id, set()).add(listener)
        self._count += 1
        try:
            yield listener
        finally:
            for user_id in listener.user_ids:
                watchers = self._listeners.get(user_id)
                if watchers is not None:
                    watchers.discard(listener)
                    if not watchers:
                        del self._listeners[user_id]
            self._count -= 1
            await self._stop_if_idle()

    async def follow(self, changed: Callable[[Sequence[LoggedChange]], None]) -> None:
        """Hand every new entry to ``changed`` (in batches, as they are read) until cancelled."""
        await self._start()
        self._followers.append(changed)
        try:
            await asyncio.Event().wait()
        finally:
            self._followers.remove(changed)
            await self._stop_if_idle()

    async def _start(self) -> None:
        if self._cursor is None:
            self._cursor = self._floor = await self._changes.latest_change_id()
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_forever())

    async def _stop_if_idle(self) -> None:
        if self._count or self._followers or self._poller is None:
            return
        self._poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._poller
        self._poller = None
        self._cursor = None
        self._seen.clear()
        self._seen_set.clear()

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
            for listener in self._listeners.get(entry.user_id, ()):
                if listener.tenant_id != entry.tenant_id or listener.overflowed.is_set():
                    continue
                try:
                    listener.queue.put_nowait(entry)
                except asyncio.QueueFull:
                    listener.overflowed.set()
        if fresh:
            for changed in self._followers:
                changed(fresh)

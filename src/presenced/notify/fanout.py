"""Fan-out: telling every process that something was committed, so that it looks at once.

The database is the record; fan-out only wakes readers up. In one process the
wake-up is a function call. With Redis, each commit also publishes a one-byte
message on a channel every presenced process subscribes to, so a change written
through one process is delivered by a worker in another and streamed by a
third without waiting for their next poll. A lost message costs only that wait:
every reader still polls, more slowly, as a safety net.

A commit that changed the directory (an app, a secret, a grant, ...) sends a word of its own: each
process forgets what it keeps of the directory (``store.directory_cache``) at once, instead of
within the second it takes to notice the directory's version moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from presenced.logs import warn_occasionally

log = logging.getLogger("presenced.fanout")

CHANNEL = "presenced:changes"
RECONNECT_SECONDS = 1.0
#: Seconds to connect to Redis, or to publish, before giving up on this wake-up.
REDIS_TIMEOUT = 2.0


#: What a wake-up message says: changes were logged, or notifications were queued too; or the directory changed.
CHANGES, NOTIFICATIONS, DIRECTORY = b"c", b"1", b"d"


class LocalFanout:
    """Wakes this process's readers."""

    def __init__(self) -> None:
        #: Readers of the change log: woken by every commit that logged a change.
        self.listeners: list[Callable[[], None]] = []
        #: Readers of the notification outbox: woken only by commits that queued notifications.
        self.outbox_listeners: list[Callable[[], None]] = []
        #: What keeps the directory: told of every commit that changed it.
        self.directory_listeners: list[Callable[[], None]] = []

    def changed(self, notifications: bool = True) -> None:
        """A commit logged changes and, if ``notifications``, queued notifications."""
        for listener in self.listeners:
            listener()
        if notifications:
            for listener in self.outbox_listeners:
                listener()

    def directory_changed(self) -> None:
        """A commit changed the directory."""
        for listener in self.directory_listeners:
            listener()

    async def run(self) -> None:
        """Nothing to receive from elsewhere."""
        await asyncio.Event().wait()

    async def close(self) -> None:
        return None


class RedisFanout(LocalFanout):
    """Wakes the readers of every process subscribed to the same Redis."""

    def __init__(self, url: str) -> None:
        super().__init__()
        from redis.asyncio import Redis

        # Bounded: a Redis that does not answer must not hold up a connection for long (a publish: below).
        self._redis = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT)
        self._publishing: asyncio.Task[None] | None = None
        #: What the publish on its way should be followed by (notifications stand for changes too).
        self._again: set[bytes] = set()

    def changed(self, notifications: bool = True) -> None:
        super().changed(notifications)
        self._send(NOTIFICATIONS if notifications else CHANGES)

    def directory_changed(self) -> None:
        super().directory_changed()
        self._send(DIRECTORY)

    def _send(self, message: bytes) -> None:
        # Coalesced: while one publish is on its way, later commits ask for one more of each kind, not one each.
        if self._publishing is not None and not self._publishing.done():
            self._again.add(message)
            return
        self._publishing = asyncio.get_running_loop().create_task(self._publish(message))

    async def _publish(self, message: bytes) -> None:
        while True:
            try:
                await asyncio.wait_for(self._redis.publish(CHANNEL, message), REDIS_TIMEOUT)
            except Exception as error:  # the readers' polling covers for a lost wake-up
                self._again.clear()
                warn_occasionally(log, "publish", "cannot publish to Redis (%s); polling covers", error)
                return
            if NOTIFICATIONS in self._again:
                self._again.discard(CHANGES)
            if not self._again:
                return
            message = self._again.pop()

    async def run(self) -> None:
        """Receive other processes' wake-ups until cancelled, reconnecting when Redis goes away."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        data = message.get("data")
                        if data == DIRECTORY:
                            super().directory_changed()
                        else:
                            # Anything but "changes only" wakes every reader (older processes send b"1").
                            super().changed(data != CHANGES)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("Redis subscription lost (%s); reconnecting", error)
                await asyncio.sleep(RECONNECT_SECONDS)

    async def ping(self) -> None:
        """Return once Redis answers a ping (the readiness check's; ``services.health``)."""
        await self._redis.ping()

    async def close(self) -> None:
        if self._publishing is not None:
            with contextlib.suppress(Exception):
                await self._publishing
        await self._redis.aclose()

"""Fan-out: telling every process that something was committed, so that it looks at once.

The database is the record; fan-out only wakes readers up. In one process the
wake-up is a function call. With Redis, each commit also publishes a one-byte
message on a channel every presenced process subscribes to, so a change written
through one process is delivered by a worker in another and streamed by a
third without waiting for their next poll. A lost message costs only that wait:
every reader still polls, more slowly, as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger("presenced.fanout")

CHANNEL = "presenced:changes"
RECONNECT_SECONDS = 1.0


class LocalFanout:
    """Wakes this process's readers."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[], None]] = []

    def changed(self) -> None:
        for listener in self.listeners:
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

        self._redis = Redis.from_url(url)
        self._publishing: asyncio.Task[None] | None = None
        self._again = False

    def changed(self) -> None:
        super().changed()
        # Coalesced: while one publish is on its way, later commits ask for one more, not one each.
        if self._publishing is not None and not self._publishing.done():
            self._again = True
            return
        self._publishing = asyncio.get_running_loop().create_task(self._publish())

    async def _publish(self) -> None:
        while True:
            self._again = False
            try:
                await self._redis.publish(CHANNEL, b"1")
            except Exception as error:  # the readers' polling covers for a lost wake-up
                log.warning("cannot publish to Redis: %s", error)
                return
            if not self._again:
                return

    async def run(self) -> None:
        """Receive other processes' wake-ups until cancelled, reconnecting when Redis goes away."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            super().changed()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("Redis subscription lost (%s); reconnecting", error)
                await asyncio.sleep(RECONNECT_SECONDS)

    async def close(self) -> None:
        if self._publishing is not None:
            with contextlib.suppress(Exception):
                await self._publishing
        await self._redis.aclose()

"""The shared counters of the throttle (``services.throttle``): in the database, or in Redis when configured."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import redis.asyncio as redis
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.errors import ServiceUnavailable
from presenced.logs import warn_occasionally
from presenced.store.schema import throttle_counts

log = logging.getLogger("presenced.throttle")

Key = tuple[str, str]


class SqlThrottleCounts:
    """Implements ``services.ports.ThrottleCounts`` with one row per (tenant, app, window)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._purged = -1

    async def add(self, window: int, seconds: int, deltas: Mapping[Key, int]) -> dict[Key, int]:
        totals: dict[Key, int] = {}
        async with self._engine.begin() as conn:
            # In key order, so that two processes adding the same keys never wait on each other in a circle.
            for (tenant_id, app_id), delta in sorted(deltas.items()):
                row = self._insert(throttle_counts).values(
                    tenant_id=tenant_id, app_id=app_id, window=window, count=delta
                )
                upsert = row.on_conflict_do_update(
                    index_elements=["tenant_id", "app_id", "window"],
                    set_={"count": throttle_counts.c.count + row.excluded.count},
                ).returning(throttle_counts.c.count)
                totals[(tenant_id, app_id)] = int((await conn.execute(upsert)).scalar_one())
            if window != self._purged:
                self._purged = window
                await conn.execute(delete(throttle_counts).where(throttle_counts.c.window < window - 1))
        return totals


class RedisThrottleCounts:
    """Implements ``services.ports.ThrottleCounts`` with one Redis counter per (tenant, app, window)."""

    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)

    async def add(self, window: int, seconds: int, deltas: Mapping[Key, int]) -> dict[Key, int]:
        keys = list(deltas)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for tenant_id, app_id in keys:
                    name = f"presenced:throttle:{tenant_id}:{app_id}:{window}"
                    pipe.incrby(name, deltas[(tenant_id, app_id)])
                    pipe.expire(name, seconds * 2)
                results = await pipe.execute()
        except (redis.RedisError, OSError) as error:
            # Each process goes on counting its own requests; the counts are added once Redis is back.
            warn_occasionally(log, "throttle", "cannot add the throttle's counts in Redis (%s); counting alone", error)
            raise ServiceUnavailable("Redis cannot be reached.", retry_after=2) from None
        return {key: int(results[2 * i]) for i, key in enumerate(keys)}

    async def close(self) -> None:
        await self._redis.aclose()

"""The emulator's manual clock, kept in the database so every process shares it (docs/emulator.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.clock import real_now
from presenced.store.codec import from_us, to_us
from presenced.store.engine import WRITER, create_engine
from presenced.store.schema import emulator_clock


class StoredClock:
    """A clock that moves only when told. It starts at the real time of its first use.

    It reads through an engine of its own: a write transaction reads the clock
    while it holds a connection, and with one shared pool, enough writers
    queued on one user would hold every connection the clock needs.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    async def existing(cls, url: str) -> StoredClock | None:
        """The database's manual clock if it has one, else None."""
        clock = cls(create_engine(url, pool_size=2))
        async with clock._engine.connect() as conn:
            found = await conn.scalar(select(emulator_clock.c.now_us).where(emulator_clock.c.id == 1))
        if found is None:
            await clock.close()
            return None
        return clock

    @classmethod
    def open(cls, url: str) -> StoredClock:
        return cls(create_engine(url, pool_size=2))

    async def close(self) -> None:
        await self._engine.dispose()

    async def now(self) -> datetime:
        async with self._engine.connect() as conn:
            value = await conn.scalar(select(emulator_clock.c.now_us).where(emulator_clock.c.id == 1))
        return real_now() if value is None else from_us(value)

    async def start(self) -> datetime:
        """Create the clock at the current real time unless it exists; its time."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(**{WRITER: True})
            async with conn.begin():
                value = await conn.scalar(select(emulator_clock.c.now_us).where(emulator_clock.c.id == 1))
                if value is None:
                    value = to_us(real_now())
                    await conn.execute(insert(emulator_clock).values(id=1, now_us=value))
        return from_us(value)

    async def remove(self) -> bool:
        """Delete the manual clock, returning the database to real time; whether there was one."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(**{WRITER: True})
            async with conn.begin():
                deleted = await conn.execute(delete(emulator_clock).where(emulator_clock.c.id == 1))
        return bool(deleted.rowcount)

    async def move(self, decide: Callable[[datetime], datetime]) -> datetime:
        """Set the clock to ``decide(current time)``, atomically with respect to other movers."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(**{WRITER: True})
            async with conn.begin():
                query = select(emulator_clock.c.now_us).where(emulator_clock.c.id == 1).with_for_update()
                current = await conn.scalar(query)
                now = from_us(current) if current is not None else real_now()
                target = decide(now)
                if current is None:
                    await conn.execute(insert(emulator_clock).values(id=1, now_us=to_us(target)))
                else:
                    await conn.execute(
                        update(emulator_clock).where(emulator_clock.c.id == 1).values(now_us=to_us(target))
                    )
        return target

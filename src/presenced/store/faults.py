"""The emulator's fault rules (``services.faults``), in the database so that every process applies them."""

from __future__ import annotations

from dataclasses import asdict, replace

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.clock import real_now
from presenced.services.entities import FaultRule
from presenced.store.codec import to_us
from presenced.store.schema import emulator_clock, emulator_faults, emulator_mode


async def is_emulator(engine: AsyncEngine) -> bool:
    """Whether the database is an emulator's: marked so, or on the manual clock."""
    async with engine.connect() as conn:
        marked = await conn.scalar(select(emulator_mode.c.id).where(emulator_mode.c.id == 1))
        manual = await conn.scalar(select(emulator_clock.c.id).where(emulator_clock.c.id == 1))
    return marked is not None or manual is not None


async def mark_emulator(engine: AsyncEngine) -> None:
    """Make the database an emulator's, for every process that opens it: one insert, which processes starting
    together may all try (the first one marks it; the others find it marked)."""
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(emulator_mode).values(id=1, since_us=to_us(real_now())))
    except IntegrityError:
        pass  # marked already


async def unmark_emulator(engine: AsyncEngine) -> bool:
    """Make the database an ordinary one again: no mark, no manual clock, no fault rule; whether it was an
    emulator's."""
    async with engine.begin() as conn:
        removed = (await conn.execute(delete(emulator_mode))).rowcount
        removed += (await conn.execute(delete(emulator_clock))).rowcount
        await conn.execute(delete(emulator_faults))
    return bool(removed)


class SqlFaultStore:
    """Implements ``services.ports.FaultStore``: one row per rule, with what is left of its count and how
    often it fired."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_fault(self, rule: FaultRule) -> None:
        settings = {k: v for k, v in asdict(rule).items() if k not in {"id", "count", "fired"}}
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(emulator_faults).values(
                    id=rule.id,
                    rule=msgspec.json.encode(settings).decode(),
                    remaining=rule.count,
                    fired=0,
                    created_us=to_us(real_now()),
                )
            )

    async def faults(self) -> list[FaultRule]:
        query = select(emulator_faults).order_by(emulator_faults.c.created_us, emulator_faults.c.id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            replace(
                msgspec.convert({"id": r["id"], **msgspec.json.decode(r["rule"])}, FaultRule),
                count=r["remaining"],
                fired=r["fired"],
            )
            for r in rows
        ]

    async def take_fault(self, rule_id: str) -> bool:
        statement = (
            update(emulator_faults)
            .where(emulator_faults.c.id == rule_id, emulator_faults.c.remaining > 0)
            .values(remaining=emulator_faults.c.remaining - 1, fired=emulator_faults.c.fired + 1)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def fired(self, rule_id: str) -> bool:
        statement = (
            update(emulator_faults).where(emulator_faults.c.id == rule_id).values(fired=emulator_faults.c.fired + 1)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(statement)).rowcount == 1

    async def remove_faults(self, rule_id: str | None) -> int:
        statement = delete(emulator_faults)
        if rule_id is not None:
            statement = statement.where(emulator_faults.c.id == rule_id)
        async with self._engine.begin() as conn:
            return int((await conn.execute(statement)).rowcount)

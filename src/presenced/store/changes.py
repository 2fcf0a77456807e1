"""Reading the change log (``presence_changes``): for the live stream and its resumption."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.domain.sequence import PresenceState
from presenced.services.entities import LoggedChange
from presenced.store.codec import decode_visible, from_us, to_us
from presenced.store.schema import presence_changes


class SqlChangeLog:
    """Implements ``presenced.services.ports.ChangeLog``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def latest_change_id(self) -> int:
        async with self._engine.connect() as conn:
            latest = await conn.scalar(select(func.max(presence_changes.c.id)))
        return int(latest or 0)

    async def changes_after(self, after_id: int, limit: int) -> list[LoggedChange]:
        query = (
            select(presence_changes)
            .where(presence_changes.c.id > after_id)
            .order_by(presence_changes.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_change(row) for row in (await conn.execute(query)).mappings()]

    async def changes_since(
        self, tenant_id: str, user_ids: Sequence[str], sequence: int, limit: int
    ) -> list[LoggedChange]:
        query = (
            select(presence_changes)
            .where(
                presence_changes.c.tenant_id == tenant_id,
                presence_changes.c.user_id.in_(list(user_ids)),
                presence_changes.c.sequence > sequence,
            )
            .order_by(presence_changes.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [_change(row) for row in (await conn.execute(query)).mappings()]

    async def history(
        self, tenant_id: str, user_id: str, start: datetime | None, end: datetime | None, after_id: int, limit: int
    ) -> list[LoggedChange]:
        query = select(presence_changes).where(
            presence_changes.c.tenant_id == tenant_id,
            presence_changes.c.user_id == user_id,
            presence_changes.c.id > after_id,
        )
        if start is not None:
            query = query.where(presence_changes.c.at_us >= to_us(start))
        if end is not None:
            query = query.where(presence_changes.c.at_us < to_us(end))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(presence_changes.c.id).limit(limit))).mappings()
            return [_change(row) for row in rows]

    async def changes_before(
        self, tenant_id: str, user_id: str, before_id: int | None, limit: int
    ) -> list[LoggedChange]:
        query = select(presence_changes).where(
            presence_changes.c.tenant_id == tenant_id, presence_changes.c.user_id == user_id
        )
        if before_id is not None:
            query = query.where(presence_changes.c.id < before_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(presence_changes.c.id.desc()).limit(limit))).mappings()
            return [_change(row) for row in rows]

    async def purge_changes(self, before: datetime) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(presence_changes).where(presence_changes.c.at_us < to_us(before)))
            return int(result.rowcount)


def _change(row: RowMapping) -> LoggedChange:
    state = PresenceState(decode_visible(row["visible"]), row["sequence"], from_us(row["at_us"]), None)
    return LoggedChange(row["id"], row["tenant_id"], row["user_id"], state, row["cause"])

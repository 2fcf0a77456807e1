"""Reading the change log (``presence_changes``): for the live stream and its resumption."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, true
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.domain.sequence import PresenceState
from presenced.services.entities import LoggedChange
from presenced.store.codec import decode_visible, from_us, to_us
from presenced.store.schema import presence_changes, users


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

    async def latest_changes(self, tenant_id: str, user_ids: Sequence[str], per_user: int) -> list[LoggedChange]:
        # Driven by the users: each one's newest entries are read backwards on the (user_id, sequence) index, so the
        # query reads about ``per_user`` rows a user however long their history is.
        ids = list(user_ids)
        if self._engine.dialect.name == "postgresql":
            recent = (
                select(presence_changes)
                .where(presence_changes.c.user_id == users.c.id, presence_changes.c.tenant_id == tenant_id)
                .order_by(presence_changes.c.sequence.desc())
                .limit(per_user)
                .lateral("recent")
            )
            query = (
                select(recent)
                .select_from(users.join(recent, true()))
                .where(users.c.tenant_id == tenant_id, users.c.id.in_(ids))
                .order_by(recent.c.id.desc())
            )
        else:
            # SQLite has no LATERAL: a join on the sequence number of each user's ``per_user``-th newest entry,
            # which it works out once a user, on the same index.
            newer = presence_changes.alias("newer")
            cutoff = (
                select(newer.c.sequence)
                .where(newer.c.user_id == users.c.id)
                .order_by(newer.c.sequence.desc())
                .limit(1)
                .offset(per_user - 1)
                .scalar_subquery()
            )
            on = (presence_changes.c.user_id == users.c.id) & (presence_changes.c.sequence >= func.coalesce(cutoff, 0))
            query = (
                select(presence_changes)
                .select_from(users.join(presence_changes, on))
                .where(users.c.tenant_id == tenant_id, users.c.id.in_(ids), presence_changes.c.tenant_id == tenant_id)
                .order_by(presence_changes.c.id.desc())
            )
        async with self._engine.connect() as conn:
            return [_change(row) for row in (await conn.execute(query)).mappings()]

    async def purge_changes(self, before: datetime) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(presence_changes).where(presence_changes.c.at_us < to_us(before)))
            return int(result.rowcount)


def _change(row: RowMapping) -> LoggedChange:
    state = PresenceState(decode_visible(row["visible"]), row["sequence"], from_us(row["at_us"]), None)
    return LoggedChange(row["id"], row["tenant_id"], row["user_id"], state, row["cause"])

"""The backlogs a metrics scrape shows (``services.ports.Measures``): one cheap query for each."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from presenced.services.ports import Backlogs
from presenced.store.codec import from_us
from presenced.store.schema import notifications, presence_changes, presences


class SqlMeasures:
    """Implements ``presenced.services.ports.Measures``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def backlogs(self) -> Backlogs:
        async with self._engine.connect() as conn:
            pending = (
                await conn.execute(
                    select(func.count(), func.min(notifications.c.created_us)).where(notifications.c.state == "pending")
                )
            ).one()
            latest = await conn.scalar(select(func.max(presence_changes.c.id)))
            # Indexed (ix_presences_next_change_us): the first entry of the index.
            next_change = await conn.scalar(select(func.min(presences.c.next_change_us)))
        pool = self._engine.pool
        checked_out = getattr(pool, "checkedout", None)
        idle = getattr(pool, "checkedin", None)
        return Backlogs(
            outbox_pending=int(pending[0]),
            outbox_oldest=None if pending[1] is None else from_us(pending[1]),
            latest_change_id=int(latest or 0),
            next_transition=None if next_change is None else from_us(next_change),
            pool_checked_out=checked_out() if callable(checked_out) else None,
            pool_idle=idle() if callable(idle) else None,
        )

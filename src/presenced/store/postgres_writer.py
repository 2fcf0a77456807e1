"""Group-commit batches on PostgreSQL: asyncpg, prepared statements, one connection per process.

A batch locks its users in user-id order (``FOR UPDATE``; a sweep's due users
with ``SKIP LOCKED``, or in user-id order when it must wait), reads the clock,
reads the facts in one statement of their own (see ``batch_sql.POSTGRES_LOCK``),
decides, writes every table and finds the subscribers to notify in one
statement (``batch_sql.POSTGRES_WRITE_ALL``: the rows' columns as arrays), queues
the notifications, and commits. Batches of several processes write at once; the lock
order keeps them from deadlocking, and a deadlock with some other transaction is
retried.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from presenced.clock import LocalClock, real_now
from presenced.store.batch_sql import POSTGRES as SQL
from presenced.store.batch_sql import (
    POSTGRES_LOCK,
    POSTGRES_LOCK_DUE_SKIP,
    POSTGRES_LOCK_DUE_WAIT,
    POSTGRES_WRITE_ALL,
    WRITE_ALL_WIDTHS,
)
from presenced.store.batches import Batch, Recent, loaded_from_columns
from presenced.store.codec import from_us, to_us
from presenced.store.engine import CONNECT_TIMEOUT
from presenced.store.outages import drop_if_broken, is_outage, unavailable
from presenced.store.rows import stored_from_columns

#: Tries of a batch that PostgreSQL chose as a deadlock's victim.
DEADLOCK_TRIES = 5


class PostgresBatches:
    """Runs batches on the writer's connection; ``clock`` None: the manual clock in the database."""

    def __init__(self, pool: Any, clock: LocalClock | None) -> None:
        self._pool = pool
        self._clock = clock
        self._recent = Recent()
        #: Statements run (``executemany`` counts once), for the query-count tests.
        self.statements = 0

    @classmethod
    async def connect(cls, url: str, clock: LocalClock | None) -> PostgresBatches:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        # One connection: this process's batches run one at a time. The pool reconnects after a failure.
        return cls(await asyncpg.create_pool(dsn, min_size=0, max_size=1, timeout=CONNECT_TIMEOUT), clock)

    async def run(self, batch: Batch) -> None:
        for attempt in range(1, DEADLOCK_TRIES + 1):
            try:
                async with self._pool.acquire() as conn:
                    try:
                        async with conn.transaction():
                            self.statements += 2  # BEGIN and COMMIT
                            await self._run(conn, batch)
                    except Exception as error:
                        drop_if_broken(conn, error)
                        raise
                if batch.sweep is not None:
                    self._recent.forget(batch.sweep.user_ids)
                else:
                    self._recent.remember(batch.stored())
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == DEADLOCK_TRIES:
                    raise
                batch.reset()

    async def due(self, limit: int) -> list[str]:
        try:
            async with self._pool.acquire() as conn:
                rows = await self._fetch(conn, SQL.due_ids, to_us(await self._now(conn)), limit)
        except Exception as error:
            if is_outage(error):
                raise unavailable(error) from None
            raise
        return sorted(row[0] for row in rows)

    def unavailable(self, error: BaseException) -> bool:
        """The database, not one write, failed: no use retrying each write alone."""
        return is_outage(error) or isinstance(error, asyncpg.DeadlockDetectedError)

    async def close(self) -> None:
        await self._pool.close()

    async def _run(self, conn: Any, batch: Batch) -> None:
        sweep = batch.sweep
        if sweep is not None:
            lock = POSTGRES_LOCK_DUE_WAIT if sweep.wait else POSTGRES_LOCK_DUE_SKIP
            ids = [row[0] for row in await self._fetch(conn, lock, sweep.user_ids, to_us(await self._now(conn)))]
            if not ids:
                sweep.outcome = (0, 0)
                return
            now = await self._now(conn)
            states = await self._fetch(conn, SQL.states, ids)
            legacy = [row[0] for row in states if row[6] is None]
            stored = {}
            if legacy:
                stored = {row[0]: stored_from_columns(row) for row in await self._fetch(conn, SQL.facts, legacy)}
            rows = batch.advance(states, stored, now)
        else:
            known, missing = self._recent.split(await self._fetch(conn, POSTGRES_LOCK, batch.user_ids))
            now = await self._now(conn)
            if missing:
                known += [loaded_from_columns(row) for row in await self._fetch(conn, SQL.facts, missing)]
            rows = batch.decide(known, now)
        parts = (rows.presences, rows.states, rows.session_upserts, rows.session_deletes, rows.mailboxes, rows.changes)
        arrays = [array for part, width in zip(parts, WRITE_ALL_WIDTHS, strict=True) for array in _columns(part, width)]
        watchers = await self._fetch(conn, POSTGRES_WRITE_ALL, *arrays, list(rows.changed), to_us(now))
        await self._write(conn, SQL.writes.insert_notification, batch.notifications(watchers, rows.changed))

    async def _now(self, conn: Any) -> datetime:
        if self._clock is not None:
            return self._clock.read()
        found = await self._fetch(conn, SQL.clock)
        return real_now() if not found else from_us(found[0][0])

    async def _fetch(self, conn: Any, sql: str, *args: Any) -> list[Any]:
        self.statements += 1
        result: list[Any] = await conn.fetch(sql, *args)
        return result

    async def _write(self, conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for all the rows: their columns as arrays."""
        if rows:
            self.statements += 1
            await conn.execute(sql, *_columns(rows, len(rows[0])))


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column (empty lists for no rows)."""
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]

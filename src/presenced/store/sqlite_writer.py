"""Group-commit batches on SQLite: one connection of the writer's own, on a thread of its own.

A batch is one call into that thread: ``BEGIN IMMEDIATE`` (SQLite's write
lock), the clock, the users' facts in one statement, the decisions, one
statement per table written, the subscribers in one statement, ``COMMIT``.
The thread waits for the disk (``synchronous=FULL``: a commit is on disk before
it is acknowledged) and for other processes' write locks (the busy timeout)
without holding up the event loop; everything it does in Python is small.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import msgspec

from presenced.clock import LocalClock, real_now
from presenced.services.entities import StoredPresence
from presenced.store.batch_sql import SQLITE as SQL
from presenced.store.batches import Batch, Recent, loaded_from_columns
from presenced.store.codec import from_us, to_us
from presenced.store.rows import stored_from_columns

BUSY_TIMEOUT_MS = 10_000


class SqliteBatches:
    """Runs batches on a dedicated connection and thread; ``clock`` None: the manual clock in the database."""

    def __init__(self, path: str, clock: LocalClock | None, turn: contextlib.AbstractAsyncContextManager[Any]) -> None:
        self._path = path
        self._clock = clock
        #: This process's other writers (SQLAlchemy transactions) take turns with the batches.
        self._turn = turn
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="presenced-writer")
        self._conn: sqlite3.Connection | None = None
        self._recent = Recent()
        #: Statements run (``executemany`` counts once), for the query-count tests.
        self.statements = 0

    async def run(self, batch: Batch) -> None:
        async with self._turn:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._run, batch)

    def unavailable(self, error: BaseException) -> bool:
        """The database, not one write, failed: no use retrying each write alone."""
        return isinstance(error, sqlite3.OperationalError | OSError)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    # ---- on the writer's thread

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            # Every row a batch writes names a user (or subscription) that the same transaction has
            # just read under the write lock: a foreign-key check could not fail, and would cost a
            # lookup per row. (Deletes cascade on the connections that delete, which check them.)
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def due(self, limit: int) -> list[str]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._due, limit)

    def _due(self, limit: int) -> list[str]:
        """Without taking the write lock (a sweep that finds nobody due costs one read)."""
        conn = self._connection()
        return sorted(row[0] for row in self._execute(conn, SQL.due_ids, (to_us(self._now(conn)), limit)))

    def _run(self, batch: Batch) -> None:
        conn = self._connection()
        sweep = batch.sweep
        self._execute(conn, "BEGIN IMMEDIATE")
        try:
            now = self._now(conn)
            if sweep is not None:
                due = self._execute(conn, SQL.due_states, (_ids(sweep.user_ids), to_us(now))).fetchall()
                rows = batch.advance(due, self._stored_without_upcoming(conn, due), now)
            else:
                versions = self._execute(conn, SQL.versions, (_ids(batch.user_ids),)).fetchall()
                known, missing = self._recent.split(versions)
                if missing:
                    facts = self._execute(conn, SQL.facts, (_ids(missing),)).fetchall()
                    known += [loaded_from_columns(row) for row in facts]
                rows = batch.decide(known, now)
            self._executemany(conn, SQL.writes.update_presence, rows.presences)
            self._executemany(conn, SQL.writes.update_state, rows.states)
            self._executemany(conn, SQL.writes.upsert_session, rows.session_upserts)
            self._executemany(conn, SQL.writes.delete_session, rows.session_deletes)
            self._executemany(conn, SQL.writes.upsert_mailbox, rows.mailboxes)
            if rows.changes:
                self._executemany(conn, SQL.writes.insert_change, rows.changes)
                watchers = self._execute(conn, SQL.watchers, (_ids(list(rows.changed)), to_us(now))).fetchall()
                self._executemany(conn, SQL.writes.insert_notification, batch.notifications(watchers, rows.changed))
            self._execute(conn, "COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if sweep is not None:
            self._recent.forget(sweep.user_ids)
        else:
            self._recent.remember(batch.stored())

    def _stored_without_upcoming(self, conn: sqlite3.Connection, due: list[Any]) -> dict[str, StoredPresence]:
        """Facts and all, for due users whose rows an earlier version wrote (without the upcoming changes)."""
        legacy = [row[0] for row in due if row[6] is None]
        if not legacy:
            return {}
        return {row[0]: stored_from_columns(row) for row in self._execute(conn, SQL.facts, (_ids(legacy),))}

    def _now(self, conn: sqlite3.Connection) -> datetime:
        if self._clock is not None:
            return self._clock.read()
        found = self._execute(conn, SQL.clock).fetchone()
        return real_now() if found is None else from_us(found[0])

    def _execute(self, conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        self.statements += 1
        return conn.execute(sql, params)

    def _executemany(self, conn: sqlite3.Connection, sql: str, rows: list[Any]) -> None:
        if rows:
            self.statements += 1
            conn.executemany(sql, rows)


def _ids(user_ids: list[str]) -> str:
    """A list of ids as the JSON array the statements take apart with ``json_each``."""
    return msgspec.json.encode(user_ids).decode()

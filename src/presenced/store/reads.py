"""The presence read hot path, on the bare database drivers.

A presence read is one indexed query. Through SQLAlchemy's async layer and
aiosqlite's thread hop it cost ~1.5 ms; straight on the driver it costs tens of
microseconds:

- SQLite: a plain ``sqlite3`` connection used from the event loop. A WAL reader
  never waits for writers, and the lookup takes less time than handing it to a
  thread would.
- PostgreSQL: an asyncpg pool; asyncpg prepares and caches the statement.

A read returns the stored state (``presenced.services.presence`` says why): by
object id it touches only the user's ``presences`` row, which carries the tenant.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from presenced.services.entities import User, UserPresence
from presenced.store.engine import CONNECT_TIMEOUT
from presenced.store.outages import drop_if_broken, is_outage, unavailable
from presenced.store.rows import user_presence

#: The columns every variant of the read query returns, in order.
_NAMES = ("id", "user_principal_name", "visible", "sequence", "changed_us", "next_change_us")


def _select(upn: str) -> str:
    return (
        f"SELECT p.user_id AS id, {upn} AS user_principal_name, p.visible, p.sequence, p.changed_us, p.next_change_us "
    )


_BARE = _select("CAST(NULL AS TEXT)")
_NAMED = _select("u.user_principal_name")
_BY_UPN = "FROM users u JOIN presences p ON p.user_id = u.id WHERE "
# Many users: ids and UPNs as two indexed lookups joined by UNION ALL (an OR of
# the two would make the databases walk the whole tenant). In SQLite,
# ``+u.tenant_id`` keeps the planner on the primary key for id lists rather than
# the (tenant, UPN) index.
_SQLITE_ONE = {
    "id": f"{_BARE}FROM presences p WHERE p.user_id = ?2 AND p.tenant_id = ?1",
    "upn": f"{_NAMED}{_BY_UPN}u.tenant_id = ?1 AND u.upn_key = ?2",
}
_SQLITE_MANY = (
    f"{_NAMED}{_BY_UPN}u.id IN (SELECT value FROM json_each(?2)) AND +u.tenant_id = ?1 "
    f"UNION ALL {_NAMED}{_BY_UPN}u.tenant_id = ?1 AND u.upn_key IN (SELECT value FROM json_each(?3))"
)
_POSTGRES_ONE = {
    "id": f"{_BARE}FROM presences p WHERE p.user_id = $2 AND p.tenant_id = $1",
    "upn": f"{_NAMED}{_BY_UPN}u.tenant_id = $1 AND u.upn_key = $2",
}
_POSTGRES_MANY = (
    f"{_NAMED}{_BY_UPN}u.tenant_id = $1 AND u.id = ANY($2::text[]) "
    f"UNION ALL {_NAMED}{_BY_UPN}u.tenant_id = $1 AND u.upn_key = ANY($3::text[])"
)


# A write's target: the user by object id or UPN (``presenced.services.actions``).
_USER = "SELECT id, tenant_id, user_principal_name, display_name FROM users WHERE tenant_id = {0} AND {1} = {2}"
_SQLITE_USER = {"id": _USER.format("?1", "id", "?2"), "upn": _USER.format("?1", "upn_key", "?2")}
_POSTGRES_USER = {"id": _USER.format("$1", "id", "$2"), "upn": _USER.format("$1", "upn_key", "$2")}


def split_refs(refs: Sequence[str]) -> tuple[list[str], list[str]]:
    """Object ids and UPN keys: a ref with an ``@`` is a UPN; both fold to lower case.

    A ref with a NUL character names nobody, and PostgreSQL refuses NUL in text,
    so it is left out.
    """
    ids: list[str] = []
    upns: list[str] = []
    for ref in refs:
        if "\x00" not in ref:
            (upns if "@" in ref else ids).append(ref.lower())
    return ids, upns


def _one(ref: str) -> tuple[str, str]:
    """Which column a single ref names, and its key."""
    return ("upn" if "@" in ref else "id"), ref.lower()


#: Longer lists are read in a worker thread: 650 users take milliseconds, too long to hold up
#: every other request on the event loop; a few take less than the hand-off.
THREAD_AT = 32


class SqlitePresenceReader:
    def __init__(self, path: str) -> None:
        self._conn = _read_only(path)
        # Batches, on a connection of their own, one thread at a time.
        self._batch_conn = _read_only(path)
        self._batch_lock = threading.Lock()

    async def load(self, tenant_id: str, refs: Sequence[str]) -> list[UserPresence]:
        if len(refs) == 1:
            column, key = _one(refs[0])
            if "\x00" in key:
                return []
            return _records(self._conn.execute(_SQLITE_ONE[column], (tenant_id, key)))
        ids, upns = split_refs(refs)
        params = (tenant_id, json.dumps(ids), json.dumps(upns))
        if len(refs) < THREAD_AT:
            return _records(self._conn.execute(_SQLITE_MANY, params))
        return await asyncio.to_thread(self._load_batch, params)

    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        """The tenant's user with this object id or UPN (case-insensitive)."""
        column, key = _one(ref)
        if "\x00" in key:
            return None
        row = self._conn.execute(_SQLITE_USER[column], (tenant_id, key)).fetchone()
        return None if row is None else User(*row)

    def _load_batch(self, params: tuple[str, str, str]) -> list[UserPresence]:
        with self._batch_lock:
            return _records(self._batch_conn.execute(_SQLITE_MANY, params))

    async def close(self) -> None:
        self._conn.close()
        with self._batch_lock:
            self._batch_conn.close()


def _read_only(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA query_only=ON")
    return conn


def _records(cursor: sqlite3.Cursor) -> list[UserPresence]:
    # Rows as dicts: ``sqlite3.Row`` finds a column by a case-insensitive linear scan.
    return _distinct([user_presence(dict(zip(_NAMES, row, strict=True))) for row in cursor.fetchall()])


class PostgresPresenceReader:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str) -> PostgresPresenceReader:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(await asyncpg.create_pool(dsn, min_size=0, max_size=10, timeout=CONNECT_TIMEOUT))

    async def load(self, tenant_id: str, refs: Sequence[str]) -> list[UserPresence]:
        if len(refs) == 1 and "\x00" in refs[0]:
            return []
        if len(refs) == 1:
            column, key = _one(refs[0])
            rows = await self._fetch("fetch", _POSTGRES_ONE[column], tenant_id, key)
        else:
            ids, upns = split_refs(refs)
            rows = await self._fetch("fetch", _POSTGRES_MANY, tenant_id, ids, upns)
        return _distinct([user_presence(row) for row in rows])

    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        """The tenant's user with this object id or UPN (case-insensitive)."""
        column, key = _one(ref)
        if "\x00" in key:
            return None
        row = await self._fetch("fetchrow", _POSTGRES_USER[column], tenant_id, key)
        return None if row is None else User(*row)

    async def _fetch(self, method: str, query: str, *args: Any) -> Any:
        """Run a read; if the database failed under it, once more on a fresh connection (a read may be
        repeated), then ``ServiceUnavailable``."""
        for attempt in (1, 2):
            try:
                async with self._pool.acquire() as conn:
                    try:
                        return await getattr(conn, method)(query, *args)
                    except Exception as error:
                        drop_if_broken(conn, error)
                        raise
            except Exception as error:
                if not is_outage(error):
                    raise
                if attempt == 2:
                    raise unavailable(error) from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._pool.close()


def _distinct(records: list[UserPresence]) -> list[UserPresence]:
    """Each user once (a user named by both id and UPN comes back from both lookups)."""
    if len(records) < 2:
        return records
    return list({record.user_id: record for record in records}.values())

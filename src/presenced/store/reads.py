"""The presence read hot path, on the bare database drivers.

A presence read is one indexed query. Through SQLAlchemy's async layer and
aiosqlite's thread hop it cost ~1.5 ms; straight on the driver it costs tens of
microseconds:

- SQLite: a plain ``sqlite3`` connection used from the event loop. A WAL reader
  never waits for writers, and the lookup takes less time than handing it to a
  thread would.
- PostgreSQL: an asyncpg pool; asyncpg prepares and caches the statement.

The query returns the materialised state from the user's ``presences`` row.
The stored state is exact until its ``next_change_us``; only for a user whose
transition is already due (and not yet stored by the sweeper) does the read
need the facts, and the same query fetches them as JSON, lazily:
``CASE WHEN due THEN (subquery) END`` runs the subquery only for those rows.
So a read is always one query, and the common one by object id touches one row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from presenced.services.ports import UserPresence
from presenced.store.codec import to_us
from presenced.store.rows import PRESENCE_FACT_COLUMNS, REPLY_COLUMNS, user_presence

_SESSION_FIELDS = "s.app_id, s.availability, s.activity, s.refreshed_us, s.expires_us"


def _select(now: str, json_array: str, json_agg: str, upn: str) -> str:
    """The read query's SELECT list for one dialect (``now`` is the placeholder of the current instant)."""
    due = f"p.next_change_us <= {now}"
    facts = ", ".join(f"p.{name}" for name in PRESENCE_FACT_COLUMNS)
    replies = ", ".join(f"m.{name}" for name in REPLY_COLUMNS)
    return (
        f"SELECT p.user_id AS id, {upn} AS user_principal_name, "
        "p.visible, p.sequence, p.changed_us, p.next_change_us, "
        f"CASE WHEN {due} THEN {json_array}({facts}) END AS facts, "
        f"CASE WHEN {due} THEN (SELECT {json_agg}({json_array}({_SESSION_FIELDS})) "
        "FROM presence_sessions s WHERE s.user_id = p.user_id) END AS sessions, "
        f"CASE WHEN {due} THEN (SELECT {json_array}({replies}) "
        "FROM mailbox_settings m WHERE m.user_id = p.user_id) END AS replies "
    )


#: The columns every variant of the read query returns, in order.
_NAMES = (
    "id",
    "user_principal_name",
    "visible",
    "sequence",
    "changed_us",
    "next_change_us",
    "facts",
    "sessions",
    "replies",
)
_BY_UPN = "FROM users u JOIN presences p ON p.user_id = u.id WHERE "
# A read by object id touches only the user's ``presences`` row (it carries the
# tenant); by UPN it goes through ``users``. Many users: ids and UPNs as two
# indexed lookups joined by UNION ALL (an OR of the two would make the
# databases walk the whole tenant). In SQLite, ``+u.tenant_id`` keeps the
# planner on the primary key for id lists rather than the (tenant, UPN) index.
_SQLITE_BARE = _select("?1", "json_array", "json_group_array", "CAST(NULL AS TEXT)")
_SQLITE_NAMED = _select("?1", "json_array", "json_group_array", "u.user_principal_name")
_SQLITE_ONE = {
    "id": f"{_SQLITE_BARE}FROM presences p WHERE p.user_id = ?3 AND p.tenant_id = ?2",
    "upn": f"{_SQLITE_NAMED}{_BY_UPN}u.tenant_id = ?2 AND u.upn_key = ?3",
}
_SQLITE_MANY = (
    f"{_SQLITE_NAMED}{_BY_UPN}u.id IN (SELECT value FROM json_each(?3)) AND +u.tenant_id = ?2 "
    f"UNION ALL {_SQLITE_NAMED}{_BY_UPN}u.tenant_id = ?2 AND u.upn_key IN (SELECT value FROM json_each(?4))"
)
_POSTGRES_BARE = _select("$1", "json_build_array", "json_agg", "CAST(NULL AS TEXT)")
_POSTGRES_NAMED = _select("$1", "json_build_array", "json_agg", "u.user_principal_name")
_POSTGRES_ONE = {
    "id": f"{_POSTGRES_BARE}FROM presences p WHERE p.user_id = $3 AND p.tenant_id = $2",
    "upn": f"{_POSTGRES_NAMED}{_BY_UPN}u.tenant_id = $2 AND u.upn_key = $3",
}
_POSTGRES_MANY = (
    f"{_POSTGRES_NAMED}{_BY_UPN}u.tenant_id = $2 AND u.id = ANY($3::text[]) "
    f"UNION ALL {_POSTGRES_NAMED}{_BY_UPN}u.tenant_id = $2 AND u.upn_key = ANY($4::text[])"
)


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


class SqlitePresenceReader:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.execute("PRAGMA query_only=ON")

    async def load(self, tenant_id: str, refs: Sequence[str], now: datetime) -> list[UserPresence]:
        if len(refs) == 1:
            column, key = _one(refs[0])
            if "\x00" in key:
                return []
            cursor = self._conn.execute(_SQLITE_ONE[column], (to_us(now), tenant_id, key))
        else:
            ids, upns = split_refs(refs)
            cursor = self._conn.execute(_SQLITE_MANY, (to_us(now), tenant_id, json.dumps(ids), json.dumps(upns)))
        # Rows as dicts: ``sqlite3.Row`` finds a column by a case-insensitive linear scan.
        return _distinct([user_presence(dict(zip(_NAMES, row, strict=True))) for row in cursor.fetchall()])

    async def close(self) -> None:
        self._conn.close()


class PostgresPresenceReader:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str) -> PostgresPresenceReader:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(await asyncpg.create_pool(dsn, min_size=1, max_size=10))

    async def load(self, tenant_id: str, refs: Sequence[str], now: datetime) -> list[UserPresence]:
        if len(refs) == 1 and "\x00" in refs[0]:
            return []
        async with self._pool.acquire() as conn:
            if len(refs) == 1:
                column, key = _one(refs[0])
                rows = await conn.fetch(_POSTGRES_ONE[column], to_us(now), tenant_id, key)
            else:
                ids, upns = split_refs(refs)
                rows = await conn.fetch(_POSTGRES_MANY, to_us(now), tenant_id, ids, upns)
        return _distinct([user_presence(row) for row in rows])

    async def close(self) -> None:
        await self._pool.close()


def _distinct(records: list[UserPresence]) -> list[UserPresence]:
    """Each user once (a user named by both id and UPN comes back from both lookups)."""
    if len(records) < 2:
        return records
    return list({record.user_id: record for record in records}.values())

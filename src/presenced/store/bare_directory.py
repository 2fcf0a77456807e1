"""The directory lookups an operator's token needs, on the bare database driver.

``presenced token`` runs from scripts and tests, often many times in a row, so it must start at
once. It reads four things (the tenant, the user, the application and its service principal)
and signs; this reads them with ``sqlite3`` or asyncpg directly, without the SQLAlchemy engine
and the migration machinery that the long-running commands load (about half a second of imports
on a small machine). It reads only a database at the newest schema: ``open`` answers None for any
other, and the command then takes the full path, which migrates it first.

The queries are those of ``presenced.store.identity`` (same columns, same case folding), and the
rows become values through the same converters (``presenced.store.identity_rows``).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from presenced.errors import ConfigurationError
from presenced.services.entities import Account, Application, SealedKey, ServicePrincipal
from presenced.store.identity_rows import (
    account_from_row,
    application_from_row,
    secret_from_row,
    service_principal_from_row,
)

MIGRATIONS = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r'^(down_revision|revision) = (?:"([^"]*)"|None)', re.MULTILINE)


def newest_revision() -> str:
    """The head of the migration chain, read from the migration files (without loading Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in MIGRATIONS.glob("*.py"):
        for name, value in _REVISION.findall(path.read_text()):
            if value:
                (revisions if name == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads")
    return heads.pop()


class BareDirectory:
    """Read-only lookups on one connection; ``close`` when done."""

    def __init__(self, sqlite: sqlite3.Connection | None, postgres: Any = None) -> None:
        self._sqlite = sqlite
        self._postgres = postgres

    @classmethod
    async def open(cls, url: str) -> BareDirectory | None:
        """The directory of the database at ``url``, or None unless it exists at the newest schema."""
        parts = urlsplit(url)
        if parts.scheme.startswith("sqlite"):
            # As SQLAlchemy reads it: ``sqlite:///`` then the path, up to any query (``#`` is a file name's).
            rest = url.split("://", 1)[1]
            path = Path(rest[1:].split("?", 1)[0]) if rest.startswith("/") else None
            if path is None or not path.is_file():
                return None  # in memory, or not created yet: the ordinary path
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
            connection.row_factory = sqlite3.Row
            directory = cls(connection)
        else:
            import asyncpg

            dsn = urlunsplit(parts._replace(scheme="postgresql"))
            try:
                directory = cls(None, await asyncpg.connect(dsn))
            except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise ConfigurationError(f"cannot reach the database (--database-url): {exc}") from None
        try:
            current = await directory._version()
        except BaseException:
            await directory.close()
            raise
        if current != newest_revision():
            await directory.close()
            return None
        return directory

    async def _version(self) -> str | None:
        """The schema's migration, None for a database without one (new, or not presenced's)."""
        if self._sqlite is not None:
            try:
                rows = self._sqlite.execute("SELECT version_num FROM alembic_version").fetchall()
            except sqlite3.DatabaseError:  # no such table, or not a database presenced wrote
                return None
        else:
            import asyncpg

            try:
                rows = await self._postgres.fetch("SELECT version_num FROM alembic_version")
            except asyncpg.UndefinedTableError:
                return None
        return str(rows[0]["version_num"]) if len(rows) == 1 else None

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._postgres is not None:
            await self._postgres.close()

    async def _rows(self, sql: str, *params: Any) -> list[Any]:
        if self._sqlite is not None:
            return self._sqlite.execute(sql, params).fetchall()
        numbered = iter(range(1, len(params) + 1))
        return list(await self._postgres.fetch(re.sub(r"\?", lambda _: f"${next(numbered)}", sql), *params))

    async def tenant_exists(self, tenant_id: str) -> bool:
        return bool(await self._rows("SELECT id FROM tenants WHERE id = ?", tenant_id.lower()))

    async def find_account(self, tenant_id: str | None, ref: str) -> Account | None:
        if "\x00" in ref:
            return None
        column = "upn_key" if "@" in ref else "id"
        sql = (
            "SELECT id, tenant_id, user_principal_name, display_name, password_hash, is_admin, "
            f"given_name, surname, mail FROM users WHERE {column} = ?"
        )
        params = [ref.lower()]
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            params.append(tenant_id.lower())
        rows = await self._rows(sql + " LIMIT 2", *params)
        # A UPN names one user only if no other tenant uses it.
        return account_from_row(rows[0]) if len(rows) == 1 else None

    async def find_application(self, app_id: str) -> Application | None:
        rows = await self._rows("SELECT * FROM applications WHERE app_id = ? LIMIT 1", app_id.lower())
        if not rows:
            return None
        secrets = await self._rows(
            "SELECT * FROM client_secrets WHERE application_id = ? ORDER BY start_us", rows[0]["id"]
        )
        return application_from_row(rows[0], [secret_from_row(s) for s in secrets])

    async def find_service_principal(self, tenant_id: str, app_id: str) -> ServicePrincipal | None:
        rows = await self._rows(
            "SELECT * FROM service_principals WHERE tenant_id = ? AND app_id = ? LIMIT 1", tenant_id, app_id.lower()
        )
        return service_principal_from_row(rows[0]) if rows else None

    async def sealed_keys(self) -> list[SealedKey]:
        """The signing keys kept in the database (none while they are kept in a folder), oldest first."""
        rows = await self._rows("SELECT position, kid, sealed FROM signing_keys ORDER BY position")
        return [SealedKey(row["position"], row["kid"], bytes(row["sealed"])) for row in rows]

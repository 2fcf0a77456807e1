"""Opening the database: URL normalisation, SQLite pragmas, migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from presenced.errors import ConfigurationError, ServiceUnavailable
from presenced.services.ports import Migration
from presenced.store.outages import answer_outages_as_unavailable, is_outage, quiet, unavailable

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'presenced.db'}"


def async_url(url: str) -> str:
    """Pin the async driver: ``postgresql://`` → asyncpg, ``sqlite://`` → aiosqlite."""
    parsed = make_url(url)
    driver = {"postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}
    name = driver.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=name).render_as_string(hide_password=False)


#: Seconds to wait for a connection to PostgreSQL (opening one, or one of the pool's) before a request is
#: refused as unavailable.
CONNECT_TIMEOUT = 3


def create_engine(url: str, pool_size: int = 8) -> AsyncEngine:
    """An async engine; on SQLite with WAL, foreign keys and a busy timeout.

    Its errors do not quote their statement's parameters (``hide_parameters``): an error is logged, and
    parameters carry status messages and hashes of sign-in secrets."""
    url = async_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def connect() -> Any:
        """A new connection, within ``CONNECT_TIMEOUT``; a database that cannot be reached is unavailable."""
        try:
            return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)
        except Exception as error:
            if is_outage(error):
                raise unavailable(error) from None
            raise

    engine = create_async_engine(
        url,
        pool_size=pool_size + 2,
        max_overflow=pool_size + 2,
        pool_timeout=CONNECT_TIMEOUT,
        async_creator=connect,
        hide_parameters=True,
    )
    answer_outages_as_unavailable(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    # The driver's own implicit BEGIN is off; ``_sqlite_begin`` says how to begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before it is acknowledged, even across a power cut
    # (NORMAL in WAL mode may lose the last commits on an OS crash).
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Write transactions take SQLite's write lock at once (``BEGIN IMMEDIATE``).

    A deferred transaction that reads, then writes after another writer
    committed, fails at once with SQLITE_BUSY (its snapshot is stale); taking
    the lock first makes writers queue instead, each waiting up to the busy
    timeout. Transactions that only read begin deferred.
    """
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITER) else "BEGIN")


#: Execution option that marks a connection's transactions as writes.
WRITER = "presenced_writer"


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration."""
    try:
        with quiet():  # a database that cannot be reached is the one line below
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade)
    except ServiceUnavailable as exc:  # the engine's word for a database it cannot reach
        cause = exc.__context__ or exc
        raise ConfigurationError(f"cannot reach the database (--database-url): {_first_line(cause)}") from exc
    except (OperationalError, DBAPIError, OSError) as exc:
        raise ConfigurationError(f"cannot reach the database (--database-url): {_first_line(exc)}") from exc


def _upgrade(connection: Connection) -> None:
    config = _migrations()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _migrations() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


class SqlSchemaState:
    """Where the database's schema stands against this version's migrations (``services.ports.SchemaState``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        scripts = ScriptDirectory.from_config(_migrations())
        self._newest = frozenset(scripts.get_heads())
        self._known = frozenset(script.revision for script in scripts.walk_revisions())

    async def migration(self) -> Migration:
        async with self._engine.connect() as connection:
            current = frozenset(await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_heads()))
        if not current:
            return "none"
        if current == self._newest:
            return "newest"
        return "behind" if current <= self._known else "ahead"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__

"""Copies of the SQLite database, taken and checked while servers use it; PostgreSQL's version.

A copy is taken with SQLite's online backup API in one step: one read transaction, so the copy is
the database as it was at one commit. In WAL mode the servers' writers go on meanwhile; what they
commit after the copy began is not in it. The copy is a single file (rollback journal, no ``-wal``)
that ``sqlite3`` opens as it is.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import asyncpg
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from presenced.errors import ConfigurationError
from presenced.store.engine import MIGRATIONS, create_engine, upgrade

#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000


def schema_revisions() -> list[str]:
    """Every schema revision, oldest first; the last is the newest."""
    scripts = ScriptDirectory(str(MIGRATIONS))
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def is_sqlite_file(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def database_revision(path: Path, what: str) -> str:
    """The schema revision of the presenced database in the SQLite file ``path``; ``what`` names the
    file in the error when it is not one (or one a newer presenced wrote)."""
    if not is_sqlite_file(path):
        raise ConfigurationError(f"{what} is not a presenced database (not an SQLite file)")
    try:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.DatabaseError as exc:
        raise ConfigurationError(f"{what} is not a presenced database ({exc})") from None
    revisions = schema_revisions()
    if len(rows) != 1:
        raise ConfigurationError(f"{what} is not a presenced database (no schema revision)")
    revision = str(rows[0][0])
    if revision not in revisions:
        raise ConfigurationError(
            f"{what} has schema revision {revision}, which this presenced (newest {revisions[-1]}) does not know"
        )
    return revision


def copy_database(source: Path, target: Path, what: str) -> str:
    """Copy the SQLite database ``source`` to the new file ``target`` (readable by its owner only), while
    other processes may be writing it; the copy's schema revision. ``what`` names the source in errors
    (one that is not a presenced database is one); ``target`` is removed on failure."""
    if not is_sqlite_file(source):
        raise ConfigurationError(f"{what} is not a presenced database (not an SQLite file)")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        with contextlib.closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_MS / 1000)) as src:
            src.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            with contextlib.closing(sqlite3.connect(target)) as dst:
                src.backup(dst)  # every page in one step: one read transaction, one commit's state
                dst.execute("PRAGMA journal_mode=DELETE")
                check = dst.execute("PRAGMA quick_check").fetchone()
                if check is None or check[0] != "ok":
                    raise ConfigurationError(f"the copy of {what} failed its check: {check}")
        with target.open("rb") as written:
            os.fsync(written.fileno())
        return database_revision(target, what)
    except sqlite3.OperationalError as exc:  # locked, busy, out of space, ...
        target.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot copy {what}: {exc}") from None
    except sqlite3.DatabaseError as exc:  # a damaged file, or not a database at all
        target.unlink(missing_ok=True)
        raise ConfigurationError(f"{what} is not a presenced database ({exc})") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def sealed_key_count(path: Path) -> int:
    """How many signing keys the SQLite database ``path`` keeps sealed (none while they are kept in a folder,
    or at a revision before the keys could move in)."""
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM signing_keys").fetchone()[0])
        except sqlite3.OperationalError:  # no such table
            return 0


async def migrate_file(path: Path) -> None:
    """Bring the SQLite database ``path`` to the newest schema."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def postgres_server_version(url: str) -> str:
    """``SHOW server_version`` of the PostgreSQL server at ``url``."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise ConfigurationError(f"cannot reach the database (--database-url): {exc}") from None
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()

"""Backups from the command line: ``presenced db backup FILE`` and ``presenced db restore FILE``.

On SQLite a backup is a consistent copy of the database, taken while servers serve and write
(SQLite's online backup API): the database file alone, or with ``--with-keys`` a gzip-compressed
tar archive holding ``presenced.db`` and the signing keys (``keys/*.pem``), which are not in the
database. A restore fills an empty data directory and migrates the database to the newest schema.
On PostgreSQL both commands say which PostgreSQL tools to use instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import click

from presenced.cli.common import load_settings, run, store_options
from presenced.config import Settings, prepare_data_dir
from presenced.errors import ConfigurationError

#: The database's name in the data directory and in an archive.
DATABASE = "presenced.db"
#: The folder of the signing keys in the data directory and in an archive.
KEYS = "keys"


@click.command("backup")
@store_options
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--with-keys",
    is_flag=True,
    help="Write a tar archive (gzip) of the database and the signing keys (keys/), which are not in the database.",
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def backup(data_dir: Path | None, database_url: str | None, file: Path, with_keys: bool, force: bool) -> None:
    """Back up the SQLite database to FILE, consistently, while servers run.

    FILE is the database alone (an SQLite file), or with --with-keys a tar archive of the database and the
    signing keys. On PostgreSQL, use pg_dump (this command names the versions)."""
    from presenced.bootstrap import copy_sqlite_database, newest_schema_revision, sealed_keys_in
    from presenced.oauth.keys import key_files

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    if settings.database_url:
        raise ConfigurationError(_use_pg_dump(settings))
    source = settings.data_dir / DATABASE
    if not source.is_file():
        raise ConfigurationError(f"there is no database in {settings.data_dir} (--data-dir)")
    if file.resolve().parent == settings.data_dir.resolve() and file.name.startswith(DATABASE):
        raise ConfigurationError(f"{file} is the database itself: write the backup somewhere else")
    if file.exists() and not force:
        raise ConfigurationError(f"{file} exists: give --force to overwrite it")
    if not file.parent.is_dir():
        raise ConfigurationError(f"cannot write {file}: the folder {file.parent} does not exist")
    copy = _partial(file)
    archive = _partial(file, "tar") if with_keys else None
    try:
        revision = copy_sqlite_database(source, copy, f"the database {source}")
        sealed = sealed_keys_in(copy)
        if sealed and with_keys:
            raise ConfigurationError(
                "the signing keys are sealed in the database, so a backup holds them without --with-keys "
                "(restoring it needs the same PRESENCED_KEYS_SECRET)"
            )
        keys = key_files(settings.data_dir)
        if archive is not None:
            _write_archive(archive, copy, keys)
            os.replace(archive, file)
        else:
            os.replace(copy, file)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {file}: {exc.strerror}") from None
    finally:
        copy.unlink(missing_ok=True)
        if archive is not None:
            archive.unlink(missing_ok=True)
    newest = " (the newest)" if revision == newest_schema_revision() else ""
    size = file.stat().st_size
    if with_keys:
        click.echo(
            f"wrote {file} ({size} bytes): a tar archive of the database of {settings.data_dir}, "
            f"schema revision {revision}{newest}, and its {len(keys)} signing keys"
        )
        click.echo("it holds the private signing keys: keep it as safe as the data directory")
    elif sealed:
        click.echo(
            f"wrote {file} ({size} bytes): the SQLite database of {settings.data_dir}, "
            f"schema revision {revision}{newest}, with its {sealed} signing keys sealed: a server restored "
            "from it needs the same PRESENCED_KEYS_SECRET"
        )
    else:
        click.echo(
            f"wrote {file} ({size} bytes): the SQLite database of {settings.data_dir}, "
            f"schema revision {revision}{newest}"
        )
        click.echo(
            f"the signing keys are not in it: keep a copy of {settings.data_dir / KEYS} too "
            "(or back up with --with-keys), or tokens signed before will not verify after a restore"
        )


@click.command("restore")
@store_options
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def restore(data_dir: Path | None, database_url: str | None, file: Path) -> None:
    """Restore a backup into an empty data directory, migrated to the newest schema.

    FILE is what `db backup` wrote: the database alone, or an archive with the signing keys. On
    PostgreSQL, use pg_restore or psql."""
    from presenced.bootstrap import (
        copy_sqlite_database,
        is_sqlite_database,
        migrate_sqlite_file,
        newest_schema_revision,
        sealed_keys_in,
    )
    from presenced.oauth.keys import install_keys, key_files

    settings = load_settings(data_dir=data_dir, database_url=database_url)
    if settings.database_url:
        raise ConfigurationError(
            "the database is PostgreSQL: restore a pg_dump with pg_restore (custom or directory format) "
            "or psql (plain SQL), then run presenced db upgrade"
        )
    if not file.is_file():
        raise ConfigurationError(f"{file} does not exist")
    archive = not is_sqlite_database(file) and _is_archive(file)
    if not archive and not is_sqlite_database(file):
        raise _not_a_backup(file, "neither an SQLite database nor an archive of db backup --with-keys")
    target = settings.data_dir
    if any((target / name).exists() for name in (DATABASE, f"{DATABASE}-wal")):
        raise ConfigurationError(
            f"{target} already holds a database: restore into an empty data directory (--data-dir)"
        )
    keys = _read_archive_keys(file) if archive else None
    if keys and key_files(target):
        raise ConfigurationError(
            f"{target} already holds signing keys ({target / KEYS}): restore into an empty data directory (--data-dir)"
        )
    created = not target.exists()
    prepare_data_dir(target)
    staged = _partial(target / DATABASE)
    try:
        with _database_of(file, archive, target) as database:
            revision = copy_sqlite_database(database, staged, str(file))
        run(lambda: migrate_sqlite_file(staged))
        if keys:
            install_keys(target, keys)
        os.replace(staged, target / DATABASE)
    except BaseException as exc:
        for leftover in (staged, *(staged.with_name(f"{staged.name}{end}") for end in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
        if created:
            _remove_new_data_dir(target)
        if isinstance(exc, OSError):
            raise ConfigurationError(f"cannot restore into {target}: {exc.strerror or exc}") from None
        raise
    newest = newest_schema_revision()
    upgraded = "the newest" if revision == newest else f"migrated to {newest}, the newest"
    click.echo(f"restored {file} into {target}: the database at schema revision {revision} ({upgraded})")
    held = len(key_files(target))
    sealed = sealed_keys_in(target / DATABASE)
    if sealed:
        click.echo(
            f"with its {sealed} signing keys sealed in the database: serve it with the same PRESENCED_KEYS_SECRET"
        )
    elif keys:
        click.echo(f"with its {len(keys)} signing keys in {target / KEYS}")
    elif held:
        click.echo(f"the backup holds no signing keys: {target / KEYS} holds {held}, which the server will use")
    else:
        click.echo(
            f"the backup holds no signing keys: copy the old data directory's keys/ folder to {target / KEYS} "
            "before serving, or the server makes new keys and tokens signed before will not verify"
        )


# ---- PostgreSQL


def _use_pg_dump(settings: Settings) -> str:
    """The one line that sends a PostgreSQL user to pg_dump, with the server's version and the local one's."""
    from presenced.bootstrap import postgres_version

    assert settings.database_url is not None
    server = run(lambda: postgres_version(settings.database_url or ""))
    major = _major(server)
    local = _local_pg_dump()
    if local is None:
        tool = f"there is no pg_dump on PATH (install the PostgreSQL {major} client)"
    elif _major(local) == major:
        tool = f"pg_dump on PATH is {local}, the same major version"
    else:
        tool = (
            f"pg_dump on PATH is {local}, not the server's major version {major} "
            "(pg_dump dumps servers of its own major version or older)"
        )
    keys = settings.data_dir / KEYS
    return (
        f"the database is PostgreSQL (server version {server.split()[0]}, major version {major}): back it up "
        f"with pg_dump, and copy {keys} (the signing keys, not in the database); {tool}"
    )


def _major(version: str) -> str:
    """The major version in a PostgreSQL version string: ``16`` of ``16.4 (Debian ...)``, ``9.6`` of ``9.6.24``."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version.strip())
    if match is None:
        return version.strip()
    first, second = match.groups()
    return f"{first}.{second}" if int(first) < 10 and second is not None else first


def _local_pg_dump() -> str | None:
    """The version of the pg_dump on PATH (``16.4``), None if there is none."""
    program = shutil.which("pg_dump")
    if program is None:
        return None
    try:
        output = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+(?:\.\d+)*)", output.stdout)
    return match.group(1) if match else None


# ---- files


def _partial(file: Path, kind: str = "db") -> Path:
    """A new file's name while it is written, next to it: renamed to ``file`` only once complete."""
    return file.with_name(f".{file.name}.{os.getpid()}.{kind}.partial")


def _write_archive(archive: Path, database: Path, keys: list[Path]) -> None:
    fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            tar.add(database, arcname=DATABASE, recursive=False, filter=_owner_only)
            for key in keys:
                tar.add(key, arcname=f"{KEYS}/{key.name}", recursive=False, filter=_owner_only)
        out.flush()
        os.fsync(out.fileno())


def _owner_only(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.mode = 0o600
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def _is_archive(file: Path) -> bool:
    try:
        return tarfile.is_tarfile(file)
    except OSError:
        return False


def _not_a_backup(file: Path, why: str) -> ConfigurationError:
    return ConfigurationError(f"{file} is not a presenced backup ({why})")


def _archive_members(file: Path, tar: tarfile.TarFile) -> tuple[tarfile.TarInfo, list[tarfile.TarInfo]]:
    """The database and the key files of an archive ``backup --with-keys`` wrote; anything else in it
    (another name, a link, a folder of keys within keys) makes it not a backup."""
    database, keys = None, []
    for member in tar.getmembers():
        folder, _, name = member.name.partition("/")
        if member.name == DATABASE and member.isfile() and database is None:
            database = member
        elif folder == KEYS and name and member.isfile():
            keys.append(member)
        else:
            raise _not_a_backup(file, f"it holds {member.name!r}")
    if database is None:
        raise _not_a_backup(file, f"no {DATABASE} in the archive")
    return database, keys


def _read_archive_keys(file: Path) -> dict[str, bytes]:
    """The key files of an archive, checked to be keys, by name."""
    from presenced.oauth.keys import is_key_file

    try:
        with tarfile.open(file, "r:*") as tar:
            _database, members = _archive_members(file, tar)
            keys = {}
            for member in members:
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                name, pem = member.name.partition("/")[2], source.read()
                if not is_key_file(name, pem):
                    raise _not_a_backup(file, f"{member.name} is not a signing key")
                keys[name] = pem
            return keys
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _not_a_backup(file, f"a damaged archive: {exc}") from None


@contextlib.contextmanager
def _database_of(file: Path, archive: bool, target: Path) -> Iterator[Path]:
    """The database file of a backup: the file itself, or the archive's ``presenced.db`` unpacked next to
    ``target``'s (and removed afterwards)."""
    if not archive:
        yield file
        return
    unpacked = _partial(target / DATABASE, "unpacked")
    try:
        with tarfile.open(file, "r:*") as tar:
            member, _keys = _archive_members(file, tar)
            source = tar.extractfile(member)
            assert source is not None
            fd = os.open(unpacked, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out)
    except (tarfile.TarError, EOFError) as exc:
        unpacked.unlink(missing_ok=True)
        raise _not_a_backup(file, f"a damaged archive: {exc}") from None
    try:
        yield unpacked
    finally:
        unpacked.unlink(missing_ok=True)


def _remove_new_data_dir(target: Path) -> None:
    """Undo ``prepare_data_dir`` on a data directory this restore created: it holds only its ``.gitignore``."""
    with contextlib.suppress(OSError):
        (target / ".gitignore").unlink()
        target.rmdir()

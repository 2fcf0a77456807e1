"""`presenced db backup` and `presenced db restore`: a backup taken while a real server takes writes holds
every write acknowledged before it began, and a server on the restored data directory serves it with
the same signing keys; the refusals are one line each and change nothing; PostgreSQL is sent to pg_dump.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import shutil
import sqlite3
import ssl
import subprocess
import tarfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from presenced.oauth.keys import SigningKeys
from presenced.oauth.tokens import mint_access_token
from presenced.services.demo import DEMO_DAEMON_APP_ID, DEMO_DOMAIN, DEMO_TENANT_ID, demo_user_id
from presenced.store.backup import migrate_file
from presenced.store.engine import MIGRATIONS
from presenced.store.schema import metadata
from tests.cli.test_cli import presenced
from tests.e2e.server_process import ServerProcess, running_server

#: The pairs each user's writes alternate between: every write changes what readers see, so each one
#: acknowledged is one entry of the user's presence history.
PAIRS = (("Available", "Available"), ("Busy", "InACall"))
#: Users without presence of their own (the demo's Nestor, and users this test creates).
WRITTEN = ("nestor", "backup1", "backup2", "backup3")
BACKUPS = 3
#: Writes acknowledged before the first backup, and between one backup and the next.
WRITES_BETWEEN = 60
#: How long the test waits for the writer's progress before it gives up on a stalled server.
STALL_GUARD = 120.0


@dataclass
class Load:
    """setPresence writes from one thread, round robin over the users, each user's alternating in ``PAIRS``."""

    client: httpx.Client
    users: list[str]
    #: (user id, the user's write number) of every write answered 200, in the order answered.
    acked: list[tuple[str, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    progress: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        written = dict.fromkeys(self.users, 0)
        try:
            while not self.stop.is_set():
                for user in self.users:
                    availability, activity = PAIRS[written[user] % 2]
                    body = {
                        "sessionId": DEMO_DAEMON_APP_ID,
                        "availability": availability,
                        "activity": activity,
                        "expirationDuration": "PT1H",
                    }
                    response = self.client.post(f"/v1.0/users/{user}/presence/setPresence", json=body)
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                        return
                    with self.progress:
                        self.acked.append((user, written[user]))
                        self.progress.notify_all()
                    written[user] += 1
        finally:
            with self.progress:
                self.stop.set()
                self.progress.notify_all()

    def acknowledged(self) -> int:
        with self.progress:
            return len(self.acked)

    def wait_for(self, count: int) -> None:
        """Until ``count`` writes are acknowledged (the writer stopping early fails the test)."""
        with self.progress:
            done = self.progress.wait_for(lambda: len(self.acked) >= count or self.stop.is_set(), STALL_GUARD)
        assert done, f"the writer stopped after {len(self.acked)} writes: {self.failures}"


def _client(server: ServerProcess, token: str) -> httpx.Client:
    tls = ssl.create_default_context(cafile=str(server.bundle))
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, verify=tls, trust_env=False, timeout=30
    )


def _history(client: httpx.Client, user: str) -> list[tuple[str, str]]:
    """The (availability, activity) of each setPresence entry of the user's presence history, oldest first."""
    entries: list[tuple[str, str]] = []
    url: str | None = f"/_ext/users/{user}/presence/history?$top=999"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        entries += [(e["availability"], e["activity"]) for e in page["value"] if e["cause"] == "setPresence"]
        url = page.get("@odata.nextLink")
    return entries


def test_backups_under_load_hold_every_write_acknowledged_before_they_began(tmp_path: Path, key_folder: Path) -> None:
    """Backups taken while a server takes setPresence writes; each, restored into a new data directory and
    served, has every write acknowledged before its backup began, and verifies the original keys' tokens."""
    data_dir = tmp_path / "data"
    backups: list[tuple[Path, int]] = []  # each backup, and how many writes were acknowledged before it began
    during = 0  # writes acknowledged while a backup ran
    with running_server(data_dir, "--throttle", "off", key_folder=key_folder) as server:
        created = [
            server.cli("user", "create", f"{name}@{DEMO_DOMAIN}", "--password", "backup-pw-1").strip()
            for name in WRITTEN[1:]
        ]
        users = [demo_user_id(WRITTEN[0]), *created]
        token = server.cli("token", "--app", DEMO_DAEMON_APP_ID, "--roles", "Presence.ReadWrite.All").strip()
        with _client(server, token) as client:
            load = Load(client, users)
            writer = threading.Thread(target=load.run, name="backup-test-writer")
            writer.start()
            try:
                for n in range(BACKUPS):
                    load.wait_for(load.acknowledged() + WRITES_BETWEEN)
                    file = tmp_path / f"backup-{n}.tar.gz"
                    before = load.acknowledged()
                    result = presenced("db", "backup", str(file), "--with-keys", data_dir=data_dir)
                    assert result.returncode == 0, result.stderr
                    assert f"wrote {file}" in result.stdout
                    assert "schema revision" in result.stdout
                    during += load.acknowledged() - before
                    backups.append((file, before))
            finally:
                load.stop.set()
                writer.join(timeout=60)
        assert not load.failures, load.failures
        assert during > 0, "no write was acknowledged while a backup ran"
        acked = list(load.acked)

    original_keys = SigningKeys.load_or_create(data_dir)
    for n, (file, before) in enumerate(backups):
        restored = tmp_path / f"restored-{n}"
        result = presenced("db", "restore", str(file), data_dir=restored)
        assert result.returncode == 0, result.stderr
        assert "signing keys" in result.stdout
        assert sorted(p.name for p in (restored / "keys").iterdir()) == sorted(p.name for p in key_folder.iterdir())
        with running_server(restored, demo=False) as server:
            # A token signed with the original data directory's keys verifies on the restored server.
            token = mint_access_token(
                original_keys, server.url, DEMO_TENANT_ID, app_id=DEMO_DAEMON_APP_ID, now=datetime.now(UTC),
                roles=["Presence.Read.All"],
            )  # fmt: skip
            with _client(server, token) as client:
                for user in users:
                    expected = sum(1 for who, _number in acked[:before] if who == user)
                    history = _history(client, user)
                    assert len(history) >= expected, f"backup {n}: {user} has {len(history)} of {expected} writes"
                    assert history[:expected] == [PAIRS[i % 2] for i in range(expected)]
                    # What the user's presence reads now is their last stored write.
                    if history:
                        response = client.get(f"/v1.0/users/{user}/presence")
                        assert response.status_code == 200, response.text
                        assert (response.json()["availability"], response.json()["activity"]) == history[-1]


# ---- refusals: one line, exit status 2, nothing changed


@pytest.fixture
def data_dir(tmp_path: Path, key_folder: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(key_folder, folder / "keys")
    asyncio.run(migrate_file(folder / "presenced.db"))
    return folder


def _refused(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("presenced: error: ")
    assert says in lines[0]
    assert result.stdout == ""


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_backup_without_keys_is_the_sqlite_database_and_says_where_the_keys_are(
    data_dir: Path, tmp_path: Path
) -> None:
    """Without --with-keys the file is the database itself (readable by its owner only); the output names
    the file, its size, the schema revision and the keys folder it does not hold."""
    file = tmp_path / "presenced-backup.db"
    result = presenced("db", "backup", str(file), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    head = _head_revision()
    assert f"wrote {file} ({file.stat().st_size} bytes)" in result.stdout
    assert f"schema revision {head} (the newest)" in result.stdout
    assert str(data_dir / "keys") in result.stdout
    assert file.stat().st_mode & 0o077 == 0
    with contextlib.closing(sqlite3.connect(file)) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_backup_refuses_to_overwrite_without_force(data_dir: Path, tmp_path: Path) -> None:
    """An existing FILE is kept unless --force; with --force it is replaced by the backup."""
    file = tmp_path / "existing.db"
    file.write_bytes(b"keep me")
    _refused(presenced("db", "backup", str(file), data_dir=data_dir), f"{file} exists: give --force")
    assert file.read_bytes() == b"keep me"
    result = presenced("db", "backup", str(file), "--force", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert file.read_bytes().startswith(b"SQLite format 3\x00")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_backup_refuses_to_write_over_the_database_itself(data_dir: Path) -> None:
    before = _tree(data_dir)
    database = data_dir / "presenced.db"
    _refused(presenced("db", "backup", str(database), "--force", data_dir=data_dir), "is the database itself")
    assert _tree(data_dir) == before


def test_backup_of_a_data_directory_without_a_database_is_refused(tmp_path: Path) -> None:
    _refused(
        presenced("db", "backup", str(tmp_path / "b.db"), data_dir=tmp_path / "empty"),
        f"there is no database in {tmp_path / 'empty'}",
    )
    assert not (tmp_path / "b.db").exists()
    assert not (tmp_path / "empty").exists()


def test_restore_refuses_a_data_directory_that_holds_a_database(data_dir: Path, tmp_path: Path) -> None:
    """Restoring over a database is refused, whatever the backup; the data directory is left as it was."""
    file = tmp_path / "backup.tar.gz"
    assert presenced("db", "backup", str(file), "--with-keys", data_dir=data_dir).returncode == 0
    before = _tree(data_dir)
    _refused(presenced("db", "restore", str(file), data_dir=data_dir), "already holds a database")
    assert _tree(data_dir) == before


def test_restore_of_an_archive_refuses_a_data_directory_that_holds_keys(data_dir: Path, tmp_path: Path) -> None:
    """An archive's keys never mix with other keys: a data directory with keys (and no database) is refused."""
    file = tmp_path / "backup.tar.gz"
    assert presenced("db", "backup", str(file), "--with-keys", data_dir=data_dir).returncode == 0
    other = tmp_path / "other"
    SigningKeys.load_or_create(other)
    before = _tree(other)
    _refused(presenced("db", "restore", str(file), data_dir=other), "already holds signing keys")
    assert _tree(other) == before


def test_restore_of_a_database_alone_uses_the_keys_already_there(
    data_dir: Path, tmp_path: Path, key_folder: Path
) -> None:
    """A backup without keys restores next to keys copied in beforehand, and says it will use them."""
    file = tmp_path / "backup.db"
    assert presenced("db", "backup", str(file), data_dir=data_dir).returncode == 0
    target = tmp_path / "target"
    shutil.copytree(key_folder, target / "keys")
    result = presenced("db", "restore", str(file), data_dir=target)
    assert result.returncode == 0, result.stderr
    assert f"{target / 'keys'} holds 2" in result.stdout
    fresh = tmp_path / "fresh"
    result = presenced("db", "restore", str(file), data_dir=fresh)
    assert result.returncode == 0, result.stderr
    assert "copy the old data directory's keys/ folder" in result.stdout


@pytest.mark.parametrize(
    "kind", ["missing", "text", "sqlite", "newer", "tar", "tar-with-other-file", "tar-with-bad-key"]
)
def test_restore_refuses_what_is_not_a_backup_and_changes_nothing(tmp_path: Path, kind: str) -> None:
    """A missing file, a file that is neither a database nor an archive, an SQLite database that is not
    presenced's or one a newer presenced wrote, an archive with something else in it: one line, and no
    data directory is made."""
    file = tmp_path / "input"
    says = "is not a presenced"
    if kind == "missing":
        says = "does not exist"
    elif kind == "text":
        file.write_text("not a backup\n")
    elif kind == "sqlite":
        with contextlib.closing(sqlite3.connect(file)) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
            conn.commit()
    elif kind == "newer":
        with contextlib.closing(sqlite3.connect(file)) as conn:
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            conn.execute("INSERT INTO alembic_version VALUES ('9999')")
            conn.commit()
        says = "has schema revision 9999, which this presenced"
    else:
        with tarfile.open(file, "w:gz") as tar:
            _add(tar, "presenced.db", b"SQLite format 3\x00")
            if kind == "tar-with-other-file":
                _add(tar, "etc/passwd", b"root")
            if kind == "tar-with-bad-key":
                _add(tar, "keys/0001-x.pem", b"-----BEGIN NOTHING-----")
    if kind == "tar":
        says = "is not a presenced database"
    target = tmp_path / "data"
    _refused(presenced("db", "restore", str(file), data_dir=target), says)
    assert not target.exists()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    tar.addfile(member, io.BytesIO(data))


def test_restore_migrates_an_older_backup_to_the_newest_schema(tmp_path: Path) -> None:
    """A backup of an earlier schema comes up to date, as `db upgrade` brings it, and says so."""
    old = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{old}")
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
    engine.dispose()
    target = tmp_path / "data"
    result = presenced("db", "restore", str(old), data_dir=target)
    assert result.returncode == 0, result.stderr
    head = _head_revision()
    assert f"schema revision 0007 (migrated to {head}, the newest)" in result.stdout
    with contextlib.closing(sqlite3.connect(target / "presenced.db")) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (head,)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(metadata.tables) <= tables


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


# ---- PostgreSQL: the PostgreSQL tools


@pytest.mark.postgres
def test_on_postgresql_backup_and_restore_name_the_postgresql_tools(postgres_url: str, tmp_path: Path) -> None:
    """backup names pg_dump, the server's major version and whether the local pg_dump matches it; restore
    names pg_restore and psql; neither writes anything."""
    server = asyncio.run(_server_version(postgres_url))
    major = server.split(".")[0]
    file = tmp_path / "dump"
    result = presenced("db", "backup", str(file), "--database-url", postgres_url, data_dir=tmp_path / "data")
    _refused(result, f"the database is PostgreSQL (server version {server.split()[0]}, major version {major})")
    assert "pg_dump" in result.stderr
    local = shutil.which("pg_dump")
    if local is None:
        assert "there is no pg_dump on PATH" in result.stderr
    else:
        version = subprocess.run([local, "--version"], capture_output=True, text=True, check=True).stdout
        same = re.search(r"\s(\d+)", version)
        assert same is not None
        expected = "the same major version" if same.group(1) == major else f"not the server's major version {major}"
        assert expected in result.stderr
    assert not file.exists()
    file.write_bytes(b"-- a pg_dump")
    result = presenced("db", "restore", str(file), "--database-url", postgres_url, data_dir=tmp_path / "data")
    _refused(result, "pg_restore")
    assert "psql" in result.stderr
    assert not (tmp_path / "data").exists()


async def _server_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()

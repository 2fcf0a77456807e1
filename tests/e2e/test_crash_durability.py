"""Nothing acknowledged is lost when the server dies mid-burst (SIGKILL), on SQLite and on PostgreSQL.

A real ``presenced serve`` process takes a burst of 2,000 setStatusMessage writes over 200 users
from 32 connections at once, so that group commit puts many writes in each transaction. Every
write sets a status message of its own, so each one changes the visible presence and logs exactly
one change-log entry that names it. Once 1,000 of them are acknowledged, the test kills the server
with SIGKILL (no shutdown of any kind), starts it again on the same store, and checks:

* every write that was answered 200 has its change-log entry, in the order its user's writes were
  answered;
* each user's stored status message is that of their last logged write, and the restarted server
  reads it back.

Writes cut off by the kill (no answer) may or may not have been stored: neither is an error, but
a stored one must come after its user's acknowledged writes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from presenced.bootstrap import build
from presenced.config import Settings
from presenced.oauth.keys import SigningKeys
from presenced.oauth.tokens import mint_access_token
from presenced.services.entities import Tenant, User
from presenced.store.codec import decode_visible
from presenced.store.schema import presence_changes

TENANT = Tenant(str(uuid.UUID("7a1c7e4e-44a5-4c43-9f0b-d7c3b2f1a001")), "Crash test")
APP = "5d0f8a7e-2b6c-4a1f-8e3d-9c4b7a6e5d01"
USERS = 200
CONNECTIONS = 32
WRITES = 2000
KILL_AFTER = 1000
START_TIMEOUT = 60.0


def _users() -> list[User]:
    return [
        User(str(uuid.uuid5(uuid.UUID(TENANT.id), str(n))), TENANT.id, f"crash{n}@contoso.example", f"Crash {n}")
        for n in range(USERS)
    ]


async def _seed(settings: Settings) -> None:
    runtime = await build(settings)
    try:
        now = datetime.now(UTC)
        async with runtime.store.begin() as tx:
            await tx.put_tenant(TENANT, now)
            for user in _users():
                await tx.put_user(user, now)
    finally:
        await runtime.close()


def _start(data_dir: Path, database_url: str | None) -> tuple[subprocess.Popen[bytes], str]:
    log = data_dir.parent / f"serve-{time.monotonic_ns()}.log"
    store = ["--database-url", database_url] if database_url else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "presenced", "serve", "--http", "--port", "0", "--data-dir", str(data_dir), *store],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+)", log.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise AssertionError("server did not start:\n" + log.read_text(errors="replace"))


@dataclass
class Burst:
    #: user id -> the contents of the user's writes answered 200, in the order they were answered.
    acked: dict[str, list[str]] = field(default_factory=dict)
    #: Writes that got no answer (the server died under them).
    cut_off: int = 0
    sent: int = 0
    failures: list[str] = field(default_factory=list)


async def _burst(url: str, token: str, process: subprocess.Popen[bytes]) -> Burst:
    """32 writers, each writing its own users one write at a time; SIGKILL after ``KILL_AFTER`` answers."""
    burst = Burst()
    users = _users()
    answered = 0
    killed = False
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    headers = {"Authorization": f"Bearer {token}"}

    async def writer(n: int, client: httpx.AsyncClient) -> None:
        nonlocal answered, killed
        mine = users[n::CONNECTIONS]
        for k in range(WRITES // CONNECTIONS + 1):
            if burst.sent >= WRITES:
                return
            user = mine[k % len(mine)]
            content = f"write {n}.{k}"
            body = {"statusMessage": {"message": {"content": content, "contentType": "text"}}}
            burst.sent += 1
            try:
                response = await client.post(
                    f"{url}/v1.0/users/{user.id}/presence/setStatusMessage", json=body, headers=headers
                )
            except httpx.HTTPError:
                burst.cut_off += 1
                return  # the server is gone: this writer's remaining writes are never sent
            if response.status_code != 200:
                burst.failures.append(f"{content}: {response.status_code} {response.text[:200]}")
                continue
            burst.acked.setdefault(user.id, []).append(content)
            answered += 1
            if answered >= KILL_AFTER and not killed:
                killed = True
                os.kill(process.pid, signal.SIGKILL)

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.wait_for(asyncio.gather(*(writer(n, client) for n in range(CONNECTIONS))), 120)
    assert killed, f"the burst ended before {KILL_AFTER} writes were answered"
    return burst


async def _logged(settings: Settings) -> dict[str, list[str]]:
    """user id -> the status message of each of the user's change-log entries, in log order."""
    runtime = await build(settings, migrate=False)
    try:
        query = select(presence_changes.c.user_id, presence_changes.c.visible).order_by(presence_changes.c.id)
        async with runtime.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    finally:
        await runtime.close()
    logged: dict[str, list[str]] = {}
    for user_id, visible in rows:
        status = decode_visible(visible).status_message
        if status is not None:
            logged.setdefault(user_id, []).append(status.content)
    return logged


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_server_killed_mid_burst_loses_no_acknowledged_write(
    backend: str, tmp_path: Path, key_folder: Path, request: pytest.FixtureRequest
) -> None:
    """SIGKILL in the middle of 2,000 concurrent writes: every acknowledged write and its change-log entry survive."""
    database_url = request.getfixturevalue("clean_postgres_url") if backend == "postgres" else None
    data_dir = tmp_path / "data"
    shutil.copytree(key_folder, data_dir / "keys")
    settings = Settings(data_dir=data_dir, database_url=database_url)
    asyncio.run(_seed(settings))

    process, url = _start(data_dir, database_url)
    try:
        keys = SigningKeys.load_or_create(data_dir)
        token = mint_access_token(
            keys, url, TENANT.id, app_id=APP, now=datetime.now(UTC), roles=["Presence.ReadWrite.All"]
        )
        burst = asyncio.run(_burst(url, token, process))
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert not burst.failures, burst.failures[:5]
    acknowledged = sum(len(contents) for contents in burst.acked.values())
    assert acknowledged >= KILL_AFTER
    assert burst.cut_off > 0, "no write was in flight when the server died"

    restarted, url = _start(data_dir, database_url)
    try:
        token = mint_access_token(
            SigningKeys.load_or_create(data_dir),
            url,
            TENANT.id,
            app_id=APP,
            now=datetime.now(UTC),
            roles=["Presence.Read.All"],
        )
        logged = asyncio.run(_logged(settings))
        for user_id, contents in burst.acked.items():
            entries = logged.get(user_id, [])
            # The acknowledged writes, in their order, at the start of the user's log; after them at
            # most the user's one write that was cut off (each writer stops at its first failure).
            assert entries[: len(contents)] == contents, (user_id, contents, entries)
            assert len(entries) <= len(contents) + 1, (user_id, contents, entries)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            for user_id, entries in logged.items():
                body = client.get(f"/v1.0/users/{user_id}/presence").json()
                assert body["statusMessage"]["message"]["content"] == entries[-1]
    finally:
        restarted.terminate()
        restarted.wait(timeout=20)

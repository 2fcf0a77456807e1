"""Concurrent writes to one user through two real server processes sharing one PostgreSQL database.

Two ``presenced serve`` processes (the same signing keys, the same database) take a few hundred
parallel writes to the same user: setPresence from several applications (app-only and delegated),
clearPresence, setUserPreferredPresence/clearUserPreferredPresence and setStatusMessage. Each
writer sends its own requests one after the other, alternating between the servers, so its
last acknowledged write is well defined while the writers race each other. Afterwards the
database must hold exactly the last acknowledged value of every writer (no lost update), a
visible presence that ``aggregate`` computes from the stored facts, a change log whose sequence
numbers rise in id order and end at the stored state, and both servers must answer GET with it.

Two more tests order a race deterministically (the test holds the user's row lock itself and
checks in pg_stat_activity who waits for it).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from presenced.api import wire
from presenced.bootstrap import build
from presenced.config import Settings
from presenced.domain.aggregate import aggregate
from presenced.domain.model import Session
from presenced.domain.sequence import format_sequence, is_due
from presenced.oauth.keys import SigningKeys
from presenced.oauth.tokens import mint_access_token
from presenced.services.demo import DEMO_DOMAIN, DEMO_TENANT_ID, demo_user_id
from presenced.services.presence import PresenceView
from presenced.store.codec import decode_visible
from presenced.store.schema import presence_changes

pytestmark = pytest.mark.postgres

#: The demo user everybody writes: the demo gives them no presence facts at all.
NICKNAME = "nestor"
USER_ID = demo_user_id(NICKNAME)
UPN = f"{NICKNAME}@{DEMO_DOMAIN}"
_NS = uuid.UUID("3c1f6a0e-0f7d-4a8e-9d3b-6b7f1f0c2a55")
#: Applications writing their own sessions with app-only tokens; the first also clears its session now and then.
SESSION_APPS = tuple(str(uuid.uuid5(_NS, f"session-app-{i}")) for i in range(5))
#: The application of the user's own (delegated) token, writing its session through /me.
DELEGATED_APP = str(uuid.uuid5(_NS, "delegated-app"))
PREFERRED_APP = str(uuid.uuid5(_NS, "preferred-app"))
STATUS_APP = str(uuid.uuid5(_NS, "status-app"))
APP_ONLY = (*SESSION_APPS, PREFERRED_APP, STATUS_APP)

REQUESTS_PER_WRITER = 40
#: Every session outlives the test by far, and an Available session fades only after 5 minutes.
SESSION_DURATIONS = {"PT1H": timedelta(hours=1), "PT2H": timedelta(hours=2), "PT90M": timedelta(minutes=90)}
SESSION_PAIRS = (
    ("Available", "Available"),
    ("Busy", "InACall"),
    ("Busy", "InAConferenceCall"),
    ("Away", "Away"),
    ("DoNotDisturb", "Presenting"),
)
PREFERRED_PAIRS = (
    ("Available", "Available"),
    ("Busy", "Busy"),
    ("DoNotDisturb", "DoNotDisturb"),
    ("BeRightBack", "BeRightBack"),
    ("Away", "Away"),
    ("Offline", "OffWork"),
)
PREFERRED_DURATION = ("PT8H", timedelta(hours=8))
CAUSES = {
    "demo",
    "setPresence",
    "clearPresence",
    "setUserPreferredPresence",
    "clearUserPreferredPresence",
    "setStatusMessage",
}
#: Slack for comparing the server's clock readings with the test's (same machine, same clock).
SLACK = timedelta(seconds=1)
START_TIMEOUT = 60.0
PRESENCED = (sys.executable, "-m", "presenced")
LOAD_TIMEOUT = 45.0


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}


def _start(data_dir: Path, database_url: str, *extra: str) -> Server:
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *PRESENCED,
                "serve",
                "--http",
                "--port",
                "0",
                "--data-dir",
                str(data_dir),
                "--database-url",
                database_url,
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(),
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+)", log.read_text(errors="replace"))
        if match:
            return Server(process, match.group(1), data_dir, log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    _stop(process)
    raise AssertionError("server did not start:\n" + log.read_text(errors="replace"))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _mint_tokens(servers: list[Server], database_url: str) -> None:
    """Every writer's token for every server; the issuer is the server's URL.

    The user's delegated tokens come from ``presenced token --url`` (as a client would get
    them); the app-only ones are minted in process with the same keys and the same function,
    because each CLI run costs seconds of start-up on a small machine.
    """
    running = [
        (
            server,
            subprocess.Popen(
                [
                    *PRESENCED,
                    "token",
                    *("--user", UPN, "--scopes", "Presence.ReadWrite", "--app-id", DELEGATED_APP),
                    *("--url", server.url, "--data-dir", str(server.data_dir), "--database-url", database_url),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
            ),
        )
        for server in servers
    ]
    failures = []
    for server, process in running:
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        if process.returncode == 0:
            server.tokens[DELEGATED_APP] = out.strip()
        else:
            failures.append(f"token at {server.url}: {err.strip()}")
    assert not failures, "\n".join(failures)
    now = datetime.now(UTC)
    for server in servers:
        keys = SigningKeys.load_or_create(server.data_dir)
        for app in APP_ONLY:
            server.tokens[app] = mint_access_token(
                keys, server.url, DEMO_TENANT_ID, app_id=app, now=now, roles=["Presence.ReadWrite.All"]
            )


@pytest.fixture
def servers(tmp_path: Path, key_folder: Path, clean_postgres_url: str) -> Iterator[list[Server]]:
    """Two servers on the same database and keys; the first seeds the demo tenant before the second starts."""
    postgres_url = clean_postgres_url
    started: list[Server] = []
    try:
        for name, extra in (("one", ("--demo",)), ("two", ())):
            data_dir = tmp_path / name
            shutil.copytree(key_folder, data_dir / "keys")
            started.append(_start(data_dir, postgres_url, *extra))
        _mint_tokens(started, postgres_url)
        yield started
    finally:
        for server in started:
            _stop(server.process)


# --------------------------------------------------------------------------- writers


@dataclass
class Acked:
    """A write the server acknowledged, with the test's clock around it."""

    sent: datetime
    acked: datetime
    value: Any


@dataclass
class Load:
    """What the writers saw."""

    #: app id -> the last acknowledged setPresence (or clearPresence: value None).
    sessions: dict[str, Acked] = field(default_factory=dict)
    preferred: Acked | None = None
    status: Acked | None = None
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    requests: int = 0


async def _post(
    client: httpx.AsyncClient, server: Server, app: str, path: str, body: dict[str, Any], load: Load
) -> Acked | None:
    sent = datetime.now(UTC)
    try:
        response = await client.post(
            f"{server.url}/v1.0{path}", json=body, headers={"Authorization": f"Bearer {server.tokens[app]}"}
        )
    except httpx.HTTPError as exc:
        load.failures.append(f"{path} at {server.url}: {exc!r}")
        return None
    acked = datetime.now(UTC)
    load.requests += 1
    load.statuses[response.status_code] = load.statuses.get(response.status_code, 0) + 1
    if response.status_code != 200 or response.content:
        load.failures.append(f"{path} {body} at {server.url}: {response.status_code} {response.text[:300]}")
        return None
    return Acked(sent, acked, None)


async def _session_writer(
    client: httpx.AsyncClient, servers: list[Server], app: str, n: int, load: Load, clears: bool
) -> None:
    rng = random.Random(f"{app}:{n}")
    path = "/me/presence/setPresence" if app == DELEGATED_APP else f"/users/{USER_ID}/presence/setPresence"
    has_session = False
    for i in range(REQUESTS_PER_WRITER):
        server = servers[(i + n) % len(servers)]
        if clears and has_session and i % 4 == 3:
            clear = f"/users/{USER_ID}/presence/clearPresence"
            acked = await _post(client, server, app, clear, {"sessionId": app}, load)
            if acked is not None:
                load.sessions[app] = acked
                has_session = False
            continue
        availability, activity = rng.choice(SESSION_PAIRS)
        duration = rng.choice(sorted(SESSION_DURATIONS))
        body = {"sessionId": app, "availability": availability, "activity": activity, "expirationDuration": duration}
        acked = await _post(client, server, app, path, body, load)
        if acked is not None:
            acked.value = (availability, activity, SESSION_DURATIONS[duration])
            load.sessions[app] = acked
            has_session = True


async def _preferred_writer(client: httpx.AsyncClient, servers: list[Server], n: int, load: Load) -> None:
    rng = random.Random(f"preferred:{n}")
    for i in range(REQUESTS_PER_WRITER):
        server = servers[(i + n) % len(servers)]
        if i % 3 == 2:
            path, body, value = f"/users/{USER_ID}/presence/clearUserPreferredPresence", {}, None
        else:
            availability, activity = rng.choice(PREFERRED_PAIRS)
            path = f"/users/{USER_ID}/presence/setUserPreferredPresence"
            body = {"availability": availability, "activity": activity, "expirationDuration": PREFERRED_DURATION[0]}
            value = (availability, activity)
        acked = await _post(client, server, PREFERRED_APP, path, body, load)
        if acked is not None:
            acked.value = value
            load.preferred = acked


async def _status_writer(client: httpx.AsyncClient, servers: list[Server], n: int, load: Load) -> None:
    for i in range(REQUESTS_PER_WRITER):
        server = servers[(i + n) % len(servers)]
        content = "" if i % 5 == 4 else f"status {i} via {server.url}"
        body = {"statusMessage": {"message": {"content": content, "contentType": "text"}}}
        acked = await _post(client, server, STATUS_APP, f"/users/{USER_ID}/presence/setStatusMessage", body, load)
        if acked is not None:
            acked.value = content or None
            load.status = acked


async def _write_concurrently(servers: list[Server]) -> Load:
    """Eight writers in parallel, each sending its requests one after the other."""
    load = Load()
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        writers = [
            _session_writer(client, servers, app, n, load, clears=n == 0)
            for n, app in enumerate((*SESSION_APPS, DELEGATED_APP))
        ]
        writers.append(_preferred_writer(client, servers, len(writers), load))
        writers.append(_status_writer(client, servers, len(writers), load))
        await asyncio.wait_for(asyncio.gather(*writers), LOAD_TIMEOUT)
    return load


# --------------------------------------------------------------------------- checks


def _assert_within(instant: datetime, acked: Acked, offset: timedelta, what: str) -> None:
    """``instant`` is the server's clock reading while handling ``acked`` (plus ``offset``)."""
    low, high = acked.sent + offset - SLACK, acked.acked + offset + SLACK
    assert low <= instant <= high, f"{what}: {instant} is not between {low} and {high}"


def _check_sessions(sessions: tuple[Session, ...], load: Load) -> None:
    stored = {s.app_id: s for s in sessions}
    expected = {app: acked for app, acked in load.sessions.items() if acked.value is not None}
    assert set(stored) == set(expected), f"sessions of {sorted(stored)}, last acknowledged: {sorted(expected)}"
    for app, acked in expected.items():
        session = stored[app]
        availability, activity, duration = acked.value
        assert (session.availability.value, session.activity.value) == (availability, activity), app
        assert session.expires_at - session.refreshed_at == duration, app
        _assert_within(session.refreshed_at, acked, timedelta(0), f"refresh of {app}'s session")


async def _check_store(data_dir: Path, database_url: str, load: Load) -> dict[str, Any]:
    """Read the user's facts, state and change log; check (a), (b), (c). Returns the state for (d)."""
    runtime = await build(Settings(data_dir=data_dir, database_url=database_url))
    try:
        stored = await runtime.store.stored_presence(USER_ID)
        assert stored is not None
        facts, state = stored.facts, stored.state
        now = datetime.now(UTC)
        async with runtime.engine.connect() as conn:
            query = select(presence_changes).where(presence_changes.c.user_id == USER_ID)
            log = (await conn.execute(query.order_by(presence_changes.c.id))).all()
    finally:
        await runtime.close()

    # (a) No lost update: every writer's last acknowledged value is what is stored.
    _check_sessions(facts.sessions, load)
    assert load.preferred is not None
    if load.preferred.value is None:
        assert facts.preferred is None
    else:
        assert facts.preferred is not None
        assert (facts.preferred.availability.value, facts.preferred.activity.value) == load.preferred.value
        _assert_within(facts.preferred.expires_at, load.preferred, PREFERRED_DURATION[1], "preferred expiry")
    assert load.status is not None
    if load.status.value is None:
        assert facts.status_message is None
    else:
        assert facts.status_message is not None
        assert facts.status_message.content == load.status.value
        _assert_within(facts.status_message.published_at, load.status, timedelta(0), "status published")

    # (b) The stored visible presence is what the facts give. The state is materialised at the
    # last write and holds until its next_change_at, so with nothing due it is the aggregate at
    # any instant up to then, now included. (Not at changed_at: a write that leaves the visible
    # presence as it was keeps the old changed_at, while the facts it wrote are newer.)
    assert not is_due(state, now), f"a transition is due: {state.next_change_at} <= {now}"
    expected = aggregate(facts, now)
    assert state.visible == expected.visible
    assert state.next_change_at == expected.next_change_at

    # (c) The change log: sequences rise in id order, each entry changes the visible presence,
    # and the last entry is the stored state.
    assert log, "no change-log entries"
    sequences = [row.sequence for row in log]
    assert all(a < b for a, b in itertools.pairwise(sequences)), sequences
    visibles = [decode_visible(row.visible) for row in log]
    assert all(a != b for a, b in itertools.pairwise(visibles)), "an entry repeats the previous one"
    assert {row.cause for row in log} <= CAUSES
    assert log[-1].sequence == state.sequence
    assert visibles[-1] == state.visible
    assert sum(row.cause != "demo" for row in log) >= 2, "the writes changed the visible presence too rarely"
    return msgspec.to_builtins(wire.presence(PresenceView(USER_ID, state, own=False)))


def test_concurrent_writes_to_one_user_through_two_servers(servers: list[Server], postgres_url: str) -> None:
    """Parallel writes to one user through two processes lose nothing and leave state, log and reads consistent."""
    started = time.monotonic()
    load = asyncio.run(_write_concurrently(servers))
    elapsed = time.monotonic() - started
    writers = len(SESSION_APPS) + 3
    assert load.requests == writers * REQUESTS_PER_WRITER, (load.requests, load.failures[:5])
    assert not load.failures, f"{len(load.failures)} failed writes ({load.statuses}):\n" + "\n".join(load.failures[:10])
    assert load.statuses == {200: writers * REQUESTS_PER_WRITER}
    for server in servers:
        assert server.process.poll() is None, f"{server.url} exited:\n{server.log_text()}"

    expected = asyncio.run(_check_store(servers[0].data_dir, postgres_url, load))

    # (d) Both servers read what is stored.
    for server in servers:
        response = httpx.get(
            f"{server.url}/v1.0/users/{USER_ID}/presence",
            headers={"Authorization": f"Bearer {server.tokens[STATUS_APP]}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.pop("@odata.context") == f"{server.url}/v1.0/$metadata#users('{USER_ID}')/presence/$entity"
        assert body == expected, server.url
        assert body["sequenceNumber"] == expected["sequenceNumber"] == format_sequence(int(body["sequenceNumber"]))

    for server in servers:
        log = server.log_text()
        assert "Traceback" not in log, f"{server.url} logged errors:\n{log}"
        assert "ERROR" not in log, f"{server.url} logged errors:\n{log}"
    print(f"{load.requests} writes by {writers} writers through 2 servers in {elapsed:.1f} s")


# --------------------------------------------------------------------------- a write queued behind a mailbox PATCH

#: The demo user of the mailbox race (not the user above: each test reads its own user's log).
RACE_USER_ID = demo_user_id("alex")
MAILBOX_APP = str(uuid.uuid5(_NS, "mailbox-app"))


def _require(condition: bool, problem: str) -> None:
    """A precondition of a race test: its failure is an error, never the expected failure."""
    if not condition:
        raise RuntimeError(problem)


async def _lock_waiters(monitor: asyncpg.Connection, count: int) -> None:
    """Wait (bounded) until ``count`` sessions of this database wait for a lock."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        waiting = await monitor.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"fewer than {count} requests ever waited for the presence lock")


async def _mailbox_race(servers: list[Server], database_url: str, mailbox_token: str) -> dict[str, Any]:
    """PATCH automatic replies and setPresence queue, in that order, behind a held presence row lock.

    Each goes to a server of its own: within one process the setPresence would queue behind the
    PATCH's batch in the process's writer, never reaching the database's lock queue.
    """
    server, other = servers
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    holder = await asyncpg.connect(dsn, timeout=10)
    monitor = await asyncpg.connect(dsn, timeout=10)
    try:
        async with httpx.AsyncClient(base_url=f"{server.url}/v1.0", timeout=30) as client:
            held = holder.transaction()
            await held.start()
            await holder.execute("SELECT 1 FROM presences WHERE user_id = $1 FOR UPDATE", RACE_USER_ID)
            patch = asyncio.create_task(
                client.patch(
                    f"/users/{RACE_USER_ID}/mailboxSettings",
                    json={"automaticRepliesSetting": {"status": "alwaysEnabled", "internalReplyMessage": "Out today"}},
                    headers={"Authorization": f"Bearer {mailbox_token}"},
                )
            )
            await _lock_waiters(monitor, 1)
            app = SESSION_APPS[0]
            body = {"sessionId": app, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}
            write = asyncio.create_task(
                client.post(
                    f"{other.url}/v1.0/users/{RACE_USER_ID}/presence/setPresence",
                    json=body,
                    headers={"Authorization": f"Bearer {other.tokens[app]}"},
                )
            )
            await _lock_waiters(monitor, 2)
            await held.commit()
            patched, written = await asyncio.wait_for(asyncio.gather(patch, write), 20)
            _require(patched.status_code == 200, patched.text)
            _require(patched.json()["automaticRepliesSetting"]["status"] == "alwaysEnabled", patched.text)
            _require(written.status_code == 200, written.text)
            mailbox = await client.get(
                f"/users/{RACE_USER_ID}/mailboxSettings", headers={"Authorization": f"Bearer {mailbox_token}"}
            )
            presence = await client.get(
                f"/users/{RACE_USER_ID}/presence", headers={"Authorization": f"Bearer {server.tokens[app]}"}
            )
        stored = await monitor.fetchrow(
            "SELECT m.auto_reply_status, p.visible FROM mailbox_settings m JOIN presences p USING (user_id) "
            "WHERE user_id = $1",
            RACE_USER_ID,
        )
    finally:
        await holder.close()
        await monitor.close()
    return {
        "mailbox": mailbox.json()["automaticRepliesSetting"]["status"],
        "outOfOffice": presence.json()["outOfOfficeSettings"]["isOutOfOffice"],
        "stored": stored["auto_reply_status"],
        "visible": stored["visible"],
    }


def test_a_presence_write_queued_behind_a_mailbox_patch_keeps_the_patch(
    servers: list[Server], postgres_url: str
) -> None:
    """A setPresence that waited for the user's lock while a PATCH of automatic replies held it keeps the PATCH.

    Deterministic: the test holds the user's ``presences`` row lock itself, queues the PATCH
    (through one server) and then the setPresence (through the other) behind it, checking in
    pg_stat_activity that each is waiting, and lets go. The PATCH commits first; the setPresence,
    woken second, must build on it.
    """
    server = servers[0]
    mailbox_token = mint_access_token(
        SigningKeys.load_or_create(server.data_dir),
        server.url,
        DEMO_TENANT_ID,
        app_id=MAILBOX_APP,
        now=datetime.now(UTC),
        roles=["MailboxSettings.ReadWrite"],
    )
    seen = asyncio.run(_mailbox_race(servers, postgres_url, mailbox_token))
    assert seen["stored"] == "alwaysEnabled", seen
    assert seen["mailbox"] == "alwaysEnabled", seen
    assert seen["outOfOffice"] is True, seen


# --------------------------------------------------------------- a write whose instant passed while it waited

#: The demo user of the second race: Offline, no status message, nothing due for days.
LATE_USER_ID = demo_user_id("grady")
#: How far ahead the status message expires: long enough for the write to start before, short for the test.
EXPIRY_AHEAD = timedelta(seconds=3)


async def _late_write_race(servers: list[Server], database_url: str) -> dict[str, Any]:
    """A status message expires while a setPresence, started before the expiry, waits for the user's lock."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    holder = await asyncpg.connect(dsn, timeout=10)
    monitor = await asyncpg.connect(dsn, timeout=10)
    app = SESSION_APPS[1]
    one = servers[0]
    headers = {"Authorization": f"Bearer {one.tokens[app]}"}
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            expires = datetime.now(UTC) + EXPIRY_AHEAD
            status = {
                "message": {"content": "Back in a moment", "contentType": "text"},
                "expiryDateTime": {"dateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.%f"), "timeZone": "UTC"},
            }
            answer = await client.post(
                f"{one.url}/v1.0/users/{LATE_USER_ID}/presence/setStatusMessage",
                json={"statusMessage": status},
                headers=headers,
            )
            _require(answer.status_code == 200, answer.text)
            held = holder.transaction()
            await held.start()
            await holder.execute("SELECT 1 FROM presences WHERE user_id = $1 FOR UPDATE", LATE_USER_ID)
            body = {"sessionId": app, "availability": "Busy", "activity": "InACall", "expirationDuration": "PT1H"}
            write = asyncio.create_task(
                client.post(f"{one.url}/v1.0/users/{LATE_USER_ID}/presence/setPresence", json=body, headers=headers)
            )
            await _lock_waiters(monitor, 1)
            _require(datetime.now(UTC) < expires, "the machine is too slow for this test: the expiry passed already")
            await asyncio.sleep((expires - datetime.now(UTC)).total_seconds() + 0.3)
            # The expiry is due and not stored (the user is locked): a read computes it.
            before = (await client.get(f"{one.url}/v1.0/users/{LATE_USER_ID}/presence", headers=headers)).json()
            await held.commit()
            written = await asyncio.wait_for(write, 20)
            _require(written.status_code == 200, written.text)
            after = []
            for server in servers:
                token = {"Authorization": f"Bearer {server.tokens[app]}"}
                read = await client.get(f"{server.url}/v1.0/users/{LATE_USER_ID}/presence", headers=token)
                after.append(read.json())
    finally:
        await holder.close()
        await monitor.close()
    return {"before": before, "after": after}


def test_a_write_that_waited_past_a_due_transition_moves_the_sequence_forward(
    servers: list[Server], postgres_url: str
) -> None:
    """A write that waited past a due transition stores both, in order, and every server shows the result.

    Deterministic: a status message expires 3 s ahead; the test holds the user's lock, starts a
    setPresence (it queues), reads the presence after the expiry (reads show the stored state, and
    the locked user cannot be swept, so the message still shows), then lets the write through and
    reads from both servers: the expiry and the write, with a higher sequence number.
    """
    seen = asyncio.run(_late_write_race(servers, postgres_url))
    before, after = seen["before"], seen["after"]
    assert before["availability"] == "Offline", seen
    assert before["statusMessage"]["message"]["content"] == "Back in a moment", seen
    for body in after:
        assert (body["availability"], body["activity"], body["statusMessage"]) == ("Busy", "InACall", None), seen
        assert body["sequenceNumber"] > before["sequenceNumber"], seen

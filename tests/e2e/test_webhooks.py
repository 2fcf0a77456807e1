"""Change notifications end to end: real server and worker processes, a real webhook receiver on loopback.

* A rich subscription to a user with nothing set follows one app session through setPresence,
  its idle fade and its expiry (moved along with the manual clock): each change arrives once, with
  the subscription's clientState and resource, and the sequence numbers decrypted from the
  notifications rise and match what GET shows after each step.
* A worker SIGKILLed while notifications are in flight (a slow receiver) and pending loses none:
  a new worker delivers the rest, and takes the killed worker's again once their lease ends (6 s,
  which is most of that test's run time). The receiver ends up with exactly the ids in the
  outbox, every one of them delivered (duplicates, with the same id, are allowed).
* A dead receiver (a closed port, or one that never answers) holds up no other subscription.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import create_async_engine

from presenced.notify.encryption import decrypt_resource
from presenced.notify.webhooks import DELIVERY_TIMEOUT
from presenced.services.deliveries import LEASE
from presenced.store.engine import async_url, sqlite_url
from tests.e2e.webhook_receiver import WebhookReceiver
from tests.notify.certificates import base64_der, self_signed
from tests.support import bearer, stop_process

PRESENCED = (sys.executable, "-m", "presenced")
START_TIMEOUT = 60.0
#: How long a notification may take to arrive when nothing is wrong (Graph: "maximum 1 minute").
ARRIVAL = 10.0
CLIENT_STATE = "webhook-e2e-secret"
CERTIFICATE_ID = "webhook-e2e-certificate"


# --------------------------------------------------------------------------- processes


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Process:
    """A `presenced serve` or `presenced worker` with its output in a log file."""

    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever the process was doing."""
        self.process.kill()
        self.process.wait(timeout=10)


def _spawn(args: list[str], log: Path, ready: str, env: dict[str, str]) -> tuple[Process, re.Match[str]]:
    """Start ``presenced ARGS`` and wait until its output matches ``ready``."""
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [*PRESENCED, *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    process = Process(popen, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(ready, process.log_text())
        if match:
            return process, match
        if popen.poll() is not None:
            break
        time.sleep(0.05)
    process.stop()
    raise AssertionError(f"presenced {args[0]} did not start:\n{process.log_text()}")


def _store_args(data_dir: Path, database_url: str | None) -> list[str]:
    return ["--data-dir", str(data_dir), *(["--database-url", database_url] if database_url else [])]


def _serve(data_dir: Path, database_url: str | None, *extra: str) -> tuple[Process, str]:
    args = ["serve", "--http", "--demo", "--port", "0", *_store_args(data_dir, database_url), *extra]
    ready = r"listening on (http://\S+)[\s\S]*Worker: "  # the URL, and the banner printed in full
    process, match = _spawn(args, data_dir.parent / "serve.log", ready, _env())
    return process, match.group(1)


def _worker(data_dir: Path, database_url: str | None, name: str) -> Process:
    args = ["worker", *_store_args(data_dir, database_url)]
    env = _env(PRESENCED_ALLOW_LOOPBACK_WEBHOOKS="1")
    process, _ = _spawn(args, data_dir.parent / f"{name}.log", r"worker: ", env)
    return process


def _cli_all(data_dir: Path, database_url: str | None, *commands: tuple[str, ...]) -> list[str]:
    """Run `presenced` commands on the store one after the other; their outputs.

    Not at once, although each start costs seconds: processes starting together on one data
    directory can fail with "cannot write the data directory" (see the report on
    ``prepare_data_dir``, src/presenced/bootstrap.py).
    """
    outputs = []
    for command in commands:
        result = subprocess.run(
            [*PRESENCED, *command, *_store_args(data_dir, database_url)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(),
            check=False,
        )
        assert result.returncode == 0, f"presenced {' '.join(command)} failed: {result.stderr}"
        outputs.append(result.stdout.strip())
    return outputs


@dataclass
class Graph:
    """A running server, the demo users (nickname -> id) and the tokens of the two applications."""

    url: str
    data_dir: Path
    database_url: str | None
    users: dict[str, str]
    reader: dict[str, str]
    writer: dict[str, str]
    tenant_id: str
    #: The writing application's client id: its sessions' id.
    writer_app: str


CONSENTED = ("--grant-admin-consent", "--json")


def _prepare(url: str, data_dir: Path, database_url: str | None) -> Graph:
    """The demo (ids from `presenced demo --json`), two registered apps and their tokens (`presenced token`)."""
    demo, reader_app, writer_app = (
        json.loads(out)
        for out in _cli_all(
            data_dir,
            database_url,
            ("demo", "--json"),
            # A subscription lasts only while its app holds a permission that allows it.
            ("app", "create", "Webhook reader", "--permission", "Presence.Read.All:application", *CONSENTED),
            ("app", "create", "Webhook writer", "--permission", "Presence.ReadWrite.All:application", *CONSENTED),
        )
    )
    reader, writer = _cli_all(
        data_dir,
        database_url,
        ("token", "--app", reader_app["appId"], "--roles", "Presence.Read.All"),
        ("token", "--app", writer_app["appId"], "--roles", "Presence.ReadWrite.All"),
    )
    users = {u["userPrincipalName"].split("@")[0]: u["id"] for u in demo["users"]}
    return Graph(
        url, data_dir, database_url, users, bearer(reader), bearer(writer), demo["tenantId"], writer_app["appId"]
    )


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Graph]:
    """`presenced serve --http --demo --clock manual` on SQLite, its worker inside (tests 1 and 3 share it)."""
    data_dir = tmp_path_factory.mktemp("webhooks") / "data"
    shutil.copytree(key_folder, data_dir / "keys")
    server, url = _serve(data_dir, None, "--clock", "manual")
    try:
        yield _prepare(url, data_dir, None)
    finally:
        server.stop()


# --------------------------------------------------------------------------- Graph calls


def _certificate() -> tuple[rsa.RSAPrivateKey, str]:
    """A self-signed RSA 2048 certificate (base64 DER, as Graph takes it) and its private key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, base64_der(self_signed(key, "webhook e2e test"))


def _clock(http: httpx.Client) -> datetime:
    now = http.get("/_emulator/clock").json()["now"]  # Graph's form: seven fraction digits and Z
    return datetime.fromisoformat(now[:26] + "+00:00")


def _advance(http: httpx.Client, duration: str) -> None:
    answer = http.post("/_emulator/clock", json={"advance": duration})
    assert answer.status_code == 200, answer.text


def _subscribe(
    http: httpx.Client, graph: Graph, url: str, user_ids: list[str], expires: datetime, **extra: Any
) -> dict[str, Any]:
    if len(user_ids) == 1:
        resource = f"communications/presences/{user_ids[0]}"
    else:
        resource = "communications/presences?$filter=id in ({})".format(",".join(f"'{u}'" for u in user_ids))
    body = {
        "changeType": "updated",
        "notificationUrl": url,
        "resource": resource,
        "expirationDateTime": expires.isoformat().replace("+00:00", "Z"),
        "clientState": CLIENT_STATE,
        **extra,
    }
    answer = http.post("/v1.0/subscriptions", json=body, headers=graph.reader)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _set_presence(
    http: httpx.Client, graph: Graph, user_id: str, availability: str, activity: str, duration: str
) -> None:
    body = {
        "sessionId": graph.writer_app,
        "availability": availability,
        "activity": activity,
        "expirationDuration": duration,
    }
    answer = http.post(f"/v1.0/users/{user_id}/presence/setPresence", json=body, headers=graph.writer)
    assert answer.status_code == 200, answer.text


def _presence(http: httpx.Client, graph: Graph, user_id: str) -> dict[str, Any]:
    answer = http.get(f"/v1.0/users/{user_id}/presence", headers=graph.reader)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _store_url(data_dir: Path, database_url: str | None) -> str:
    return async_url(database_url) if database_url else sqlite_url(data_dir)


async def _outbox(store_url: str) -> dict[str, dict[str, Any]]:
    """The ``notifications`` table (id -> row), read directly."""
    engine = create_async_engine(store_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.exec_driver_sql(
                "SELECT n.id, n.user_id, n.sequence, n.state, n.attempts, n.url,"
                " (SELECT count(*) FROM delivery_attempts a WHERE a.notification_id = n.id) AS tries"
                " FROM notifications n"
            )
            return {str(row["id"]): dict(row) for row in rows.mappings()}
    finally:
        await engine.dispose()


def _outbox_now(store_url: str) -> dict[str, dict[str, Any]]:
    return asyncio.run(_outbox(store_url))


# --------------------------------------------------------------------------- 1. a session's life, notified


def test_a_session_is_notified_when_set_when_it_fades_and_when_it_expires(graph: Graph) -> None:
    """setPresence, the idle fade and the expiry each arrive once, in sequence order, as Graph shapes them.

    The subscription is rich: the sequence number of each change is decrypted from its
    ``encryptedContent`` and must match what GET showed after that step, and rise.
    """
    user_id = graph.users["nestor"]
    key, certificate = _certificate()
    with WebhookReceiver() as receiver, httpx.Client(base_url=graph.url, timeout=30) as http:
        subscription = _subscribe(
            http,
            graph,
            receiver.url,
            [user_id],
            _clock(http) + timedelta(minutes=55),
            includeResourceData=True,
            encryptionCertificate=certificate,
            encryptionCertificateId=CERTIFICATE_ID,
        )
        try:
            assert len(receiver.validations) == 1, receiver.validations
            assert receiver.arrivals == []
            assert subscription["clientState"] == CLIENT_STATE
            assert subscription["includeResourceData"] is True

            seen: list[dict[str, Any]] = []  # GET after each step
            started: list[float] = []  # when each step began (monotonic)
            timings: list[float] = []

            def step(action: Any) -> None:
                started.append(time.monotonic())
                action()
                seen.append(_presence(http, graph, user_id))
                n = len(seen)
                timings.append(receiver.wait_for(lambda r: len(r.arrivals) >= n, ARRIVAL, f"notification {n}"))
                assert len(receiver.arrivals) == n, [a.item for a in receiver.arrivals]

            step(lambda: _set_presence(http, graph, user_id, "Available", "Available", "PT8M"))
            assert (seen[-1]["availability"], seen[-1]["activity"]) == ("Available", "Available")
            # docs/emulator.md, spec A.6: an Available session not refreshed for 5 minutes shows AvailableInactive.
            step(lambda: _advance(http, "PT6M"))
            assert (seen[-1]["availability"], seen[-1]["activity"]) == ("Available", "AvailableInactive")
            # The session expires 8 minutes after it was set (before the Away fade at 10): Offline.
            step(lambda: _advance(http, "PT3M"))
            assert (seen[-1]["availability"], seen[-1]["activity"]) == ("Offline", "Offline")
        finally:
            http.delete(f"/v1.0/subscriptions/{subscription['id']}", headers=graph.reader)

    arrivals = receiver.arrivals
    assert len({a.id for a in arrivals}) == 3
    decrypted = []
    for arrival, began in zip(arrivals, started, strict=True):
        item = arrival.item
        assert arrival.at > began  # nothing came before the change it tells of
        assert item["subscriptionId"] == subscription["id"]
        assert item["clientState"] == CLIENT_STATE
        assert item["changeType"] == "updated"
        assert item["tenantId"] == graph.tenant_id
        assert item["resource"] == f"communications/presences/{user_id}"
        assert item["resourceData"]["id"] == user_id
        assert item["resourceData"]["@odata.type"] == "#microsoft.graph.presence"
        assert item["encryptedContent"]["encryptionCertificateId"] == CERTIFICATE_ID
        decrypted.append(json.loads(decrypt_resource(item["encryptedContent"], key)))
    for post in receiver.posts:
        assert len(post.body.get("validationTokens") or []) == 1, post.body  # rich: one token for our app
    observed = [(p["availability"], p["activity"], p["sequenceNumber"]) for p in seen]
    carried = [(d["availability"], d["activity"], d["sequenceNumber"]) for d in decrypted]
    assert carried == observed
    sequences = [d["sequenceNumber"] for d in decrypted]
    assert sequences == sorted(sequences), sequences
    assert len(set(sequences)) == 3, sequences
    print(f"\narrival after each step (s): {', '.join(f'{t:.2f}' for t in timings)}")


# --------------------------------------------------------------------------- 2. SIGKILL of the worker


@pytest.fixture
def store(request: pytest.FixtureRequest) -> str | None:
    """A clean PostgreSQL database when one is available, else None (SQLite in the data directory)."""
    try:
        url: str = request.getfixturevalue("clean_postgres_url")
    except pytest.skip.Exception:
        return None
    return url


#: Users whose visible presence changes with each write of our session, alternating Busy and Available.
BULK = ("adele", "lynne", "isaiah", "grady", "pradeep", "nestor")
CHANGES = 30
SLOW_RECEIVER = 0.3
WRITE_PACE = 0.1


async def _wait_all_delivered(store_url: str, receiver: WebhookReceiver, within: float) -> dict[str, dict[str, Any]]:
    """Poll the outbox and the receiver until every notification is delivered and has arrived."""
    engine = create_async_engine(store_url)
    deadline = time.monotonic() + within
    try:
        while True:
            async with engine.connect() as conn:
                rows = await conn.exec_driver_sql("SELECT id, user_id, sequence, state, attempts FROM notifications")
                outbox = {str(row["id"]): dict(row) for row in rows.mappings()}
            states = {row["state"] for row in outbox.values()}
            if states == {"delivered"} and set(outbox) <= receiver.received_ids():
                return outbox
            if time.monotonic() > deadline:
                missing = set(outbox) - receiver.received_ids()
                raise AssertionError(f"after {within} s: states {states}, {len(missing)} not received")
            await asyncio.sleep(0.25)
    finally:
        await engine.dispose()


def test_a_worker_killed_mid_delivery_loses_no_notification(
    tmp_path: Path, key_folder: Path, store: str | None
) -> None:
    """SIGKILL the worker while a slow receiver holds a POST and more changes wait; a new worker delivers all.

    The receiver must end up with exactly the ids of the ``notifications`` table, each of them
    ``delivered``. What the killed worker had taken is taken again once its lease (6 s, no longer renewed) ends.
    """
    data_dir = tmp_path / "data"
    shutil.copytree(key_folder, data_dir / "keys")
    store_url = _store_url(data_dir, store)
    api, url = _serve(data_dir, store, "--no-worker")
    processes = [api]
    receiver = WebhookReceiver(delay=SLOW_RECEIVER).start()
    try:
        processes.append(_worker(data_dir, store, "worker-1"))
        graph = _prepare(url, data_dir, store)
        with httpx.Client(base_url=url, timeout=30) as http:
            ids = [graph.users[name] for name in BULK]
            subscription = _subscribe(http, graph, receiver.url, ids, datetime.now(UTC) + timedelta(minutes=55))
            assert len(receiver.validations) == 1  # the API process did the handshake

            def write(i: int) -> None:
                pair = ("Busy", "InACall") if (i // len(ids)) % 2 == 0 else ("Available", "Available")
                _set_presence(http, graph, ids[i % len(ids)], *pair, "PT1H")

            # Paced, so that the worker sends several POSTs (each held 0.3 s) while the writes go on.
            for i in range(CHANGES // 2):
                write(i)
                time.sleep(WRITE_PACE)
            receiver.wait_for(lambda r: r.in_flight > 0 and len(r.posts) >= 2, ARRIVAL, "a POST in flight")
            # Not answered yet, so not recorded as delivered: the killed worker's lease must bring these back.
            held = {a.id for a in receiver.arrivals if receiver.posts[a.post].finished is None}
            killed_at = time.monotonic()
            processes[-1].kill()
            for i in range(CHANGES // 2, CHANGES):
                write(i)

        before = _outbox_now(store_url)
        assert len(before) == CHANGES, f"{len(before)} notifications for {CHANGES} changes"
        assert {row["url"] for row in before.values()} == {receiver.url}
        leased = {i for i, row in before.items() if row["state"] == "pending" and row["attempts"] > 0}
        untouched = {i for i, row in before.items() if row["attempts"] == 0}
        assert held, "no POST was in flight at the kill"
        assert held <= leased, "the POST in flight at the kill is not left leased and pending"
        assert untouched, "no notification was left pending for the new worker"

        restarted_at = time.monotonic()
        processes.append(_worker(data_dir, store, "worker-2"))
        outbox = asyncio.run(_wait_all_delivered(store_url, receiver, LEASE.total_seconds() + 30))
        done_at = time.monotonic()

        received = receiver.received_ids()
        assert received == set(outbox)
        for arrival in receiver.arrivals:  # duplicates carry the same notification
            assert arrival.item["subscriptionId"] == subscription["id"]
            assert arrival.item["resource"] == f"communications/presences/{outbox[arrival.id]['user_id']}"
        duplicates = len(receiver.arrivals) - len(received)
        assert duplicates >= len(held)  # what the killed worker had in flight came again
        # Its leases, no longer renewed, lapsed within LEASE of the kill: the new worker sent them again
        # seconds later, well before the 30 s a lease used to last.
        again = min(a.at for a in receiver.arrivals if a.id in held and a.at > restarted_at) - killed_at
        assert again < 25, f"the killed worker's notifications came again {again:.1f} s after the kill"
        # Not asserted (at-least-once is; order is not promised across a crash): whose first arrivals
        # are out of sequence order, because the new worker sent the untouched before the leased.
        first: dict[str, int] = {}
        for position, arrival in enumerate(receiver.arrivals):
            first.setdefault(arrival.id, position)
        out_of_order = []
        for user_id in ids:
            mine = sorted((row["sequence"], first[i]) for i, row in outbox.items() if row["user_id"] == user_id)
            if [p for _, p in mine] != sorted(p for _, p in mine):
                out_of_order.append(user_id)
        print(
            f"\n{CHANGES} notifications ({len(leased)} leased by the killed worker, {len(untouched)} untouched), "
            f"{len(receiver.posts)} POSTs, {duplicates} duplicates, {len(out_of_order)} of {len(ids)} users' "
            f"notifications first arrived out of sequence order; worker 2 started "
            f"{restarted_at - killed_at:.1f} s after the kill, the held ones again {again:.1f} s after the kill, "
            f"all delivered {done_at - restarted_at:.1f} s later "
            f"({'PostgreSQL' if store else 'SQLite'})"
        )
    finally:
        receiver.close()
        for process in reversed(processes):
            process.stop()


# --------------------------------------------------------------------------- 3. a dead receiver


@pytest.mark.parametrize(
    ("failure", "dead_user", "live_user"), [("closed", "adele", "grady"), ("stalling", "isaiah", "pradeep")]
)
def test_a_dead_receiver_does_not_delay_another_subscription(
    graph: Graph, failure: str, dead_user: str, live_user: str
) -> None:
    """One change for a dead endpoint, then one for a live one: the live one arrives within seconds.

    ``closed``: nothing listens on the dead endpoint's port any more (the attempt fails at once).
    ``stalling``: the dead endpoint accepts the POST and never answers; the live notification must
    arrive while that POST is still waiting for its 3 s timeout.
    """
    dead_id, live_id = graph.users[dead_user], graph.users[live_user]
    store_url = _store_url(graph.data_dir, graph.database_url)
    with WebhookReceiver() as live, httpx.Client(base_url=graph.url, timeout=30) as http:
        dead = WebhookReceiver().start()
        subscriptions = []
        try:
            expires = _clock(http) + timedelta(minutes=55)
            subscriptions.append(_subscribe(http, graph, dead.url, [dead_id], expires))
            subscriptions.append(_subscribe(http, graph, live.url, [live_id], expires))
            if failure == "closed":
                dead.close()
            else:
                dead.stall()
            _set_presence(http, graph, dead_id, "DoNotDisturb", "Presenting", "PT4H")
            if failure == "closed":
                deadline = time.monotonic() + ARRIVAL
                while not any(r["tries"] for r in _outbox_now(store_url).values() if r["url"] == dead.url):
                    assert time.monotonic() < deadline, "the dead endpoint was never tried"
                    time.sleep(0.1)
            else:
                dead.wait_for(lambda r: r.in_flight == 1, ARRIVAL, "the stalled POST")
            written = time.monotonic()
            _set_presence(http, graph, live_id, "DoNotDisturb", "Presenting", "PT4H")
            took = live.wait_for(lambda r: len(r.arrivals) >= 1, ARRIVAL, "the live notification")
            arrived = live.arrivals[0]
            assert arrived.item["resource"] == f"communications/presences/{live_id}"
            assert arrived.at - written < 3.0, f"the live notification took {arrived.at - written:.2f} s"
            if failure == "stalling":
                assert dead.in_flight == 1
                assert arrived.at - dead.posts[0].at < DELIVERY_TIMEOUT
            outbox = _outbox_now(store_url)
            dead_rows = [r for r in outbox.values() if r["url"] == dead.url]
            assert [r["state"] for r in dead_rows] == ["pending"], dead_rows
            print(f"\n{failure}: the live notification arrived {took:.2f} s after its write")
        finally:
            dead.close()
            for subscription in subscriptions:
                http.delete(f"/v1.0/subscriptions/{subscription['id']}", headers=graph.reader)

"""A PostgreSQL outage under load, as an operator meets it: the database behind a TCP proxy the test
cuts (every connection reset, new ones refused) and restores, while clients read and write.

During the outage every request gets an answer: 200 (what needs no database, or what was served
before the cut) or 503 ServiceUnavailable in Graph's body with Retry-After; none is closed without
an answer and none hangs. Once the database is back the service is too, and every write that was
acknowledged is there.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from presenced.services.demo import DEMO_DAEMON_APP_ID, SCENARIOS, demo_user_id
from tests.e2e.server_process import ServerProcess, running_server
from tests.e2e.tcp_proxy import TcpProxy
from tests.support import bearer

CLIENTS = 8
OUTAGE_SECONDS = 3.0


@dataclass
class Client:
    """One client's record: every answer, and its writes (a status message numbered per write)."""

    user_id: str
    statuses: list[tuple[float, str, int]] = field(default_factory=list)
    refusals: list[httpx.Response] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    acknowledged: int | None = None
    attempted_after_ack: list[int] = field(default_factory=list)


@pytest.fixture
def proxy(clean_postgres_url: str) -> Iterator[TcpProxy]:
    target = urlsplit(clean_postgres_url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as running:
        yield running


@pytest.fixture
def server(tmp_path: Path, key_folder: Path, clean_postgres_url: str, proxy: TcpProxy) -> Iterator[ServerProcess]:
    url = urlsplit(clean_postgres_url)._replace(
        netloc=f"{urlsplit(clean_postgres_url).username}@127.0.0.1:{proxy.port}"
    )
    with running_server(tmp_path / "data", "--database-url", url.geturl(), key_folder=key_folder) as running:
        running.database_url = url.geturl()  # type: ignore[attr-defined]
        yield running


def _run(server: ServerProcess, client: Client, token: str, stop: threading.Event) -> None:
    context = ssl.create_default_context(cafile=str(server.bundle))
    n = 0
    with httpx.Client(base_url=server.url, verify=context, timeout=20, headers=bearer(token)) as http:
        while not stop.is_set():
            n += 1
            kind = "write" if n % 2 else "read"
            try:
                if kind == "write":
                    body = {"statusMessage": {"message": {"content": f"n={n}", "contentType": "text"}}}
                    response = http.post(f"/v1.0/users/{client.user_id}/presence/setStatusMessage", json=body)
                else:
                    response = http.get(f"/v1.0/users/{client.user_id}/presence")
            except httpx.HTTPError as error:
                client.failures.append(f"{kind}: {type(error).__name__}: {error}")
                if kind == "write":
                    client.attempted_after_ack.append(n)
                continue
            client.statuses.append((time.monotonic(), kind, response.status_code))
            if kind == "write":
                if response.status_code == 200:
                    client.acknowledged, client.attempted_after_ack = n, []
                else:
                    client.attempted_after_ack.append(n)
            if response.status_code != 200:
                client.refusals.append(response)
                time.sleep(0.05)


def test_a_database_outage_is_answered_503_and_loses_nothing_acknowledged(
    server: ServerProcess, proxy: TcpProxy
) -> None:
    users = [demo_user_id(nick) for nick, _, _ in SCENARIOS][:CLIENTS]
    token = server.cli(
        "token", "--database-url", server.database_url, "--app", DEMO_DAEMON_APP_ID,  # type: ignore[attr-defined]
        "--roles", "Presence.Read.All Presence.ReadWrite.All",
    ).strip()  # fmt: skip
    clients = [Client(user) for user in users]
    stop = threading.Event()
    threads = [threading.Thread(target=_run, args=(server, c, token, stop)) for c in clients]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    cut_at = time.monotonic()
    proxy.cut()
    time.sleep(OUTAGE_SECONDS)
    restored_at = time.monotonic()
    proxy.restore()
    time.sleep(3.0)
    stop.set()
    for thread in threads:
        thread.join(30)

    failures = [f for c in clients for f in c.failures]
    assert failures == [], f"requests without an answer: {failures[:5]}"
    answers = [s for c in clients for s in c.statuses]
    assert {status for _, _, status in answers} <= {200, 503}, sorted({s for _, _, s in answers})
    refusals = [r for c in clients for r in c.refusals]
    assert refusals, "the outage refused nothing: did the cut happen?"
    for response in refusals:
        assert response.headers.get("retry-after"), response.headers
        assert response.json()["error"]["code"] == "ServiceUnavailable"
    # Back once the database is: the first success of each kind after the restore.
    back = {
        kind: min((t for t, k, s in answers if k == kind and s == 200 and t > restored_at), default=None)
        for kind in ("read", "write")
    }
    for kind, at in back.items():
        assert at is not None, f"no {kind} succeeded after the database came back"
    recovery = max(at - restored_at for at in back.values() if at is not None)
    print(f"\n{len(answers)} answers, {len(refusals)} refusals (503) in a {OUTAGE_SECONDS} s outage; "
          f"reads and writes back {recovery:.2f} s after the database")  # fmt: skip
    assert recovery < 5, f"the service came back {recovery:.1f} s after the database"
    # Nothing acknowledged is lost: each user's status message is the last acknowledged write, or a later
    # one whose answer was lost or refused (a refused write may not commit, but one that did is not lost).
    context = ssl.create_default_context(cafile=str(server.bundle))
    with httpx.Client(base_url=server.url, verify=context, timeout=20, headers=bearer(token)) as http:
        for client in clients:
            shown = http.get(f"/v1.0/users/{client.user_id}/presence").json()["statusMessage"]["message"]["content"]
            allowed = {f"n={n}" for n in [client.acknowledged, *client.attempted_after_ack] if n is not None}
            assert shown in allowed, (client.user_id, shown, client.acknowledged)
    assert cut_at < restored_at
    # Reported, not dumped: a line per kind of failure, no traceback per request.
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    assert "the database is unavailable" in log

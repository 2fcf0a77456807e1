"""`serve --processes 2` on SQLite and on PostgreSQL: two server processes on one port, both taking
connections, reads and writes answered whichever process takes them, `/metrics` counting the requests
of both whichever process answers the scrape, and SIGTERM stopping them all (docs/deployment.md,
"Several processes on one machine")."""

from __future__ import annotations

import os
import signal
import ssl
import time
from pathlib import Path

import httpx
import pytest

from presenced.services.presence_cache import MAX_AGE
from tests.e2e.server_process import ServerProcess, running_server
from tests.metrics_support import Scrape

CONNECTIONS = 24


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def _established_on(port: int) -> set[int]:
    """The socket inodes of established TCP connections whose local port is ``port``."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                local, state, inode = fields[1], fields[3], int(fields[9])
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def _sockets_of(pid: int) -> set[int]:
    found: set[int] = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def _scrapes(server: ServerProcess, tls: ssl.SSLContext, count: int = 8) -> list[Scrape]:
    """``count`` scrapes of ``/metrics``, each on a new connection (so either process may answer it)."""
    scrapes = []
    for _ in range(count):
        with httpx.Client(verify=tls, trust_env=False) as client:
            answer = client.get(f"{server.url}/metrics")
            assert answer.status_code == 200, answer.text
            scrapes.append(Scrape(answer.text))
    return scrapes


def _pids(scrape: Scrape) -> set[int]:
    """The processes whose own process metrics the scrape shows."""
    return {int(dict(labels)["pid"]) for name, labels in scrape.samples if name == "process_resident_memory_bytes"}


def _exercise(server: ServerProcess) -> None:
    demo = server.demo()
    app = next(a for a in demo.raw["apps"] if not a["publicClient"])["clientId"]
    token = server.cli("token", "--app", app, "--roles", "Presence.Read.All Presence.ReadWrite.All").strip()
    tls = ssl.create_default_context(cafile=str(server.bundle))
    headers = {"Authorization": f"Bearer {token}"}
    users = [demo.user(nick)["id"] for nick in ("adele", "alex", "megan", "pradeep")]
    clients = [
        httpx.Client(base_url=server.url, headers=headers, verify=tls, trust_env=False) for _ in range(CONNECTIONS)
    ]
    try:
        # Each client keeps its own connection; the kernel spreads them over the processes.
        reads_made = 0
        states = [("Busy", "Busy"), ("DoNotDisturb", "DoNotDisturb"), ("Away", "Away")]
        for n, client in enumerate(clients):
            user = users[n % len(users)]
            availability, activity = states[n % len(states)]
            body = {"availability": availability, "activity": activity, "expirationDuration": "PT1H"}
            written = client.post(f"/v1.0/users/{user}/presence/setUserPreferredPresence", json=body)
            assert written.status_code == 200, written.text
            # Every other connection reads what this one wrote, whichever process each is on: the writing
            # process at once, the other within the cache's bound on single reads (docs/architecture.md).
            written = time.monotonic()
            for other in clients:
                while True:
                    read = other.get(f"/v1.0/users/{user}/presence")
                    reads_made += 1
                    assert read.status_code == 200, read.text
                    seen = (read.json()["availability"], read.json()["activity"])
                    if seen == (availability, activity):
                        break
                    assert time.monotonic() - written <= MAX_AGE + 0.5, f"{seen} after {availability}/{activity}"
                    time.sleep(0.02)
        port = int(server.url.rsplit(":", 1)[1])
        children = _children(server.process.pid)
        assert len(children) == 2, children
        connections = _established_on(port)
        taken = {child: len(_sockets_of(child) & connections) for child in children}
        assert all(count > 0 for count in taken.values()), f"connections per process: {taken}"
        assert sum(taken.values()) == CONNECTIONS
        # Every scrape, whichever process answers it, counts the requests of both, and shows both processes.
        for scrape in _scrapes(server, tls):
            reads = scrape.value(
                "presenced_http_requests_total", route="/v1.0/users/{id}/presence", method="GET", status="200"
            )
            writes = scrape.value(
                "presenced_http_requests_total",
                route="/v1.0/users/{id}/presence/setUserPreferredPresence",
                method="POST",
                status="200",
            )
            assert (reads, writes) == (reads_made, CONNECTIONS)
            assert scrape.value("presenced_presence_writes_total", action="setUserPreferredPresence", outcome="ok") == (
                CONNECTIONS
            )
            assert _pids(scrape) == set(children)
    finally:
        for client in clients:
            client.close()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, server.log()
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text().lower()


def test_two_processes_on_sqlite_share_the_port_and_the_data(tmp_path: Path, key_folder: Path) -> None:
    with running_server(tmp_path / "data", "--processes", "2", key_folder=key_folder) as server:
        _exercise(server)
        server.stop()
        assert "Processes:  2 on this port" in server.log()


@pytest.mark.postgres
def test_two_processes_on_postgresql_share_the_port_and_the_data(
    tmp_path: Path, key_folder: Path, clean_postgres_url: str
) -> None:
    with running_server(
        tmp_path / "data", "--processes", "2", "--database-url", clean_postgres_url, key_folder=key_folder
    ) as server:
        _exercise(server)


def _live_count(scrape: Scrape) -> float:
    return scrape.value("presenced_http_requests_total", route="/health/live", method="GET", status="200")


def test_a_process_that_dies_is_started_again(tmp_path: Path, key_folder: Path) -> None:
    with running_server(tmp_path / "data", "--processes", "2", key_folder=key_folder) as server:
        tls = ssl.create_default_context(cafile=str(server.bundle))
        # serve prints where it listens before it starts the processes: wait for both.
        deadline = time.monotonic() + 30
        while len(first := _children(server.process.pid)) != 2:
            assert time.monotonic() < deadline, f"processes: {first}"
            time.sleep(0.1)
        for _ in range(CONNECTIONS):  # new connections, spread over both processes
            with httpx.Client(verify=tls, trust_env=False) as client:
                assert client.get(f"{server.url}/health/live").status_code == 200
        assert {_live_count(scrape) for scrape in _scrapes(server, tls)} == {CONNECTIONS}
        os.kill(first[1], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(now := _children(server.process.pid)) != 2 or first[1] in now:
            assert time.monotonic() < deadline, f"not started again: {now}"
            time.sleep(0.1)
        assert now[0] == first[0]
        for _ in range(CONNECTIONS):  # new connections, spread over both processes again
            with httpx.Client(verify=tls, trust_env=False) as client:
                assert client.get(f"{server.url}/health/ready").status_code in (200, 503)
                assert client.get(f"{server.url}/health/live").status_code == 200
        # The counts of the process that died stay in the totals; its process metrics go, the new one's come.
        deadline = time.monotonic() + 30
        while (pids := _pids(_scrapes(server, tls, 1)[0])) != set(now):
            assert time.monotonic() < deadline, f"process metrics of {pids}, processes {now}"
            time.sleep(0.5)
        assert {_live_count(scrape) for scrape in _scrapes(server, tls)} == {2 * CONNECTIONS}

"""The health probes of real server processes on PostgreSQL behind a TCP proxy the test cuts and restores
(docs/deployment.md, "Health checks"): ``/health/ready`` turns 503, naming the database, while the
database cannot be reached, and 200 again once it can, with no restart; ``/health/live`` stays 200
throughout. A second process, started with ``--no-worker``, reports the worker check as not applicable."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server_process import ServerProcess, running_server
from tests.e2e.tcp_proxy import TcpProxy
from tests.e2e.test_database_outage import proxy, server  # noqa: F401

#: How long the test waits for a probe to change its answer before failing.
DEADLINE = 60.0


@pytest.fixture
def without_worker(tmp_path: Path, key_folder: Path, server: ServerProcess) -> Iterator[ServerProcess]:  # noqa: F811
    """``serve --no-worker`` on the same proxied database as ``server``."""
    url: str = server.database_url  # type: ignore[attr-defined]
    with running_server(tmp_path / "no-worker", "--database-url", url, "--no-worker", key_folder=key_folder) as running:
        yield running


def _client(process: ServerProcess) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(process.bundle))
    return httpx.Client(base_url=process.url, verify=context, timeout=20)


def _wait_for_ready(clients: list[httpx.Client], status: int) -> list[dict[str, Any]]:
    """Poll every client's ``/health/ready`` until all answer ``status``, checking ``/health/live`` each time;
    the last answers' bodies."""
    deadline = time.monotonic() + DEADLINE
    while True:
        for client in clients:
            live = client.get("/health/live")
            assert live.status_code == 200, live.text
            assert live.json() == {"status": "ok"}
        answers = [client.get("/health/ready") for client in clients]
        if all(answer.status_code == status for answer in answers):
            return [answer.json() for answer in answers]
        assert {answer.status_code for answer in answers} <= {200, 503}, [a.text for a in answers]
        assert time.monotonic() < deadline, f"not all {status} in {DEADLINE} s: {[a.text for a in answers]}"
        time.sleep(0.2)


def test_ready_follows_the_database_while_live_stays_ok(
    server: ServerProcess,  # noqa: F811
    without_worker: ServerProcess,
    proxy: TcpProxy,  # noqa: F811
) -> None:
    processes = [server.process.pid, without_worker.process.pid]
    with _client(server) as worker_client, _client(without_worker) as plain_client:
        clients = [worker_client, plain_client]
        with_worker, no_worker = _wait_for_ready(clients, 200)
        assert with_worker["checks"]["database"] == {"status": "ok"}
        assert with_worker["checks"]["worker"]["status"] == "ok"
        assert with_worker["checks"]["redis"] == {"status": "not applicable"}
        assert no_worker["checks"] == {
            "database": {"status": "ok"},
            "worker": {"status": "not applicable"},
            "redis": {"status": "not applicable"},
        }

        proxy.cut()
        for body in _wait_for_ready(clients, 503):
            assert body["status"] == "failing"
            assert body["checks"]["database"]["status"] == "failing"
            assert str(proxy.port) not in str(body)
            assert "postgres" not in str(body)

        proxy.restore()
        for body in _wait_for_ready(clients, 200):
            assert body["status"] == "ok"
            assert body["checks"]["database"] == {"status": "ok"}

    assert server.alive
    assert without_worker.alive
    assert [server.process.pid, without_worker.process.pid] == processes

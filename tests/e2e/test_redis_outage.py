"""Redis down under a running server (behind a TCP proxy the test cuts): requests are answered as usual,
webhook notifications and the live stream still bring every change (by polling the database), failed
publishes are reported once in a while, and the process subscribes again when Redis is back."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from presenced.services.demo import DEMO_DAEMON_APP_ID, demo_user_id
from tests.e2e.server_process import ServerProcess, running_server
from tests.e2e.tcp_proxy import TcpProxy
from tests.e2e.webhook_receiver import WebhookReceiver
from tests.support import bearer

ARRIVAL = 10.0
NESTOR = demo_user_id("nestor")


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    url = redis_url
    target = urlsplit(url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as running:
        yield running


@pytest.fixture
def server(tmp_path: Path, key_folder: Path, proxy: TcpProxy) -> Iterator[ServerProcess]:
    redis_url = f"redis://127.0.0.1:{proxy.port}/0"
    with running_server(tmp_path / "data", "--redis-url", redis_url, key_folder=key_folder) as running:
        yield running


def _stream(server: ServerProcess, token: str, events: list[dict[str, Any]], stop: threading.Event) -> None:
    context = ssl.create_default_context(cafile=str(server.bundle))
    # The server stops at the end with the stream still open: that ending is expected (events are the check).
    url = f"/_stream/presences?ids={NESTOR}"
    with (
        contextlib.suppress(httpx.HTTPError),
        httpx.Client(base_url=server.url, verify=context, timeout=30) as http,
        http.stream("GET", url, headers=bearer(token)) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            if stop.is_set():
                return


def test_without_redis_changes_still_arrive_and_fan_out_returns(server: ServerProcess, proxy: TcpProxy) -> None:
    token = server.cli("token", "--app", DEMO_DAEMON_APP_ID, "--roles", "Presence.Read.All Presence.ReadWrite.All")
    token = token.strip()
    receiver = WebhookReceiver().start()
    events: list[dict[str, Any]] = []
    stop = threading.Event()
    context = ssl.create_default_context(cafile=str(server.bundle))
    try:
        with httpx.Client(base_url=server.url, verify=context, timeout=30, headers=bearer(token)) as http:
            expires = (datetime.now(UTC) + timedelta(minutes=55)).isoformat().replace("+00:00", "Z")
            body = {
                "changeType": "updated",
                "notificationUrl": receiver.url,
                "resource": f"communications/presences/{NESTOR}",
                "expirationDateTime": expires,
                "clientState": "redis-outage",
            }
            assert http.post("/v1.0/subscriptions", json=body).status_code == 201
            streaming = threading.Thread(target=_stream, args=(server, token, events, stop), daemon=True)
            streaming.start()
            receiver.wait_for(lambda r: len(r.validations) == 1, ARRIVAL, "the validation handshake")
            deadline = time.monotonic() + ARRIVAL
            while not events and time.monotonic() < deadline:
                time.sleep(0.05)
            assert events, "the stream sent no current presence"

            proxy.cut()
            for availability, activity in (("Busy", "InACall"), ("Away", "Away"), ("DoNotDisturb", "Presenting")):
                change = {"sessionId": DEMO_DAEMON_APP_ID, "availability": availability, "activity": activity}
                before = len(receiver.arrivals)
                answer = http.post(f"/v1.0/users/{NESTOR}/presence/setPresence", json=change)
                assert answer.status_code == 200, answer.text
                assert http.get(f"/v1.0/users/{NESTOR}/presence").status_code == 200
                receiver.wait_for(
                    lambda r, n=before: len(r.arrivals) > n,
                    ARRIVAL,
                    f"the notification of {availability} without Redis",
                )
                deadline = time.monotonic() + ARRIVAL
                while not any(e.get("availability") == availability for e in events) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert any(e.get("availability") == availability for e in events), f"the stream missed {availability}"
            sent = len(receiver.arrivals)
            assert sent >= 3

            proxy.restore()
            deadline = time.monotonic() + ARRIVAL
            while proxy.open_connections == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert proxy.open_connections >= 1, "the process did not subscribe to Redis again"
    finally:
        stop.set()
        receiver.close()
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    assert "Redis subscription lost" in log
    assert log.count("cannot publish to Redis") <= 2

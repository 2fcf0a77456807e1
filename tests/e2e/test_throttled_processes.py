"""Graph's throttling against real server processes: the official clients retry a 429 after its Retry-After
and return the value, and two processes on one database (or one Redis) share one limit."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from msgraph import GraphServiceClient

from tests.e2e.server_process import ServerProcess, running_server
from tests.e2e.test_javascript_client import JS, NODE, NPM, node_packages  # noqa: F401
from tests.e2e.test_official_batch_and_lists import StaticToken

GRAPH = "https://graph.microsoft.com"


def _daemon_token(server: ServerProcess, *roles: str) -> str:
    daemon = next(a for a in server.demo().raw["apps"] if not a["publicClient"])
    return server.cli("token", "--app", daemon["clientId"], "--roles", " ".join(roles)).strip()


def _http(server: ServerProcess, token: str, url: str | None = None) -> httpx.Client:
    tls = ssl.create_default_context(cafile=str(server.bundle))
    return httpx.Client(
        base_url=f"{url or server.url}/v1.0", headers={"Authorization": f"Bearer {token}"}, verify=tls, trust_env=False
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[ServerProcess]:
    """A server that lets an app make 4 requests in 3 seconds."""
    data_dir = tmp_path_factory.mktemp("throttled") / "data"
    with running_server(data_dir, "--throttle", "4/3", key_folder=key_folder, stop_timeout=2) as server:
        yield server


def test_over_the_limit_is_a_429_with_retry_after_and_graphs_body(throttled: ServerProcess) -> None:
    token = _daemon_token(throttled, "Presence.Read.All")
    user = throttled.demo().user("adele")["id"]
    with _http(throttled, token) as http:
        answers = [http.get(f"/users/{user}/presence") for _ in range(12)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused, [a.status_code for a in answers]
    assert {a.status_code for a in answers} == {200, 429}
    first = refused[0]
    assert 1 <= int(first.headers["Retry-After"]) <= 3
    error = first.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["innerError"]["request-id"] == first.headers["request-id"]


async def test_msgraph_sdk_retries_a_429_and_returns_the_value(throttled: ServerProcess) -> None:
    token = _daemon_token(throttled, "Presence.Read.All")
    user = throttled.demo().user("megan")["id"]
    os.environ["SSL_CERT_FILE"] = str(throttled.bundle)
    try:
        client = GraphServiceClient(credentials=StaticToken(token), scopes=[f"{GRAPH}/.default"])
        client.request_adapter.base_url = f"{throttled.url}/v1.0"
        # Twelve reads where four pass every three seconds: without the retry handler, the fifth would fail.
        presences = [await client.users.by_user_id(user).presence.get() for _ in range(12)]
    finally:
        del os.environ["SSL_CERT_FILE"]
    assert [p.availability for p in presences if p is not None] == ["DoNotDisturb"] * 12


@pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are needed on PATH")
@pytest.mark.usefixtures("node_packages")
def test_the_javascript_client_retries_a_429_and_returns_the_value(throttled: ServerProcess) -> None:
    assert NODE is not None
    token = _daemon_token(throttled, "Presence.Read.All")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")},
        "NODE_EXTRA_CA_CERTS": str(throttled.bundle),
        "NO_PROXY": "127.0.0.1,localhost",
        "AUTHORITY": throttled.url,
        "ACCESS_TOKEN": token,
        "USER_ID": throttled.demo().user("megan")["id"],
        "COUNT": "10",
    }
    result = subprocess.run(
        [NODE, "throttled_reads.mjs"], cwd=JS, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["availabilities"] == ["DoNotDisturb"] * 10


@pytest.mark.parametrize("shared", ["database", "redis"])
def test_two_processes_on_one_database_share_one_limit(
    tmp_path: Path, key_folder: Path, request: pytest.FixtureRequest, shared: str
) -> None:
    # One public URL, as processes behind one address have: the tokens' issuer is the same for both.
    ports = _free_port(), _free_port()
    extra = ["--throttle", "10/3600", "--public-url", f"https://127.0.0.1:{ports[0]}"]
    if shared == "redis":
        url = request.getfixturevalue("redis_url")
        extra += ["--redis-url", url]
        # Counters of an earlier run in this hour (same tenant, app and window) would count here too.
        counters = redis.Redis.from_url(url)
        for key in counters.scan_iter("presenced:throttle:*"):
            counters.delete(key)
        counters.close()
    data_dir = tmp_path / "data"
    for _attempt in range(2):
        window = time.time() // 3600
        with (
            running_server(data_dir, *extra, "--port", str(ports[0]), key_folder=key_folder) as first,
            running_server(data_dir, *extra, "--no-worker", "--port", str(ports[1]), key_folder=key_folder) as second,
        ):
            token = _daemon_token(first, "Presence.Read.All")
            user = first.demo().user("adele")["id"]
            with _http(first, token) as a, _http(second, token, f"https://127.0.0.1:{ports[1]}") as b:
                admitted = [a.get(f"/users/{user}/presence").status_code for _ in range(7)]
                assert admitted == [200] * 7
                # Each process adds its counts to the shared ones four times a second.
                assert b.get(f"/users/{user}/presence").status_code == 200
                time.sleep(1)
                later = [b.get(f"/users/{user}/presence").status_code for _ in range(5)]
                time.sleep(1)
                last = a.get(f"/users/{user}/presence").status_code
        if time.time() // 3600 == window:  # else the hour's window ended in between: count again
            break
    assert later == [200, 200, 429, 429, 429]
    assert last == 429

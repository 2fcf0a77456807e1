"""The quick start, end to end: a real server process, tokens from the CLI, HTTP over loopback."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import bearer, listening_url, stop_process


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str, data_dir: Path, env: dict[str, str]) -> None:
        self.process, self.url, self.data_dir, self.env = process, url, data_dir, env
        #: How clients trust the server: its local CA, the way `serve` tells people to.
        self.verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem")) if url.startswith("https") else True
        )

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "presenced", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
            check=True,
        )
        return result.stdout.strip()


def start_server(data_dir: Path, *extra: str) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "presenced", "serve", "--demo", "--port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return Server(process, listening_url(process, timeout=60), data_dir, env)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path, key_folder: Path) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    shutil.copytree(key_folder, data_dir / "keys")
    extra: tuple[str, ...] = ()
    if request.param == "postgres":
        extra = ("--database-url", request.getfixturevalue("clean_postgres_url"))
    running = start_server(data_dir, *extra)
    try:
        yield running
    finally:
        running.process.terminate()
        try:
            running.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.process.kill()


def test_a_demo_user_reads_their_presence_with_a_cli_token(server: Server) -> None:
    """With `serve --demo` running, a token from `presenced token` reads /v1.0/me/presence."""
    demo = json.loads(server.cli("demo", "--json"))
    assert demo["graphBaseUrl"] == f"{server.url}/v1.0"
    user = demo["users"][0]
    token = server.cli("token", "--user", user["userPrincipalName"], "--scopes", "Presence.Read")
    response = httpx.get(f"{server.url}/v1.0/me/presence", headers=bearer(token), timeout=10, verify=server.verify)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user["id"]
    assert body["@odata.context"] == f"{server.url}/v1.0/$metadata#users('{user['id']}')/presence/$entity"
    assert {
        "availability",
        "activity",
        "outOfOfficeSettings",
        "statusMessage",
        "sequenceNumber",
        "workLocation",
    } <= set(body)


def test_openapi_document_is_served(server: Server) -> None:
    """/openapi.json is an OpenAPI 3.1 document describing the Graph endpoints of both versions."""
    document = httpx.get(f"{server.url}/openapi.json", timeout=10, verify=server.verify).json()
    assert document["openapi"] == "3.1.0"
    for version in ("v1.0", "beta"):
        assert "get" in document["paths"][f"/{version}/me/presence"]
        assert "post" in document["paths"][f"/{version}/communications/getPresencesByUserId"]
    assert "post" in document["paths"]["/v1.0/users/{id}/presence/setPresence"]
    assert "post" in document["paths"]["/beta/communications/presences/{id}/clearLocation"]
    assert set(document["paths"]["/v1.0/me/mailboxSettings"]) == {"get", "patch"}
    assert "/_emulator/clock" not in document["paths"]
    assert {"Presence", "SetPresenceRequest", "MailboxSettingsPatch"} <= set(document["components"]["schemas"])


def _start_and_read_message(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`serve --port 0` on ``data_dir``; the process and its start-up message (up to the TLS lines)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "presenced", "serve", "--port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("  TLS:"):
            return process, lines
    process.kill()
    raise AssertionError("server did not start:\n" + "\n".join(lines))


def _try_commands(lines: list[str]) -> str:
    """The start-up message's "Try:" lines, as a shell script."""
    start = next(i for i, line in enumerate(lines) if line.startswith("  Try:"))
    commands = [lines[start].removeprefix("  Try:").strip()]
    for line in lines[start + 1 :]:
        if not line.startswith("              ") or line.startswith("  TLS:"):
            break
        commands.append(line.strip())
    return "\n".join(commands)


def test_the_start_up_messages_commands_work_as_printed(tmp_path: Path, key_folder: Path) -> None:
    """Pasted into a shell as printed, with no variable set, the "Try:" commands read a presence."""
    data_dir = tmp_path / "elsewhere"
    shutil.copytree(key_folder, data_dir / "keys")
    process, lines = _start_and_read_message(data_dir, "--demo")
    try:
        script = _try_commands(lines)
        assert f"--data-dir {data_dir}" in script  # not the default data directory
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PRESENCED_", "SSL_", "REQUESTS_", "CURL_"))}
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        presence = json.loads(result.stdout)
        assert {"availability", "activity", "sequenceNumber"} <= set(presence)
        assert not (tmp_path / ".local").exists()
        sign_in = next(line for line in lines if line.startswith("  Sign-in:"))
        assert "tenant id" not in sign_in
        assert "curl --cacert" in "\n".join(lines)  # how curl trusts the local CA
    finally:
        stop_process(process)


def test_without_a_tenant_the_message_offers_the_demo_as_a_command(tmp_path: Path, key_folder: Path) -> None:
    """Served without --demo on an empty store, the message's one command creates the demo tenant."""
    data_dir = tmp_path / "data"
    shutil.copytree(key_folder, data_dir / "keys")
    process, lines = _start_and_read_message(data_dir)
    try:
        assert "(no tenant yet)" in next(line for line in lines if line.startswith("  Sign-in:"))
        script = _try_commands(lines)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, env=env, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "Contoso (demo)" in result.stdout
    finally:
        stop_process(process)

"""The official JavaScript Graph client against a real server process, over HTTPS.

`tests/e2e/js/read_presence.mjs` signs in with @azure/identity's ClientSecretCredential
(TokenCredentialAuthenticationProvider) and reads presence with
@microsoft/microsoft-graph-client 3.x; Node trusts the server's local CA through
NODE_EXTRA_CA_CERTS. The packages come from `npm ci` on the committed package-lock.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(NODE is None or NPM is None, reason="node and npm are needed on PATH")

JS = Path(__file__).resolve().parent / "js"
LOCK = JS / "package-lock.json"
# npm writes node_modules/.package-lock.json at the end of every install: the lock stamp.
STAMP = JS / "node_modules" / ".package-lock.json"
NPM_TIMEOUT = 300
NODE_TIMEOUT = 60
AVAILABILITIES = {
    "Available",
    "AvailableIdle",
    "Away",
    "BeRightBack",
    "Busy",
    "BusyIdle",
    "DoNotDisturb",
    "Offline",
    "PresenceUnknown",
}


@contextmanager
def _npm_lock() -> Iterator[None]:
    """Only one test process at a time runs `npm ci` in tests/e2e/js."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no concurrent installs to guard against
        yield
        return
    with (JS / ".npm-ci.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _installed() -> bool:
    return STAMP.exists() and STAMP.stat().st_mtime >= LOCK.stat().st_mtime


@pytest.fixture(scope="module")
def node_packages() -> Path:
    """tests/e2e/js with its node_modules installed from the lock file."""
    assert NPM is not None
    with _npm_lock():
        if not _installed():
            command = [NPM, "ci", "--no-audit", "--no-fund", "--prefer-offline"]
            try:
                result = subprocess.run(
                    command,
                    cwd=JS,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=NPM_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                output = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
                pytest.fail(f"`npm ci` in {JS} did not finish in {NPM_TIMEOUT}s:\n{output}", pytrace=False)
            if result.returncode != 0:
                pytest.fail(f"`npm ci` in {JS} failed (exit {result.returncode}):\n{result.stdout}", pytrace=False)
    return JS


@dataclass(frozen=True)
class Demo:
    authority: str
    tenant_id: str
    ca_certificate: str
    user_id: str
    client_id: str
    client_secret: str


def _server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Demo]:
    """A `serve --demo` process on HTTPS, and the demo tenant's daemon app and first user."""
    data_dir = tmp_path_factory.mktemp("js-client") / "data"
    shutil.copytree(key_folder, data_dir / "keys")
    log = data_dir.parent / "serve.log"
    env = _server_env()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "presenced", "serve", "--demo", "--port", "0", "--data-dir", str(data_dir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        url = _wait_for_url(process, log)
        result = subprocess.run(
            [sys.executable, "-m", "presenced", "demo", "--json", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        tenant = json.loads(result.stdout)
        assert tenant["authority"] == url
        assert tenant["caCertificate"], tenant
        daemons = [app for app in tenant["apps"] if app["clientSecret"] is not None]
        assert len(daemons) == 1, tenant["apps"]
        yield Demo(
            authority=tenant["authority"],
            tenant_id=tenant["tenantId"],
            ca_certificate=tenant["caCertificate"],
            user_id=tenant["users"][0]["id"],
            client_id=daemons[0]["clientId"],
            client_secret=daemons[0]["clientSecret"],
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_for_url(process: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on (https://\S+)", log.read_text())
        if match:
            return match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    process.wait(timeout=10)
    raise AssertionError("server did not start on HTTPS:\n" + log.read_text())


def _read_presence(folder: Path, demo: Demo, **overrides: str) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    env = {
        **_server_env(),
        "NODE_EXTRA_CA_CERTS": demo.ca_certificate,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
        "AUTHORITY": demo.authority,
        "TENANT_ID": demo.tenant_id,
        "CLIENT_ID": demo.client_id,
        "CLIENT_SECRET": demo.client_secret,
        "USER_ID": demo.user_id,
        **overrides,
    }
    return subprocess.run(
        [NODE, "read_presence.mjs"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        env=env,
        check=False,
    )


def test_the_javascript_graph_client_reads_presence_with_an_app_token(node_packages: Path, demo: Demo) -> None:
    """ClientSecretCredential gets an app token; the Graph client reads one presence and a batch by id."""
    result = _read_presence(node_packages, demo)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    presence = output["presence"]
    assert presence["id"] == demo.user_id
    assert presence["availability"] in AVAILABILITIES
    assert presence["activity"]
    batch = output["batch"]["value"]
    assert [entry["id"] for entry in batch] == [demo.user_id]
    assert batch[0]["availability"] in AVAILABILITIES


def test_a_wrong_client_secret_fails_with_aadsts7000215(node_packages: Path, demo: Demo) -> None:
    """With a wrong secret the token request fails the way Entra's does, and the script exits 1."""
    result = _read_presence(node_packages, demo, CLIENT_SECRET="not-the-secret")
    assert result.returncode == 1, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout == ""
    assert "AADSTS7000215" in result.stderr

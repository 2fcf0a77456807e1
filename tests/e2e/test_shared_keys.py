"""Two servers that share nothing but a PostgreSQL database and PRESENCED_KEYS_SECRET_FILE share their keys.

Each ``presenced serve`` has a data directory of its own (as two machines would), behind one public
URL (as behind one load balancer). A token that one server's token endpoint issues is accepted by
the other; ``presenced keys rotate``, run from a third data directory, reaches both within seconds;
the key it retires is refused by both, and the key that signs after it is accepted by both.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from presenced.services.demo import DEMO_TENANT_ID, demo_user_id
from tests.support import stop_process

pytestmark = pytest.mark.postgres

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"
#: How long a rotation may take to reach a running server (each reads the keys once a second).
ARRIVAL = 10.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _env(database_url: str, secret_file: Path, public_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    return {
        **env,
        "PYTHONUNBUFFERED": "1",
        "PRESENCED_DATABASE_URL": database_url,
        "PRESENCED_KEYS_SECRET_FILE": str(secret_file),
        "PRESENCED_PUBLIC_URL": public_url,
    }


def _cli(env: dict[str, str], data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "presenced", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def _server(env: dict[str, str], data_dir: Path, port: int, *extra: str) -> Iterator[str]:
    """``presenced serve --http`` on ``port``, its output in ``data_dir/serve.log``; its own address (the
    public URL is the shared one)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "presenced",
                "serve",
                "--http",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        if not _until(lambda: "listening on" in log.read_text() or process.poll() is not None, 60):
            raise AssertionError(f"the server did not start:\n{log.read_text()}")
        assert process.poll() is None, log.read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def _jwks_kids(url: str) -> list[str]:
    keys = httpx.get(f"{url}/{DEMO_TENANT_ID}/discovery/v2.0/keys", trust_env=False).json()["keys"]
    return [key["kid"] for key in keys]


def _client_credentials(url: str, client_id: str, secret: str) -> str:
    answer = httpx.post(
        f"{url}/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": GRAPH_DEFAULT,
        },
        trust_env=False,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _presence_status(url: str, token: str) -> int:
    answer = httpx.get(
        f"{url}/v1.0/users/{demo_user_id('adele')}/presence",
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
    )
    return answer.status_code


def _until(condition: Callable[[], bool], timeout: float = ARRIVAL) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_two_servers_with_their_own_data_directories_share_keys_through_the_database(
    tmp_path: Path, clean_postgres_url: str
) -> None:
    secret_file = tmp_path / "keys-secret"
    secret_file.write_text("s3cr3t-" * 6 + "\n")
    ports = _free_port(), _free_port()
    public = f"http://127.0.0.1:{ports[0]}"
    env = _env(clean_postgres_url, secret_file, public)
    operator = tmp_path / "operator"
    demo = json.loads(_cli(env, operator, "demo", "--json"))
    daemon = next(app for app in demo["apps"] if not app["publicClient"])

    with ExitStack() as stack:
        first = stack.enter_context(_server(env, tmp_path / "a", ports[0]))
        second = stack.enter_context(_server(env, tmp_path / "b", ports[1], "--no-worker"))
        published = _jwks_kids(first)
        assert _jwks_kids(second) == published
        assert len(published) == 2

        token = _client_credentials(first, daemon["clientId"], daemon["clientSecret"])
        assert _presence_status(second, token) == 200
        assert _presence_status(first, token) == 200

        # A rotation made elsewhere reaches both servers while they run.
        _cli(env, operator, "keys", "rotate")
        assert _until(lambda: len(_jwks_kids(first)) == 3), _jwks_kids(first)
        rotated = _jwks_kids(first)
        assert rotated[:2] == published
        assert _until(lambda: _jwks_kids(second) == rotated), _jwks_kids(second)

        # A second one retires the key that signed the first token: both refuse it, and both accept what the
        # key signing now (the first rotation's new key) signs, whichever server issued it.
        _cli(env, operator, "keys", "rotate")
        assert _until(lambda: _jwks_kids(first) == _jwks_kids(second) and published[0] not in _jwks_kids(first))
        assert _until(lambda: _presence_status(second, token) == 401)
        assert _presence_status(first, token) == 401
        for issuer in (first, second):
            fresh = _client_credentials(issuer, daemon["clientId"], daemon["clientSecret"])
            assert _presence_status(first, fresh) == 200
            assert _presence_status(second, fresh) == 200

    # No data directory got a key of its own: they are all in the database.
    assert not list(tmp_path.glob("*/keys/*.pem"))
    # The secret is in no log line.
    for log in (tmp_path / "a" / "serve.log", tmp_path / "b" / "serve.log"):
        assert '"route":' in log.read_text()  # the JSON request log is there
        assert secret_file.read_text().strip() not in log.read_text()

"""The command line, run as a user would run it: a separate process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from joserfc import jwt

from presenced.oauth.keys import SigningKeys
from presenced.services.demo import DEMO_DAEMON_APP_ID, DEMO_TENANT_ID


def presenced(*args: str, data_dir: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    extra = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "-m", "presenced", *args, *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path, key_folder: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(key_folder, folder / "keys")
    return folder


def test_demo_json_lists_the_tenant_its_users_and_apps_and_is_idempotent(data_dir: Path) -> None:
    """`presenced demo --json` prints the tenant, URLs, users with passwords and two apps; only the secret changes."""
    first = presenced("demo", "--json", data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    body = json.loads(first.stdout)
    assert body["tenantId"] == DEMO_TENANT_ID
    assert body["graphBaseUrl"] == f"{body['authority']}/v1.0"
    assert body["authority"].startswith("https://")
    assert Path(body["caCertificate"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert len(body["users"]) >= 8
    assert set(body["users"][0]) == {"id", "userPrincipalName", "displayName", "password", "isAdmin"}
    assert sum(u["isAdmin"] for u in body["users"]) == 1
    confidential, public = body["apps"]
    assert len(confidential["clientSecret"]) == 40
    assert confidential["permissions"] == ["Presence.Read.All (application)", "Presence.ReadWrite.All (application)"]
    assert public["clientSecret"] is None
    assert public["publicClient"] is True
    assert public["permissions"] == [
        "Presence.Read (delegated)",
        "Presence.Read.All (delegated)",
        "Presence.ReadWrite (delegated)",
    ]
    second = json.loads(presenced("demo", "--json", data_dir=data_dir).stdout)
    assert second["apps"][0]["clientSecret"] != confidential["clientSecret"]
    confidential["clientSecret"] = second["apps"][0]["clientSecret"]
    assert second == body


def test_token_for_a_user_carries_the_scopes(data_dir: Path) -> None:
    """`presenced token --user UPN --scopes ...` prints a signed delegated token for that user."""
    demo = json.loads(presenced("demo", "--json", data_dir=data_dir).stdout)
    user = demo["users"][1]
    result = presenced(
        "token",
        "--user",
        user["userPrincipalName"].upper(),
        "--scopes",
        "Presence.Read Presence.Read.All",
        data_dir=data_dir,
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SigningKeys.load_or_create(data_dir).key_set).claims
    assert claims["oid"] == user["id"]
    assert claims["tid"] == DEMO_TENANT_ID
    assert claims["scp"] == "Presence.Read Presence.Read.All"
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["exp"] - claims["iat"] == 3600


def test_token_for_an_app_carries_the_roles(data_dir: Path) -> None:
    """`presenced token --app ID --roles ...` prints an app-only token with roles and no scopes."""
    presenced("demo", data_dir=data_dir)
    app_id = DEMO_DAEMON_APP_ID
    result = presenced("token", "--app", app_id, "--roles", "Presence.Read.All", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SigningKeys.load_or_create(data_dir).key_set).claims
    assert claims["roles"] == ["Presence.Read.All"]
    assert claims["appid"] == app_id
    assert "scp" not in claims


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("token", "--scopes", "Presence.Read"), "exactly one of --user or --app"),
        (("token", "--user", "nobody@contoso.example", "--scopes", "Presence.Read"), "no user"),
        (("token", "--app", "not-a-guid", "--roles", "Presence.Read.All"), "GUID"),
        (
            (
                "token",
                "--user",
                "adele@contoso.example",
                "--tenant",
                "11111111-1111-1111-1111-111111111111",
                "--scopes",
                "Presence.Read",
            ),
            "tenant",
        ),
        (("serve", "--port", "http"), "http"),
        (("serve", "--colour"), "--colour"),
        (("serve", "--database-url", "mysql://x/y"), "postgresql://"),
        (
            ("serve", "--database-url", "not-a-url"),
            "must be postgresql://user@host/db or sqlite:///path, not 'not-a-url'",
        ),
        (("serve", "--throttle", "fast"), "--throttle (PRESENCED_THROTTLE) must be graph, graph-1500, off or"),
        (("db", "upgrade", "--database-url", "postgresql://nobody@127.0.0.1:1/none"), "cannot reach the database"),
        (("token", "--user", "adele@contoso.example"), "a user token needs --scopes"),
        (("token", "--user", "adele@contoso.example", "--scopes", " "), "a user token needs --scopes"),
        (("token", "--app", DEMO_DAEMON_APP_ID), "an app token needs --roles"),
        (
            ("token", "--app", "0f9b2b84-1d2c-4c47-a8f1-3f5b9f3c2f10", "--roles", "Presence.Read.All"),
            "There is no application 0f9b2b84-1d2c-4c47-a8f1-3f5b9f3c2f10 in tenant",
        ),
    ],
    ids=[
        "no-identity",
        "unknown-user",
        "bad-app-id",
        "unknown-tenant",
        "bad-port",
        "bad-flag",
        "bad-scheme",
        "not-a-url",
        "bad-throttle",
        "no-db",
        "user-without-scopes",
        "blank-scopes",
        "app-without-roles",
        "unknown-app",
    ],
)
def test_mistakes_give_one_clear_line(data_dir: Path, args: tuple[str, ...], says: str) -> None:
    """A bad flag, value, user, tenant or database is one line on stderr and exit status 2."""
    presenced("demo", data_dir=data_dir)
    result = presenced(*args, data_dir=data_dir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("presenced: error: ")
    assert says in lines[0]
    assert result.stdout == ""


def test_an_unwritable_data_directory_is_one_clear_line(tmp_path: Path) -> None:
    """A data directory that cannot be written is reported in one line."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = presenced("demo", data_dir=blocker / "data")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot write the data directory" in result.stderr


def test_db_upgrade_reports_success(data_dir: Path) -> None:
    """`presenced db upgrade` migrates the database and says so."""
    result = presenced("db", "upgrade", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert (data_dir / "presenced.db").exists()


def test_a_busy_port_is_one_clear_line(data_dir: Path) -> None:
    """Serving on a port that is taken fails with one line naming the address."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = presenced("serve", "--port", str(port), data_dir=data_dir)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port} (--host, --port)" in result.stderr


def test_a_busy_port_and_an_unreachable_database_each_name_their_flag(data_dir: Path) -> None:
    """With both mistakes made, the error says which flag to fix."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = presenced(
            "serve",
            *("--port", str(port), "--database-url", "postgresql://nobody@127.0.0.1:1/none"),
            data_dir=data_dir,
        )
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "(--host, --port)" in line or "(--database-url)" in line


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    """`PRESENCED_DATA_DIR=` (set to nothing) means the default data directory, not the current one."""
    work, home = tmp_path / "checkout", tmp_path / "home"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    env |= {"PRESENCED_DATA_DIR": "", "PRESENCED_DATABASE_URL": " ", "XDG_DATA_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-m", "presenced", "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=work,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(work.iterdir()) == []
    assert (home / "presenced" / "presenced.db").exists()


def test_a_new_data_directory_keeps_itself_out_of_git(tmp_path: Path) -> None:
    """A data directory created inside a repository is ignored by git, whatever its name."""
    repository = tmp_path / "repository"
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    assert presenced("db", "upgrade", data_dir=repository / "presenced-data").returncode == 0
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=repository,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == ""


def test_clock_reset_returns_a_database_to_real_time(data_dir: Path) -> None:
    """`presenced clock reset` removes a database's manual clock, and says when there was none."""
    import asyncio
    import dataclasses

    from presenced.bootstrap import build
    from presenced.config import Settings

    async def start_manual_clock() -> None:
        runtime = await build(dataclasses.replace(Settings(data_dir=data_dir), clock="manual"))
        assert runtime.emulator is not None
        await runtime.close()

    asyncio.run(start_manual_clock())
    first = presenced("clock", "reset", data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    assert "removed" in first.stdout
    assert "no manual clock" in presenced("clock", "reset", data_dir=data_dir).stdout

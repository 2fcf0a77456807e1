"""`presenced keys ...` and the commands around keys sealed in the database, run as separate processes."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from joserfc import jwt

from presenced.oauth.keys import SigningKeys
from presenced.services.demo import DEMO_DAEMON_APP_ID


def presenced(
    *args: str, data_dir: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    extra = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "-m", "presenced", *args, *extra],
        capture_output=True,
        text=True,
        timeout=90,
        env={**clean, **(env or {})},
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def listed(output: str) -> tuple[str, list[tuple[str, str]]]:
    """``keys list``: where the keys are kept, and (role, kid) per key."""
    first, *rest = output.strip().splitlines()
    return first, [tuple(line.split()) for line in rest]  # type: ignore[misc]


def header_kid(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


@pytest.fixture
def data_dir(tmp_path: Path, key_folder: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(key_folder, folder / "keys")
    return folder


@pytest.fixture
def secret_env(tmp_path: Path) -> dict[str, str]:
    secret = ok(presenced("keys", "secret")).strip()
    path = tmp_path / "keys-secret"
    path.write_text(secret + "\n")
    return {"PRESENCED_KEYS_SECRET_FILE": str(path)}


def test_keys_secret_prints_a_new_secret_each_time() -> None:
    first, second = ok(presenced("keys", "secret")).strip(), ok(presenced("keys", "secret")).strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first)
    assert first != second


def test_keys_in_a_folder_are_listed_and_rotated(data_dir: Path) -> None:
    where, before = listed(ok(presenced("keys", "list", data_dir=data_dir)))
    assert where == f"kept in the folder {data_dir / 'keys'}"
    assert [role for role, _ in before] == ["current", "next"]
    ok(presenced("keys", "rotate", data_dir=data_dir))
    _, after = listed(ok(presenced("keys", "list", data_dir=data_dir)))
    assert after == [("previous", before[0][1]), ("current", before[1][1]), ("next", after[2][1])]
    assert len(list((data_dir / "keys").glob("*.pem"))) == 3


def test_with_a_secret_the_keys_move_into_the_database_and_tokens_follow_a_rotation(
    data_dir: Path, secret_env: dict[str, str]
) -> None:
    folder = SigningKeys.load_or_create(data_dir)
    ok(presenced("demo", data_dir=data_dir, env=secret_env))
    where, keys = listed(ok(presenced("keys", "list", data_dir=data_dir, env=secret_env)))
    assert where == "kept in the database"
    assert [kid for _, kid in keys] == [str(key.kid) for key in folder.keys]  # the folder's keys, moved in

    token = ok(
        presenced(
            "token", "--user", "adele@contoso.example", "--scopes", "Presence.Read", data_dir=data_dir, env=secret_env
        )
    ).strip()
    assert header_kid(token) == keys[0][1]  # the current key signs
    assert jwt.decode(token, folder.key_set).claims["scp"] == "Presence.Read"

    rotated = ok(presenced("keys", "rotate", data_dir=data_dir, env=secret_env))
    _, after = listed(ok(presenced("keys", "list", data_dir=data_dir, env=secret_env)))
    assert rotated.strip() == f"signing with {after[1][1]}; next key {after[2][1]}"
    token = ok(
        presenced(
            "token",
            "--app",
            DEMO_DAEMON_APP_ID,
            "--roles",
            "Presence.Read.All",
            data_dir=data_dir,
            env=secret_env,
        )
    ).strip()
    assert header_kid(token) == after[1][1] == keys[1][1]
    # The folder was not touched by the rotation: the keys live in the database now.
    assert len(list((data_dir / "keys").glob("*.pem"))) == 2


def test_keys_in_the_database_need_the_secret_they_were_sealed_with(
    data_dir: Path, secret_env: dict[str, str], tmp_path: Path
) -> None:
    ok(presenced("keys", "list", data_dir=data_dir, env=secret_env))
    missing = presenced("keys", "list", data_dir=data_dir)
    assert missing.returncode != 0
    assert "the signing keys are kept in the database: set PRESENCED_KEYS_SECRET" in missing.stderr
    refused = presenced("token", "--user", "adele@contoso.example", "--scopes", "Presence.Read", data_dir=data_dir)
    assert refused.returncode != 0
    assert "kept in the database" in refused.stderr
    wrong = presenced("keys", "list", data_dir=data_dir, env={"PRESENCED_KEYS_SECRET": "w" * 40})
    assert wrong.returncode != 0
    assert "not the secret they were sealed with" in wrong.stderr
    short = presenced("keys", "list", data_dir=data_dir, env={"PRESENCED_KEYS_SECRET": "short"})
    assert short.returncode != 0
    assert "at least 32 characters" in short.stderr
    both = presenced("keys", "list", data_dir=data_dir, env={**secret_env, "PRESENCED_KEYS_SECRET": "w" * 40})
    assert both.returncode != 0
    assert "not both" in both.stderr
    unreadable = presenced("keys", "list", data_dir=data_dir, env={"PRESENCED_KEYS_SECRET_FILE": str(tmp_path / "no")})
    assert unreadable.returncode != 0
    assert "cannot read" in unreadable.stderr
    for result in (missing, refused, wrong, both):  # the secret is never echoed
        assert Path(secret_env["PRESENCED_KEYS_SECRET_FILE"]).read_text().strip() not in result.stderr


def test_resealing_under_a_new_secret(data_dir: Path, secret_env: dict[str, str], tmp_path: Path) -> None:
    _, before = listed(ok(presenced("keys", "list", data_dir=data_dir, env=secret_env)))
    new_file = tmp_path / "new-secret"
    new_file.write_text(ok(presenced("keys", "secret")))
    out = ok(presenced("keys", "reseal", "--new-secret-file", str(new_file), data_dir=data_dir, env=secret_env))
    assert out.startswith("resealed 2 keys")
    old = presenced("keys", "list", data_dir=data_dir, env=secret_env)
    assert old.returncode != 0
    assert "not the secret" in old.stderr
    _, after = listed(
        ok(presenced("keys", "list", data_dir=data_dir, env={"PRESENCED_KEYS_SECRET_FILE": str(new_file)}))
    )
    assert after == before


def test_a_backup_holds_sealed_keys_and_a_restore_serves_them_with_the_same_secret(
    data_dir: Path, secret_env: dict[str, str], tmp_path: Path
) -> None:
    _, keys = listed(ok(presenced("keys", "list", data_dir=data_dir, env=secret_env)))
    backup = tmp_path / "backup.db"
    refused = presenced("db", "backup", str(tmp_path / "b.tar"), "--with-keys", data_dir=data_dir, env=secret_env)
    assert refused.returncode != 0
    assert "sealed in the database" in refused.stderr
    out = ok(presenced("db", "backup", str(backup), data_dir=data_dir, env=secret_env))
    assert "with its 2 signing keys sealed" in out
    assert "PRESENCED_KEYS_SECRET" in out
    target = tmp_path / "restored"
    out = ok(presenced("db", "restore", str(backup), data_dir=target, env=secret_env))
    assert "with its 2 signing keys sealed in the database" in out
    _, restored = listed(ok(presenced("keys", "list", data_dir=target, env=secret_env)))
    assert restored == keys
    assert not (target / "keys").exists()

"""Helpers shared by the tests: constants, token minting, request headers."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc import jwt

from presenced.bootstrap import Runtime
from presenced.config import Settings
from presenced.oauth.tokens import DEFAULT_LIFETIME, issuer, mint_access_token

BASE_URL = "http://127.0.0.1:8000"
#: Every table, for TRUNCATE between PostgreSQL tests.
TABLES = (
    "presence_changes, presence_sessions, mailbox_settings, presences, users, tenants, emulator_clock, "
    "sign_in_failures, throttle_counts, emulator_faults, emulator_mode, signing_keys, identity_version"
)
#: The presence clock of in-process tests.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: The application id of the tokens the tests mint.
APP_ID = "11111111-2222-3333-4444-555555555555"
#: The fields of a request's log line (presenced.api.requestlog), in their order.
REQUEST_LINE_FIELDS = (
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "client_request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "tenant_id",
    "app_id",
)


async def truncate_postgres(url: str) -> None:
    """Empty every table of a PostgreSQL database (before a runtime is built on it: what it finds there,
    such as an emulator's mark, decides how it is built)."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=3)
    try:
        await conn.execute(f"TRUNCATE {TABLES} CASCADE")
    except asyncpg.UndefinedTableError:
        pass  # not migrated yet: nothing to empty
    finally:
        await conn.close()


async def build_on_manual_clock(tmp_path: Path, key_folder: Path, database_url: str | None) -> Runtime:
    """A runtime of the emulator (the manual clock) on an empty store: PostgreSQL is emptied first."""
    from presenced.bootstrap import build

    settings = dataclasses.replace(make_settings(tmp_path, key_folder, database_url), clock="manual")
    if database_url is not None:
        plain = await build(dataclasses.replace(settings, clock="system"))
        async with plain.engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {TABLES} CASCADE")
        await plain.close()
    return await build(settings)


def make_settings(tmp_path: Path, key_folder: Path, database_url: str | None) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    if not (data_dir / "keys").exists():
        shutil.copytree(key_folder, data_dir / "keys")
    return Settings(data_dir=data_dir, database_url=database_url, public_url=BASE_URL)


class Tokens:
    """Mints tokens signed with the runtime's keys, good or deliberately bad."""

    def __init__(self, runtime: Runtime, tenant_id: str) -> None:
        self.runtime = runtime
        self.tenant_id = tenant_id

    def user(
        self,
        user_id: str,
        *scopes: str,
        tenant_id: str | None = None,
        app_id: str = APP_ID,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> str:
        return mint_access_token(
            self.runtime.keys,
            BASE_URL,
            tenant_id or self.tenant_id,
            app_id=app_id,
            now=datetime.now(UTC),
            user_id=user_id,
            scopes=scopes,
            lifetime=lifetime,
        )

    def app(
        self, *roles: str, tenant_id: str | None = None, app_id: str = APP_ID, lifetime: timedelta = DEFAULT_LIFETIME
    ) -> str:
        return mint_access_token(
            self.runtime.keys,
            BASE_URL,
            tenant_id or self.tenant_id,
            app_id=app_id,
            now=datetime.now(UTC),
            roles=roles,
            lifetime=lifetime,
        )

    def claims(self, user_id: str, **changes: Any) -> dict[str, Any]:
        """Claims of a good delegated Presence.Read.All token, with ``changes`` applied (None removes)."""
        now = int(datetime.now(UTC).timestamp())
        claims: dict[str, Any] = {
            "aud": "https://graph.microsoft.com",
            "iss": issuer(BASE_URL, self.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "tid": self.tenant_id,
            "oid": user_id,
            "appid": APP_ID,
            "scp": "Presence.Read.All",
        }
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(self, claims: dict[str, Any], key: Any = None, kid: str | None = None) -> str:
        key = key or self.runtime.keys.current
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": kid or key.kid or key.thumbprint()}, claims, key)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


class FixedClock:
    """A clock that stays where it is put (for tests and scripted scenarios)."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    async def now(self) -> datetime:
        return self._at

    def read(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at

    def advance(self, by: timedelta) -> None:
        self._at += by


def listening_url(process: subprocess.Popen[str], timeout: float, lines: list[str] | None = None) -> str:
    """The URL in ``serve``'s "listening on" line, read from the process's standard output (the
    lines read are kept in ``lines``); the process is killed and the output shown if it never comes."""
    assert process.stdout is not None
    seen = [] if lines is None else lines
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"listening on (https?://\S+)", line)
        if match:
            return match.group(1)
    process.kill()
    raise AssertionError("the server did not start:\n" + "".join(seen))

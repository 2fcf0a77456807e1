"""The health probes in process, on both stores (docs/deployment.md, "Health checks"): ``/health/live``
and its alias ``/health`` answer without looking at anything; ``/health/ready`` reports the database (reachable
and at the newest migration), the worker (its last sweep, when this process runs it) and Redis (when
configured), 503 when any check fails, each check bounded in time, no URL in the answer."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from presenced.app import create_app
from presenced.bootstrap import Runtime, build
from presenced.errors import ServiceUnavailable
from presenced.services.health import Health
from presenced.services.ports import Migration
from presenced.services.sweeper import Sweeper
from presenced.store.engine import SqlSchemaState
from tests.support import BASE_URL, make_settings, truncate_postgres

DEADLINE = 10.0


@contextlib.asynccontextmanager
async def client_of(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


async def ready(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/health/ready")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, response.json()


@contextlib.contextmanager
def worker_running(sweeper: Sweeper) -> Iterator[None]:
    task = asyncio.get_running_loop().create_task(sweeper.run_forever())
    try:
        yield
    finally:
        task.cancel()


class SilentDatabase:
    """A database whose every connection attempt hangs."""

    async def migration(self) -> Migration:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class DownDatabase:
    async def migration(self) -> Migration:
        raise ServiceUnavailable("The service is unavailable.")


async def test_live_and_its_alias_answer_ok(client: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/health"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.json() == {"status": "ok"}
        assert response.headers["cache-control"] == "no-store"


async def test_ready_without_worker_or_redis(client: httpx.AsyncClient) -> None:
    status, body = await ready(client)
    assert status == 200, body
    assert body == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "worker": {"status": "not applicable"},
            "redis": {"status": "not applicable"},
        },
    }


async def test_ready_with_the_worker_reports_its_last_sweep(runtime: Runtime) -> None:
    async with client_of(runtime) as client:
        with worker_running(runtime.sweeper):
            deadline = time.monotonic() + DEADLINE
            while runtime.sweeper.last_sweep is None:
                assert time.monotonic() < deadline, "the sweeper never swept"
                await asyncio.sleep(0.02)
            status, body = await ready(client)
    assert status == 200, body
    worker = body["checks"]["worker"]
    assert worker["status"] == "ok"
    assert isinstance(worker["secondsSinceLastSweep"], float)
    assert 0 <= worker["secondsSinceLastSweep"] <= 30


async def test_a_worker_without_a_recent_sweep_is_not_ready(runtime: Runtime) -> None:
    sweeper = Sweeper(runtime.writer)
    sweeper.started = time.monotonic()  # its loop began, and has not swept yet
    runtime.health = Health(SqlSchemaState(runtime.engine), sweeper)
    async with client_of(runtime) as client:
        status, body = await ready(client)
        assert status == 503
        assert body["status"] == "failing"
        assert body["checks"]["worker"] == {"status": "failing", "reason": "no sweep yet"}
        assert body["checks"]["database"] == {"status": "ok"}

        await sweeper.run_due()
        # An hour later, by the check's clock, that sweep is stale.
        runtime.health = Health(SqlSchemaState(runtime.engine), sweeper, monotonic=lambda: time.monotonic() + 3600)
    async with client_of(runtime) as client:
        status, body = await ready(client)
    assert status == 503
    worker = body["checks"]["worker"]
    assert worker["status"] == "failing"
    assert worker["reason"] == "no sweep for over 30 s"
    assert worker["secondsSinceLastSweep"] >= 3600


async def head_revision(runtime: Runtime) -> str:
    async with runtime.engine.connect() as connection:
        revision: str = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    return revision


async def test_a_database_behind_or_ahead_of_this_version_is_not_ready(runtime: Runtime) -> None:
    async def set_revision(revision: str) -> None:
        async with runtime.engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})

    head = await head_revision(runtime)
    cases = [
        ("0001", 503, {"status": "failing", "reason": "not at the newest migration (run presenced db upgrade)"}),
        ("9999", 503, {"status": "failing", "reason": "migrated by a newer version of presenced"}),
        (head, 200, {"status": "ok"}),
    ]
    try:
        async with client_of(runtime) as client:
            for revision, expected_status, expected_check in cases:
                await set_revision(revision)
                status, body = await ready(client)
                assert status == expected_status, (revision, body)
                assert body["checks"]["database"] == expected_check, revision
    finally:
        await set_revision(head)


async def test_a_database_never_migrated_is_not_ready(runtime: Runtime) -> None:
    assert await SqlSchemaState(runtime.engine).migration() == "newest"
    head = await head_revision(runtime)
    async with runtime.engine.begin() as connection:
        await connection.execute(text("DELETE FROM alembic_version"))
    try:
        async with client_of(runtime) as client:
            status, body = await ready(client)
        assert status == 503
        assert body["checks"]["database"] == {
            "status": "failing",
            "reason": "not migrated (run presenced db upgrade)",
        }
    finally:
        async with runtime.engine.begin() as connection:
            await connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": head})


async def test_an_unreachable_or_silent_database_fails_the_check_but_not_live(runtime: Runtime) -> None:
    runtime.health = Health(DownDatabase(), runtime.sweeper)
    async with client_of(runtime) as client:
        status, body = await ready(client)
        assert status == 503
        assert body["checks"]["database"] == {"status": "failing", "reason": "unreachable"}
        assert (await client.get("/health/live")).status_code == 200
    # A database that never answers: the check gives up after its timeout instead of holding the probe.
    runtime.health = Health(SilentDatabase(), runtime.sweeper, timeout=0.05)
    async with client_of(runtime) as client:
        status, body = await ready(client)
    assert status == 503
    assert body["checks"]["database"] == {"status": "failing", "reason": "no answer within 0.05 s"}


async def test_redis_is_checked_when_configured(tmp_path: Path, key_folder: Path, redis_url: str) -> None:
    settings = dataclasses.replace(make_settings(tmp_path, key_folder, None), redis_url=redis_url)
    runtime = await build(settings)
    try:
        async with client_of(runtime) as client:
            status, body = await ready(client)
    finally:
        await runtime.close()
    assert status == 200, body
    assert body["checks"]["redis"] == {"status": "ok"}


async def test_an_unreachable_redis_is_not_ready_and_its_url_is_not_shown(
    tmp_path: Path, key_folder: Path, database_url: str | None
) -> None:
    if database_url is not None:
        await truncate_postgres(database_url)
    # Nothing listens on port 1: the connection is refused.
    unreachable = "redis://:secret-password@127.0.0.1:1/0"
    settings = dataclasses.replace(make_settings(tmp_path, key_folder, database_url), redis_url=unreachable)
    runtime = await build(settings)
    try:
        async with client_of(runtime) as client:
            response = await client.get("/health/ready")
    finally:
        await runtime.close()
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == {"status": "failing", "reason": "unreachable"}
    assert response.json()["checks"]["database"] == {"status": "ok"}
    assert "secret" not in response.text
    assert "127.0.0.1" not in response.text
    if database_url is not None:
        assert database_url not in response.text


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
async def test_the_probes_need_no_token_and_take_only_get(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200
    response = await client.post(path)
    assert response.status_code == 405
    assert response.json()["error"]["code"]

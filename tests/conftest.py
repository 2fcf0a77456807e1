"""Shared fixtures: a runtime on SQLite or PostgreSQL, an in-process client, tokens."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from presenced.app import create_app
from presenced.bootstrap import Runtime, build
from presenced.oauth.keys import SigningKeys
from presenced.services.demo import DemoTenant, seed_demo
from tests.support import BASE_URL, T0, FixedClock, Tokens, make_settings, truncate_postgres

POSTGRES_ENV = "PRESENCED_TEST_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_ENV = "PRESENCED_TEST_REDIS_URL"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=3)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=3)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, dropped afterwards.

    Uses $PRESENCED_TEST_POSTGRES_URL (a database the tests may create others
    from); when it is unset and no server answers at the default, tests skip.
    """
    admin_url = os.environ.get(POSTGRES_ENV)
    explicit = admin_url is not None
    admin_url = admin_url or DEFAULT_POSTGRES
    name = f"presenced_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_create_database(admin_url, name))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if explicit:
            pytest.fail(f"PostgreSQL at {admin_url} is not usable: {exc}")
        pytest.skip(f"no PostgreSQL at {admin_url} (set {POSTGRES_ENV} to run these tests)")
    base, _, _ = admin_url.rpartition("/")
    yield f"{base}/{name}"
    asyncio.run(_drop_database(admin_url, name))


@pytest.fixture
def clean_postgres_url(postgres_url: str) -> str:
    """The test PostgreSQL database, emptied (for tests that start servers on it)."""
    asyncio.run(truncate_postgres(postgres_url))
    return postgres_url


@pytest.fixture
async def shared_url(tmp_path: Path, database_url: str | None) -> str:
    """One database for several runtimes of a test (as several processes would share it): an SQLite file
    outside their data directories, or the test PostgreSQL database, emptied."""
    if database_url is None:
        return f"sqlite:///{tmp_path / 'shared.db'}"
    await truncate_postgres(database_url)
    return database_url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A reachable Redis: $PRESENCED_TEST_REDIS_URL, else the default; the tests skip without one."""
    url = os.environ.get(REDIS_ENV) or DEFAULT_REDIS
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"no Redis at {url} ({exc}; set {REDIS_ENV} to run these tests)")
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def key_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing key for the whole run: generating RSA keys is slow."""
    data_dir = tmp_path_factory.mktemp("keys")
    SigningKeys.load_or_create(data_dir)
    return data_dir / "keys"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None for SQLite in the data directory, else a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def runtime(tmp_path: Path, key_folder: Path, database_url: str | None) -> AsyncIterator[Runtime]:
    """A migrated, empty store with its services, on a fixed presence clock at ``T0``."""
    if database_url is not None:
        await truncate_postgres(database_url)
    rt = await build(make_settings(tmp_path, key_folder, database_url), clock=FixedClock(T0))
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
def clock(runtime: Runtime) -> FixedClock:
    assert isinstance(runtime.clock, FixedClock)
    return runtime.clock


@pytest.fixture
async def demo(runtime: Runtime) -> DemoTenant:
    return await seed_demo(runtime.store, runtime.writer, runtime.clock)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


@pytest.fixture
def tokens(runtime: Runtime, demo: DemoTenant) -> Tokens:
    return Tokens(runtime, demo.tenant.id)

"""What each process keeps of the directory, and how late a change reaches it (docs/identity.md, "What each
process keeps").

Two runtimes built on one database stand for two processes: ``here`` makes a change, ``there`` had been
answering token requests from what it keeps. A revoked grant, a removed client secret, a deleted app and a
removed app role assignment are refused by ``here`` at once and by ``there`` within a second. The tests give
``there`` 1.5 seconds (the documented second, and room for a loaded machine) and never look at how fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from presenced.app import create_app
from presenced.bootstrap import Runtime, build
from presenced.oauth.tokens import decode_own_token
from presenced.services.identity import GRAPH
from presenced.store.directory_cache import CachedIdentityStore
from tests.oauth.identity_support import (
    CALLBACK,
    World,
    add_secret,
    assert_oauth_error,
    issue_code,
    pkce,
    post_token,
    seed_world,
)
from tests.support import BASE_URL, make_settings, truncate_postgres

#: How long ``there`` may go on answering after a change: the documented second, and some room.
BOUND = 1.5
SCOPE = "https://graph.microsoft.com/Presence.Read openid offline_access"


@pytest.fixture
async def processes(
    tmp_path: Path, key_folder: Path, database_url: str | None
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Two runtimes on one database (SQLite in one data directory, or PostgreSQL)."""
    if database_url is not None:
        await truncate_postgres(database_url)
    settings = make_settings(tmp_path, key_folder, database_url)
    here = await build(settings)
    there = await build(settings)
    try:
        yield here, there
    finally:
        await there.close()
        await here.close()


def client(runtime: Runtime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


def credentials(world: World) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": world.daemon.app_id,
        "client_secret": world.daemon_secret,
        "scope": "https://graph.microsoft.com/.default",
    }


async def refused_within(bound: float, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """The first answer to ``request`` that is not a 200, sent again every 50 ms; a 200 later than ``bound``
    seconds after the first try fails the test."""
    started = time.monotonic()
    while True:
        answer = await request()
        if answer.status_code != 200:
            return answer
        assert time.monotonic() - started < bound, f"still answered 200 after {bound} s"
        await asyncio.sleep(0.05)


async def test_a_removed_secret_is_refused_here_at_once_and_there_within_a_second(
    processes: tuple[Runtime, Runtime],
) -> None:
    here, there = processes
    world = await seed_world(here)
    # A second secret, so that the app keeps one: the removed one is then a wrong secret (7000215).
    await add_secret(here, world.daemon)
    async with client(here) as first, client(there) as second:
        for http in (first, second):  # each keeps the app and its secrets now
            assert (await post_token(http, world.tenant_id, credentials(world))).status_code == 200
        stored = await here.identity_store.find_application(world.daemon.app_id)
        assert stored is not None
        await here.identity.remove_password(stored, stored.secrets[0].key_id)

        at_once = await post_token(first, world.tenant_id, credentials(world))
        assert_oauth_error(at_once, status=401, error="invalid_client", code=7000215)
        later = await refused_within(BOUND, lambda: post_token(second, world.tenant_id, credentials(world)))
        assert_oauth_error(later, status=401, error="invalid_client", code=7000215)


async def test_a_deleted_app_is_refused_here_at_once_and_there_within_a_second(
    processes: tuple[Runtime, Runtime],
) -> None:
    here, there = processes
    world = await seed_world(here)
    async with client(here) as first, client(there) as second:
        for http in (first, second):
            assert (await post_token(http, world.tenant_id, credentials(world))).status_code == 200
        await here.identity.delete_application(world.tenant_id, world.daemon.id)

        at_once = await post_token(first, world.tenant_id, credentials(world))
        assert_oauth_error(at_once, status=400, error="unauthorized_client", code=700016)
        later = await refused_within(BOUND, lambda: post_token(second, world.tenant_id, credentials(world)))
        assert_oauth_error(later, status=400, error="unauthorized_client", code=700016)


async def test_a_revoked_grant_is_refused_here_at_once_and_there_within_a_second(
    processes: tuple[Runtime, Runtime],
) -> None:
    here, there = processes
    world = await seed_world(here)
    verifier, challenge = pkce()
    code = await issue_code(here, world.tenant_id, world.public, "alex", SCOPE, CALLBACK, challenge=challenge)
    async with client(here) as first, client(there) as second:
        redeemed = await post_token(
            first,
            world.tenant_id,
            {
                "grant_type": "authorization_code",
                "client_id": world.public.app_id,
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
            },
        )
        assert redeemed.status_code == 200
        token = redeemed.json()["refresh_token"]

        async def refresh(http: httpx.AsyncClient) -> httpx.Response:
            nonlocal token
            form = {"grant_type": "refresh_token", "client_id": world.public.app_id, "refresh_token": token}
            answer = await post_token(http, world.tenant_id, form)
            if answer.status_code == 200:  # rotated: the next request sends the new one
                token = answer.json()["refresh_token"]
            return answer

        for http in (first, second):  # each keeps the user's grant now
            assert (await refresh(http)).status_code == 200
        sp = await here.identity_store.find_service_principal(world.tenant_id, world.public.app_id)
        assert sp is not None
        (grant,) = await here.identity_store.list_grants(world.tenant_id, client_id=sp.id)
        await here.identity.revoke_grant(world.tenant_id, grant.id)

        # A refused refresh does not spend the token: the same one goes to the other process.
        at_once = await refresh(first)
        assert_oauth_error(at_once, status=400, error="invalid_grant", code=65001, suberror="consent_required")
        later = await refused_within(BOUND, lambda: refresh(second))
        assert_oauth_error(later, status=400, error="invalid_grant", code=65001, suberror="consent_required")


async def test_a_removed_app_role_assignment_leaves_the_tokens_here_at_once_and_there_within_a_second(
    processes: tuple[Runtime, Runtime],
) -> None:
    here, there = processes
    world = await seed_world(here)

    async def roles(http: httpx.AsyncClient) -> list[str]:
        answer = await post_token(http, world.tenant_id, credentials(world))
        assert answer.status_code == 200
        found: list[str] = decode_own_token(here.keys, answer.json()["access_token"]).get("roles", [])
        return found

    async with client(here) as first, client(there) as second:
        for http in (first, second):
            assert "Presence.Read.All" in await roles(http)
        sp = await here.identity_store.find_service_principal(world.tenant_id, world.daemon.app_id)
        assert sp is not None
        read_all = GRAPH.roles["Presence.Read.All"].id
        (assignment,) = [
            a for a in await here.identity_store.list_assignments(world.tenant_id, sp.id) if a.app_role_id == read_all
        ]
        await here.identity.revoke_assignment(world.tenant_id, sp.id, assignment.id)

        assert "Presence.Read.All" not in await roles(first)
        started = time.monotonic()
        while "Presence.Read.All" in await roles(second):
            assert time.monotonic() - started < BOUND, f"the role was still in the tokens after {BOUND} s"
            await asyncio.sleep(0.05)


async def test_with_redis_a_change_reaches_the_other_process_without_its_reading_the_version(
    tmp_path: Path, key_folder: Path, database_url: str | None, redis_url: str
) -> None:
    """With Redis, the change's word empties the other process's cache: it would not read the directory's
    version again for an hour, yet refuses within the bound."""
    if database_url is not None:
        await truncate_postgres(database_url)
    settings = replace(make_settings(tmp_path, key_folder, database_url), redis_url=redis_url)
    here, there = await build(settings), await build(settings)
    listening = [asyncio.create_task(runtime.fanout.run()) for runtime in (here, there)]
    try:
        assert isinstance(there.identity_store, CachedIdentityStore)
        world = await seed_world(here)
        async with client(there) as second:
            assert (await post_token(second, world.tenant_id, credentials(world))).status_code == 200
            there.identity_store.cache.check_seconds = 3600
            await asyncio.sleep(0.2)  # both subscribed
            await here.identity.delete_application(world.tenant_id, world.daemon.id)
            later = await refused_within(BOUND, lambda: post_token(second, world.tenant_id, credentials(world)))
            assert_oauth_error(later, status=400, error="unauthorized_client", code=700016)
    finally:
        for task in listening:
            task.cancel()
        await asyncio.gather(*listening, return_exceptions=True)
        await there.close()
        await here.close()

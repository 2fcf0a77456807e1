"""Signing keys sealed in the database: shared by processes that share nothing but the database.

Two runtimes with their own data directories stand for two machines; they share only the database
(one SQLite file, or PostgreSQL) and PRESENCED_KEYS_SECRET.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from presenced.bootstrap import Runtime, build, reseal_keys, seed_demo_data
from presenced.config import Settings
from presenced.errors import ConfigurationError, InvalidAuthenticationToken
from presenced.oauth.keys import PUBLISHED, DatabaseKeys, KeySealer, SigningKeys, open_keys
from presenced.oauth.tokens import mint_access_token
from presenced.services.demo import DEMO_TENANT_ID
from presenced.store.keys import SqlKeyRows
from tests.support import BASE_URL

SECRET = "k" * 40
OTHER_SECRET = "z" * 40


Opener = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def machine(tmp_path: Path, shared_url: str) -> AsyncIterator[Opener]:
    """Builds a runtime on a data directory of its own (``name``) over the shared database; closes them all."""
    opened: list[Runtime] = []

    async def open_machine(name: str, secret: str | None = SECRET, keys_from: Path | None = None) -> Runtime:
        data_dir = tmp_path / name
        data_dir.mkdir(exist_ok=True)
        if keys_from is not None:
            shutil.copytree(keys_from, data_dir / "keys")
        settings = Settings(data_dir=data_dir, database_url=shared_url, public_url=BASE_URL, keys_secret=secret)
        runtime = await build(settings)
        opened.append(runtime)
        return runtime

    yield open_machine
    for runtime in reversed(opened):
        await runtime.close()


def kids(keys: SigningKeys) -> list[str]:
    return [str(key.kid) for key in keys.keys]


def app_token(keys: SigningKeys) -> str:
    return mint_access_token(
        keys, BASE_URL, DEMO_TENANT_ID, app_id=str(uuid.UUID(int=7)), now=datetime.now(UTC), roles=["Presence.Read.All"]
    )


def pem_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.pem"))


async def caught_up(follower: SigningKeys, leader: SigningKeys) -> None:
    """Wait (at most 5 s) until ``follower``, whose watch reads the database each second, holds ``leader``'s keys."""
    async with asyncio.timeout(5):
        while kids(follower) != kids(leader):  # noqa: ASYNC110 - the watch task signals nothing: look again
            await asyncio.sleep(0.05)


async def verifies(runtime: Runtime, token: str) -> bool:
    try:
        await runtime.verifier.verify(token)
    except InvalidAuthenticationToken:
        return False
    return True


async def test_two_machines_share_the_keys_and_accept_each_others_tokens(machine: Opener, tmp_path: Path) -> None:
    first = await machine("a")
    second = await machine("b")
    await seed_demo_data(first)
    assert isinstance(first.keys, DatabaseKeys)
    assert isinstance(second.keys, DatabaseKeys)
    assert kids(first.keys) == kids(second.keys)
    assert len(kids(first.keys)) == 2  # a current and a next key, made by the first to start
    assert first.keys.jwks() == second.keys.jwks()
    assert await verifies(second, app_token(first.keys))
    assert await verifies(first, app_token(second.keys))
    # Neither data directory holds a key: the database does.
    assert pem_names(tmp_path / "a" / "keys") == pem_names(tmp_path / "b" / "keys") == []


async def test_the_database_keeps_the_keys_sealed(machine: Opener, shared_url: str) -> None:
    first = await machine("a")
    rows = await SqlKeyRows(first.engine).sealed_keys()
    assert [row.kid for row in rows] == kids(first.keys)
    for row in rows:
        assert b"PRIVATE KEY" not in row.sealed
        assert b"BEGIN" not in row.sealed
    # A sealed key bound to another kid does not open: rows cannot be swapped.
    swapped = dataclasses.replace(rows[0], sealed=rows[1].sealed)
    with pytest.raises(ConfigurationError):
        KeySealer(SECRET).open(swapped)


async def test_the_first_start_with_a_secret_moves_the_folders_keys_in(
    machine: Opener, key_folder: Path, tmp_path: Path
) -> None:
    """Tokens signed before the move (with the folder's keys) still verify after it, on every machine."""
    folder_keys = SigningKeys.load_or_create(key_folder.parent)
    before = app_token(folder_keys)
    first = await machine("a", keys_from=key_folder)
    second = await machine("b")  # another machine, with no keys folder at all
    await seed_demo_data(first)
    assert kids(first.keys) == kids(folder_keys) == kids(second.keys)
    assert await verifies(second, before)
    # The folder is left as it was (it is not read again while the secret is set).
    assert pem_names(tmp_path / "a" / "keys") == pem_names(key_folder)


async def test_a_rotation_on_one_machine_reaches_the_other_within_a_second(machine: Opener) -> None:
    first = await machine("a")
    second = await machine("b")
    await seed_demo_data(first)
    watching = asyncio.create_task(second.keys.watch())
    try:
        old = kids(first.keys)
        current, upcoming = await first.keys.rotate()
        assert current == old[-1]  # the old next key signs now
        assert kids(first.keys) == [*old, upcoming]
        await caught_up(second.keys, first.keys)
        assert kids(second.keys) == kids(first.keys)
        assert second.keys.current.kid == current
    finally:
        watching.cancel()


async def test_a_token_signed_with_a_key_unknown_here_makes_the_keys_read_again(machine: Opener) -> None:
    """Two rotations elsewhere: the key that signs there now was never seen here; the token still verifies
    (the keys are read again at once; that is allowed once a second)."""
    first = await machine("a")
    second = await machine("b")
    await seed_demo_data(first)
    await first.keys.rotate()
    await first.keys.rotate()
    token = app_token(first.keys)
    assert not second.keys.knows(str(first.keys.current.kid))
    await asyncio.sleep(1.1)
    assert await verifies(second, token)
    assert kids(second.keys) == kids(first.keys)


async def test_a_retired_key_is_refused_everywhere(machine: Opener) -> None:
    first = await machine("a")
    second = await machine("b")
    await seed_demo_data(first)
    old = app_token(first.keys)
    assert await verifies(second, old)  # and now cached there
    watching = asyncio.create_task(second.keys.watch())
    try:
        for _ in range(PUBLISHED - 1):  # the signing key becomes previous, then is retired
            await first.keys.rotate()
        assert not await verifies(first, old)
        await caught_up(second.keys, first.keys)
        assert not await verifies(second, old)
    finally:
        watching.cancel()


async def test_rotations_at_once_on_two_machines_both_land(machine: Opener) -> None:
    first = await machine("a")
    second = await machine("b")
    before = kids(first.keys)
    await asyncio.gather(first.keys.rotate(), second.keys.rotate())
    rows = await SqlKeyRows(first.engine).sealed_keys()
    assert [row.position for row in rows] == [2, 3, 4]  # two new keys, after the first two; one retired
    assert next(row.kid for row in rows) == before[-1]
    await first.keys.reload()
    assert len(set(kids(first.keys))) == PUBLISHED


async def test_machines_starting_together_agree_on_the_first_keys(machine: Opener, shared_url: str) -> None:
    """Many processes opening an empty table at once: one set of keys is stored, and every one of them uses it."""
    runtime = await machine("a", secret=None)  # migrated; keys in its folder, none in the database
    rows = SqlKeyRows(runtime.engine)
    opened = await asyncio.gather(*(open_keys(Path(f"/nonexistent/{n}"), SECRET, rows) for n in range(4)))
    assert len({tuple(kids(keys)) for keys in opened}) == 1
    assert [row.kid for row in await rows.sealed_keys()] == kids(opened[0])


async def test_a_wrong_or_missing_secret_is_refused_at_start(machine: Opener) -> None:
    await machine("a")
    with pytest.raises(ConfigurationError, match="not the secret they were sealed with"):
        await machine("b", secret=OTHER_SECRET)
    with pytest.raises(ConfigurationError, match="kept in the database: set PRESENCED_KEYS_SECRET"):
        await machine("c", secret=None)


async def test_resealing_under_a_new_secret(machine: Opener) -> None:
    first = await machine("a")
    before = kids(first.keys)
    assert await reseal_keys(first, OTHER_SECRET) == len(before)
    with pytest.raises(ConfigurationError, match="not the secret"):
        await machine("b")
    second = await machine("c", secret=OTHER_SECRET)
    assert kids(second.keys) == before


async def test_without_a_secret_the_keys_stay_in_the_folder(machine: Opener, tmp_path: Path) -> None:
    runtime = await machine("a", secret=None)
    assert not isinstance(runtime.keys, DatabaseKeys)
    assert runtime.keys.folder == tmp_path / "a" / "keys"
    assert await SqlKeyRows(runtime.engine).sealed_keys() == []

"""The token endpoint's codes and refresh tokens on the bare drivers (``store.token_state``), on SQLite and
PostgreSQL: writes that meet in one transaction (SQLite's group commit) or race (PostgreSQL) keep the rules of
one write after another."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from presenced.bootstrap import Runtime, build
from presenced.services.credentials import digest
from presenced.services.entities import Account, AuthorizationCode, RefreshToken, Tenant, User
from presenced.store.token_state import SqliteTokenState
from tests.support import T0, make_settings

TENANT = Tenant(str(uuid.UUID(int=1)), "Contoso")
ANNA = User(str(uuid.UUID(int=11)), TENANT.id, "anna@contoso.example", "Anna")
APP = str(uuid.UUID(int=101))


@pytest.fixture
async def seeded(runtime: Runtime) -> Runtime:
    await runtime.identity_store.create_tenant(TENANT, T0)
    await runtime.identity_store.create_account(Account(ANNA, None, False), T0)
    return runtime


def refresh(name: str, family: str | None = None, user_id: str = ANNA.id) -> RefreshToken:
    return RefreshToken(
        digest(name),
        family or str(uuid.uuid4()),
        TENANT.id,
        APP,
        user_id,
        ("openid",),
        True,
        T0,
        T0 + timedelta(days=1),
    )


def code(name: str) -> AuthorizationCode:
    return AuthorizationCode(
        digest(name), TENANT.id, APP, ANNA.id, "http://localhost", ("openid",), None, None, None, T0,
        T0 + timedelta(minutes=10),
    )  # fmt: skip


async def test_of_two_rotations_of_one_refresh_token_one_wins(seeded: Runtime) -> None:
    store = seeded.identity_store
    await store.save_refresh_token(refresh("r0", "family"))
    first, second = refresh("r1", "family"), refresh("r2", "family")
    won = await asyncio.gather(
        store.rotate_refresh_token(digest("r0"), first, T0), store.rotate_refresh_token(digest("r0"), second, T0)
    )
    assert sorted(won) == [False, True]
    winner = first if won[0] else second
    loser = second if won[0] else first
    assert await store.find_refresh_token(winner.token_hash) is not None
    assert await store.find_refresh_token(loser.token_hash) is None
    spent = await store.find_refresh_token(digest("r0"))
    assert spent is not None
    assert spent.used == T0


async def test_a_rotation_of_a_spent_or_unknown_token_changes_nothing(seeded: Runtime) -> None:
    store = seeded.identity_store
    await store.save_refresh_token(refresh("r0", "family"))
    assert await store.rotate_refresh_token(digest("r0"), refresh("r1", "family"), T0)
    assert not await store.rotate_refresh_token(digest("r0"), refresh("r2", "family"), T0 + timedelta(seconds=1))
    assert not await store.rotate_refresh_token(digest("nobody"), refresh("r3", "family"), T0)
    assert await store.find_refresh_token(digest("r2")) is None
    assert await store.find_refresh_token(digest("r3")) is None
    spent = await store.find_refresh_token(digest("r0"))
    assert spent is not None
    assert spent.used == T0


async def test_of_two_redemptions_of_one_code_one_finds_it_unredeemed(seeded: Runtime) -> None:
    store = seeded.identity_store
    await store.save_code(code("c"))
    answers = await asyncio.gather(*(store.redeem_code(digest("c"), T0) for _ in range(3)))
    assert all(answer is not None for answer in answers)
    assert sorted(answer.redeemed is None for answer in answers if answer is not None) == [False, False, True]


async def test_a_write_the_database_refuses_fails_alone(seeded: Runtime) -> None:
    """Among writes that share a transaction, one whose rows break a constraint (a user that does not exist)
    fails, and the others are stored."""
    store = seeded.identity_store
    saves = [store.save_refresh_token(refresh(f"r{n}")) for n in range(4)]
    saves.insert(2, store.save_refresh_token(refresh("nobody's", user_id=str(uuid.UUID(int=99)))))
    outcomes = await asyncio.gather(*saves, return_exceptions=True)
    assert [isinstance(outcome, Exception) for outcome in outcomes] == [False, False, True, False, False]
    for n in range(4):
        assert await store.find_refresh_token(digest(f"r{n}")) is not None
    assert await store.find_refresh_token(digest("nobody's")) is None


async def test_on_sqlite_writes_waiting_together_share_one_transaction(tmp_path: Path, key_folder: Path) -> None:
    runtime = await build(make_settings(tmp_path, key_folder, None))
    try:
        store = runtime.identity_store
        await store.create_tenant(TENANT, T0)
        await store.create_account(Account(ANNA, None, False), T0)
        tokens = store._tokens  # type: ignore[attr-defined]
        assert isinstance(tokens, SqliteTokenState)
        before = tokens.transactions
        await asyncio.gather(
            *(store.save_refresh_token(refresh(f"r{n}")) for n in range(20)), store.save_code(code("c"))
        )
        assert tokens.transactions - before <= 2  # the first alone, perhaps; the rest together
        for n in range(20):
            assert await store.find_refresh_token(digest(f"r{n}")) is not None
    finally:
        await runtime.close()

"""The identity side of the SQL store, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

from presenced.bootstrap import Runtime
from presenced.services.credentials import digest
from presenced.services.entities import Account, AuthorizationCode, DeviceCode, RefreshToken, Tenant, User
from tests.support import T0

TENANT = Tenant(str(uuid.UUID(int=1)), "Contoso")
ANNA = User(str(uuid.UUID(int=11)), TENANT.id, "anna@contoso.example", "Anna")
APP = str(uuid.UUID(int=101))


async def _seed(runtime: Runtime) -> None:
    await runtime.identity_store.create_tenant(TENANT, T0)
    await runtime.identity_store.create_account(Account(ANNA, None, False), T0)


def _code(name: str, expires_in: timedelta) -> AuthorizationCode:
    return AuthorizationCode(
        digest(name), TENANT.id, APP, ANNA.id, "http://localhost", ("openid",), None, None, None, T0, T0 + expires_in
    )


def _refresh(name: str, expires_in: timedelta) -> RefreshToken:
    return RefreshToken(
        digest(name), str(uuid.uuid4()), TENANT.id, APP, ANNA.id, ("openid",), True, T0, T0 + expires_in
    )


def _device(name: str, expires_in: timedelta) -> DeviceCode:
    return DeviceCode(digest(name), digest(f"user-{name}"), "common", APP, ("openid",), "pending", 5, T0 + expires_in)


async def test_purging_removes_expired_sign_in_state_and_keeps_the_rest(runtime: Runtime) -> None:
    """purge_expired deletes codes, refresh tokens, device codes and sessions past their expiry, nothing else."""
    await _seed(runtime)
    store = runtime.identity_store
    for name, life in (("old", timedelta(minutes=-1)), ("live", timedelta(minutes=5))):
        await store.save_code(_code(name, life))
        await store.save_refresh_token(_refresh(name, life))
        await store.save_device_code(_device(name, life))
        await store.create_session(digest(f"session-{name}"), ANNA.id, T0, T0 + life)
    await store.purge_expired(T0)
    assert await store.find_refresh_token(digest("old")) is None
    assert await store.find_refresh_token(digest("live")) is not None
    assert await store.find_device_code(device_code_hash=digest("old")) is None
    assert await store.find_device_code(device_code_hash=digest("live")) is not None
    assert await store.redeem_code(digest("old"), T0) is None
    assert await store.redeem_code(digest("live"), T0) is not None
    assert await store.find_session(digest("session-live"), T0) is not None
    assert await store.find_session(digest("session-old"), T0 - timedelta(hours=1)) is None


async def test_a_code_redeems_once(runtime: Runtime) -> None:
    """The first redemption returns the code unredeemed; the second returns it marked redeemed."""
    await _seed(runtime)
    await runtime.identity_store.save_code(_code("c", timedelta(minutes=10)))
    first = await runtime.identity_store.redeem_code(digest("c"), T0)
    second = await runtime.identity_store.redeem_code(digest("c"), T0 + timedelta(seconds=1))
    assert first is not None
    assert first.redeemed is None
    assert second is not None
    assert second.redeemed == T0


async def test_deleting_a_user_takes_their_sign_in_state(runtime: Runtime) -> None:
    """A deleted user's codes, refresh tokens and sessions go with them."""
    await _seed(runtime)
    store = runtime.identity_store
    await store.save_code(_code("c", timedelta(minutes=10)))
    await store.save_refresh_token(_refresh("r", timedelta(days=1)))
    await store.create_session(digest("s"), ANNA.id, T0, T0 + timedelta(hours=1))
    assert await store.delete_user(TENANT.id, ANNA.id)
    assert await store.redeem_code(digest("c"), T0) is None
    assert await store.find_refresh_token(digest("r")) is None
    assert await store.find_session(digest("s"), T0) is None

"""The token verifier's cache: bounded, and never past a token's expiry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from presenced.errors import InvalidAuthenticationToken
from presenced.oauth.keys import SigningKeys
from presenced.oauth.tokens import TENANT_TTL, TokenVerifier, mint_access_token

BASE = "http://127.0.0.1:8000"
TENANT = str(uuid.UUID(int=1))
APP = str(uuid.UUID(int=2))
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Tenants:
    """A tenant directory that counts its lookups (each one is a full verification)."""

    def __init__(self) -> None:
        self.lookups = 0

    async def exists(self, tenant_id: str) -> bool:
        self.lookups += 1
        return tenant_id == TENANT


@pytest.fixture
def keys(key_folder: Path) -> SigningKeys:
    return SigningKeys.load_or_create(key_folder.parent)


def token(keys: SigningKeys, user: int, lifetime: timedelta = timedelta(hours=1)) -> str:
    return mint_access_token(
        keys,
        BASE,
        TENANT,
        app_id=APP,
        now=START,
        user_id=str(uuid.UUID(int=user)),
        scopes=["Presence.Read"],
        lifetime=lifetime,
    )


async def test_a_cached_token_is_not_verified_again(keys: SigningKeys) -> None:
    """The second use of a token is answered from the cache."""
    tenants, now = Tenants(), [START]
    verifier = TokenVerifier(keys, BASE, tenants.exists, now=lambda: now[0])
    same = token(keys, 1)
    first = await verifier.verify(same)
    second = await verifier.verify(same)
    assert first == second
    assert first.user_id == str(uuid.UUID(int=1))
    assert tenants.lookups == 1


async def test_a_cached_token_is_refused_after_its_expiry(keys: SigningKeys) -> None:
    """A cached token stops working once its expiry plus the 60 s leeway has passed."""
    now = [START]
    verifier = TokenVerifier(keys, BASE, Tenants().exists, now=lambda: now[0])
    short = token(keys, 1, lifetime=timedelta(minutes=5))
    await verifier.verify(short)
    now[0] = START + timedelta(minutes=5, seconds=59)
    await verifier.verify(short)
    now[0] = START + timedelta(minutes=6)
    with pytest.raises(InvalidAuthenticationToken, match="expired"):
        await verifier.verify(short)


async def test_the_cache_is_bounded(keys: SigningKeys) -> None:
    """With room for two tokens, a third pushes the oldest out, which is then verified again."""
    tenants = Tenants()
    now = [START]
    verifier = TokenVerifier(keys, BASE, tenants.exists, cache_size=2, now=lambda: now[0])

    async def verify(t: str) -> None:
        # Past the tenant's remembered existence, so each full verification asks for the tenant again.
        now[0] += TENANT_TTL + timedelta(seconds=1)
        await verifier.verify(t)

    tokens = [token(keys, n) for n in (1, 2, 3)]
    for t in tokens:
        await verify(t)
    assert tenants.lookups == 3
    await verify(tokens[2])
    await verify(tokens[1])
    assert tenants.lookups == 3
    await verify(tokens[0])
    assert tenants.lookups == 4


async def test_a_tenant_is_looked_up_once_per_ttl_for_new_tokens(keys: SigningKeys) -> None:
    """New tokens of a tenant seen within the last 10 s need no tenant query; after that, one again."""
    tenants = Tenants()
    now = [START]
    verifier = TokenVerifier(keys, BASE, tenants.exists, now=lambda: now[0])
    await verifier.verify(token(keys, 1))
    await verifier.verify(token(keys, 2))
    assert tenants.lookups == 1
    now[0] += TENANT_TTL
    await verifier.verify(token(keys, 3))
    assert tenants.lookups == 2

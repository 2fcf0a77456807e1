"""The authorization server's collaborators, each built alone from real parts (the runtime's store, keys and
identity service), without the server that wires them together."""

from __future__ import annotations

import base64

import pytest

from presenced.bootstrap import Runtime
from presenced.oauth.clients import Clients
from presenced.oauth.consent import Consent
from presenced.oauth.errors import OAuthError
from presenced.oauth.grants import ClientCredentialsGrant
from presenced.oauth.minting import TokenMinter
from presenced.oauth.tokens import decode_own_token
from tests.oauth.identity_support import World, seed_world
from tests.support import BASE_URL


@pytest.fixture
async def world(runtime: Runtime) -> World:
    return await seed_world(runtime)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_clients_authenticate_by_basic_header_or_form(runtime: Runtime, world: World) -> None:
    clients = Clients(runtime.identity_store)
    daemon = world.daemon.app_id
    by_header = await clients.authenticate_client({}, basic(daemon, world.daemon_secret), None, secret_required=True)
    by_form = await clients.authenticate_client(
        {"client_id": daemon, "client_secret": world.daemon_secret}, {}, None, secret_required=True
    )
    assert (by_header.app.app_id, by_header.authenticated) == (daemon, True)
    assert (by_form.app.app_id, by_form.authenticated) == (daemon, True)
    with pytest.raises(OAuthError) as refused:
        await clients.authenticate_client({}, basic(daemon, "wrong"), None, secret_required=True)
    assert (refused.value.aadsts, refused.value.status) == (7000215, 401)
    headers = basic(daemon, world.daemon_secret)
    with pytest.raises(OAuthError) as refused:
        await clients.authenticate_client({"client_id": world.public.app_id}, headers, None, secret_required=True)
    assert refused.value.aadsts == 700016


async def test_one_grant_answers_on_its_own(runtime: Runtime, world: World) -> None:
    """The client-credentials grant, wired by hand, issues the app's token with its assigned roles."""
    clients, consent = Clients(runtime.identity_store), Consent(runtime.identity)
    minter = TokenMinter(runtime.keys, BASE_URL, runtime.identity_store, consent)
    grant = ClientCredentialsGrant(clients, consent, minter, runtime.identity, runtime.oauth.now)
    form = {"scope": "https://graph.microsoft.com/.default"}
    body = await grant(world.tenant_id, form, basic(world.daemon.app_id, world.daemon_secret))
    claims = decode_own_token(runtime.keys, body["access_token"])
    assert (claims["appid"], claims["tid"]) == (world.daemon.app_id, world.tenant_id)
    assert sorted(claims["roles"]) == ["Presence.Read.All", "Presence.ReadWrite.All"]
    with pytest.raises(OAuthError) as refused:
        await grant(world.tenant_id, {"scope": "Presence.Read"}, basic(world.daemon.app_id, world.daemon_secret))
    assert refused.value.aadsts == 1002012

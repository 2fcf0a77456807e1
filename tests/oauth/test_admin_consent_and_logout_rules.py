"""The authorization server's admin-consent and sign-out rules, asked directly (the pages are tested in tests/web)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from presenced.auth.permissions import APP_PRESENCE_READ_ALL, PRESENCE_READ
from presenced.bootstrap import Runtime
from presenced.oauth.errors import OAuthError
from presenced.services.identity import GRAPH
from tests.oauth.identity_support import CALLBACK, World, access, account, register_app, seed_world

WEB = "https://app.example/done"


@pytest.fixture
async def world(runtime: Runtime) -> World:
    return await seed_world(runtime)


async def test_a_request_names_a_known_app_and_one_of_its_redirect_uris(runtime: Runtime, world: World) -> None:
    consent = runtime.oauth.admin_consent
    app = await register_app(runtime, world.tenant_id, "Web", web_redirects=(WEB,))
    request = await consent.request(world.tenant_id, {"client_id": app.app_id}, v2=False)
    assert (request.app.app_id, request.redirect_uri, request.tenant_id) == (app.app_id, WEB, world.tenant_id)
    with pytest.raises(OAuthError) as refused:
        await consent.request(
            world.tenant_id, {"client_id": app.app_id, "redirect_uri": "https://evil.example"}, v2=False
        )
    assert refused.value.aadsts == 50011
    with pytest.raises(OAuthError) as refused:
        await consent.request(world.tenant_id, {"client_id": app.app_id}, v2=True)
    assert refused.value.aadsts == 900144


async def test_only_an_administrator_of_the_named_tenant_consents(runtime: Runtime, world: World) -> None:
    consent = runtime.oauth.admin_consent
    app = await register_app(
        runtime, world.tenant_id, "Daemon", web_redirects=(WEB,), required=access(APP_PRESENCE_READ_ALL, PRESENCE_READ)
    )
    request = await consent.request(world.tenant_id, {"client_id": app.app_id}, v2=False)
    adele, megan = await account(runtime, world.tenant_id, "adele"), await account(runtime, world.tenant_id, "megan")
    with pytest.raises(OAuthError) as refused:
        await consent.offer(request, megan)
    assert (refused.value.error, refused.value.aadsts) == ("access_denied", 90094)
    elsewhere = replace(request, tenant_ref="11111111-1111-1111-1111-111111111111")
    with pytest.raises(OAuthError) as refused:
        await consent.offer(elsewhere, adele)
    assert refused.value.aadsts == 50020
    offer = await consent.offer(request, adele)
    assert [p.value for p in offer.permissions] == ["Presence.Read.All", "Presence.Read"]
    await consent.grant(offer)
    scopes, roles = await runtime.identity.tenant_wide_grants(world.tenant_id, app, GRAPH)
    assert (scopes, roles) == ({"Presence.Read"}, {"Presence.Read.All"})


async def test_sign_out_returns_only_to_a_redirect_uri_of_the_app(runtime: Runtime, world: World) -> None:
    logout = runtime.oauth.logout
    public = {"client_id": world.public.app_id}
    assert await logout.may_return_to(CALLBACK, public, world.tenant_id, None)
    assert not await logout.may_return_to("https://evil.example/", public, world.tenant_id, None)
    # Without a client: any app of the path's tenant, or on common of the signed-in user's.
    assert await logout.may_return_to(CALLBACK, {}, world.tenant_id, None)
    assert await logout.may_return_to(CALLBACK, {}, "common", world.tenant_id)
    assert not await logout.may_return_to(CALLBACK, {}, "common", None)

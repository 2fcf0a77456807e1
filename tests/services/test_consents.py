"""Who granted what, in the services: consent records its giver, admin consent is granted and revoked whole."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from presenced.auth.permissions import APP_PRESENCE_READ_ALL, PRESENCE_READ, PRESENCE_READ_ALL
from presenced.bootstrap import Runtime
from presenced.errors import Forbidden, ResourceNotFound
from presenced.services.directory import Actor
from presenced.services.identity import GRAPH
from tests.oauth.identity_support import World, access, account, register_app, seed_world

T = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
async def world(runtime: Runtime) -> World:
    return await seed_world(runtime)


async def test_a_users_consent_names_them_and_a_widening_names_who_widened_it(runtime: Runtime, world: World) -> None:
    """The grant records the consenting user; widened later by an administrator, it names the administrator and
    the later time, and keeps its creation time."""
    identity, megan, adele = runtime.identity, world.user_id("megan"), world.user_id("adele")
    first = await identity.consent_for_user(
        world.tenant_id, world.public, GRAPH, megan, {"Presence.Read"}, T, granted_by=megan
    )
    assert (first.granted_by, first.granted_at, first.created) == (megan, T, T)
    later = T + timedelta(days=3)
    widened = await identity.consent_for_user(
        world.tenant_id, world.public, GRAPH, megan, {"User.Read"}, later, granted_by=adele
    )
    stored = await runtime.identity_store.get_grant(world.tenant_id, first.id)
    assert stored == widened
    assert (widened.scopes, widened.granted_by, widened.granted_at, widened.created) == (
        ("Presence.Read", "User.Read"),
        adele,
        later,
        T,
    )


async def test_admin_consent_records_the_administrator_or_no_one(runtime: Runtime, world: World) -> None:
    """Admin consent given by a person names them on its grant and assignments; given by the CLI, no one."""
    required = access(PRESENCE_READ, APP_PRESENCE_READ_ALL)
    by_person = await register_app(runtime, world.tenant_id, "By a person", required=required)
    by_cli = await register_app(runtime, world.tenant_id, "By the CLI", required=required)
    adele = world.user_id("adele")
    grants, assignments = await runtime.identity.grant_admin_consent(world.tenant_id, by_person, T, granted_by=adele)
    assert [(g.granted_by, g.granted_at) for g in (*grants, *assignments)] == [(adele, T), (adele, T)]
    grants, assignments = await runtime.identity.grant_admin_consent(world.tenant_id, by_cli, T)
    assert [(g.granted_by, g.granted_at) for g in (*grants, *assignments)] == [(None, T), (None, T)]


async def test_requested_permissions_are_granted_by_kind(runtime: Runtime, world: World) -> None:
    """A delegated Presence.Read.All granted for everyone does not make the application Presence.Read.All granted."""
    app = await register_app(
        runtime, world.tenant_id, "Both kinds", required=access(PRESENCE_READ_ALL, APP_PRESENCE_READ_ALL)
    )
    await runtime.identity.consent_for_all(world.tenant_id, app, GRAPH, {"Presence.Read.All"}, T)
    listed = await runtime.consents.requested(world.tenant_id, app)
    assert [(p.value, p.delegated, p.admin_consent_required, p.granted) for p in listed] == [
        ("Presence.Read.All", True, False, True),
        ("Presence.Read.All", False, True, False),
    ]


async def test_revoking_admin_consent_keeps_users_own_consents(runtime: Runtime, world: World) -> None:
    """Revoke admin consent removes the grant for all users and the application permissions, not a user's grant."""
    app = await register_app(runtime, world.tenant_id, "Mixed", required=access(PRESENCE_READ, APP_PRESENCE_READ_ALL))
    await runtime.identity.grant_admin_consent(world.tenant_id, app, T)
    own = await runtime.identity.consent_for_user(world.tenant_id, app, GRAPH, world.user_id("alex"), {"User.Read"}, T)
    assert await runtime.directory.revoke_admin_consent(Actor.operator(world.tenant_id), app) == 2
    sp = await runtime.identity_store.find_service_principal(world.tenant_id, app.app_id)
    assert sp is not None
    assert await runtime.identity_store.list_grants(world.tenant_id, client_id=sp.id) == [own]
    assert await runtime.identity_store.list_assignments(world.tenant_id, sp.id) == []


async def test_a_person_sees_and_revokes_only_their_own_consents(runtime: Runtime, world: World) -> None:
    """The overview of a non-administrator holds their own grants only; revoking anything else is refused."""
    consents, store = runtime.consents, runtime.identity_store
    megan, alex = await account(runtime, world.tenant_id, "megan"), await account(runtime, world.tenant_id, "alex")
    mine = await runtime.identity.consent_for_user(
        world.tenant_id, world.public, GRAPH, megan.user.id, {"Presence.Read"}, T, granted_by=megan.user.id
    )
    theirs = await runtime.identity.consent_for_user(
        world.tenant_id, world.public, GRAPH, alex.user.id, {"Presence.Read"}, T, granted_by=alex.user.id
    )
    [only] = await consents.overview(megan)
    assert [d.grant.id for d in only.delegated] == [mine.id]
    assert only.application == ()
    assert only.delegated[0].granted_by == megan
    with pytest.raises(ResourceNotFound):
        await consents.revoke_grant(megan, theirs.id)
    [assignment, *_] = await store.list_assignments(world.tenant_id)
    with pytest.raises(Forbidden):
        await consents.revoke_assignment(megan, assignment.id)
    await consents.revoke_grant(megan, mine.id)
    assert await store.get_grant(world.tenant_id, mine.id) is None
    assert await store.get_grant(world.tenant_id, theirs.id) == theirs
    assert await store.get_assignment(world.tenant_id, assignment.id) == assignment


async def test_the_administrators_overview_names_granters_and_apps(runtime: Runtime, world: World) -> None:
    """An administrator's overview lists every app holding grants, with each grant's giver and role values."""
    adele = await account(runtime, world.tenant_id, "adele")
    await runtime.identity.consent_for_all(
        world.tenant_id, world.public, GRAPH, {"Presence.Read"}, T, granted_by=adele.user.id
    )
    overview = await runtime.consents.overview(adele)
    assert [c.client.display_name for c in overview] == ["Presence Daemon (demo)", "Presence Desktop (demo)"]
    daemon, desktop = overview
    assert sorted(a.permission for a in daemon.application) == ["Presence.Read.All", "Presence.ReadWrite.All"]
    assert {a.granted_by for a in daemon.application} == {None}
    [admin_grant] = desktop.delegated
    assert (admin_grant.user, admin_grant.granted_by, admin_grant.resource_name) == (None, adele, "Microsoft Graph")


async def test_consents_given_at_once_keep_every_scope(runtime: Runtime, world: World) -> None:
    """Consents to different scopes given at the same moment (two tabs, two devices) widen one grant: each
    is merged inside the store's transaction, so none is lost."""
    megan = world.user_id("megan")
    scopes = ["Presence.Read", "Presence.Read.All", "Presence.ReadWrite", "User.Read", "openid", "profile", "email"]
    await asyncio.gather(
        *(runtime.identity.consent_for_user(world.tenant_id, world.public, GRAPH, megan, {s}, T) for s in scopes)
    )
    assert await runtime.identity.granted_scopes(world.tenant_id, world.public, GRAPH, megan) == set(scopes)
    grants = await runtime.identity_store.list_grants(world.tenant_id, principal_id=megan)
    assert len(grants) == 1


async def test_an_administrators_own_consents_are_theirs_only(runtime: Runtime, world: World) -> None:
    """With ``own``, an administrator's overview holds the consents they gave for themselves, and revoking someone
    else's grant is refused as for anyone (the command line's `consent list|revoke --user`)."""
    consents = runtime.consents
    adele, megan = await account(runtime, world.tenant_id, "adele"), world.user_id("megan")
    mine = await runtime.identity.consent_for_user(
        world.tenant_id, world.public, GRAPH, adele.user.id, {"User.Read"}, T, granted_by=adele.user.id
    )
    theirs = await runtime.identity.consent_for_user(
        world.tenant_id, world.public, GRAPH, megan, {"Presence.Read"}, T, granted_by=megan
    )
    [only] = await consents.overview(adele, own=True)
    assert [d.grant.id for d in only.delegated] == [mine.id]
    assert (only.application, only.registered_here) == ((), True)
    everything = await consents.overview(adele)
    assert {d.grant.id for c in everything for d in c.delegated} >= {mine.id, theirs.id}
    with pytest.raises(ResourceNotFound):
        await consents.revoke_grant(adele, theirs.id, own=True)
    await consents.revoke_grant(adele, mine.id, own=True)
    assert await runtime.identity_store.get_grant(world.tenant_id, mine.id) is None


async def test_what_an_app_holds_beside_what_it_asks_for(runtime: Runtime, world: World) -> None:
    """``of_app``: the requested permissions, each granted for the tenant or not, and what the app holds — admin
    consent, application permissions and users' own consents, asked for or not."""
    app = await register_app(runtime, world.tenant_id, "Held", required=access(PRESENCE_READ, APP_PRESENCE_READ_ALL))
    empty = await runtime.consents.of_app(world.tenant_id, app)
    assert ([p.granted for p in empty.requested], empty.held) == ([False, False], ())
    await runtime.identity.grant_admin_consent(world.tenant_id, app, T)
    megan = world.user_id("megan")
    await runtime.identity.consent_for_user(world.tenant_id, app, GRAPH, megan, {"User.Read"}, T, granted_by=megan)
    held = await runtime.consents.of_app(world.tenant_id, app)
    assert held.service_principal is not None
    assert [(p.value, p.delegated, p.granted) for p in held.requested] == [
        ("Presence.Read", True, True),
        ("Presence.Read.All", False, True),
    ]
    assert sorted((h.value, h.delegated, h.admin_consent, h.user_ids) for h in held.held) == [
        ("Presence.Read", True, True, ()),
        ("Presence.Read.All", False, True, ()),
        ("User.Read", True, False, (megan,)),
    ]

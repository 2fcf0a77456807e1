"""The directory service: each kind of actor allowed and refused, tenants kept apart, and the directory's own rules."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from presenced.auth.permissions import APP_PRESENCE_READ_ALL
from presenced.auth.principal import Principal
from presenced.bootstrap import Runtime
from presenced.errors import BadRequest, Conflict, Forbidden, ResourceNotFound
from presenced.services.directory import Actor
from presenced.services.entities import Application
from presenced.services.identity import graph_principal_id
from tests.oauth.identity_support import World, account, register_app, seed_world

T = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
NEW_UPN = "newcomer@contoso.example"


@pytest.fixture
async def world(runtime: Runtime) -> World:
    return await seed_world(runtime)


def app_only(world: World, *roles: str) -> Actor:
    return Actor.calling(
        Principal(world.tenant_id, world.daemon.app_id, T + timedelta(hours=1), roles=frozenset(roles))
    )


def delegated(world: World, *scopes: str, admin: bool) -> Actor:
    principal = Principal(
        world.tenant_id,
        world.public.app_id,
        T + timedelta(hours=1),
        user_id=world.user_id("adele"),
        scopes=frozenset(scopes),
        directory_admin=admin,
    )
    return Actor.calling(principal)


def new_app(tenant_id: str, name: str, *, identifier_uris: tuple[str, ...] = ()) -> Application:
    """A registration not yet stored."""
    return Application(
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        tenant_id,
        name,
        "AzureADMyOrg",
        False,
        (),
        (),
        (),
        (),
        identifier_uris,
        (),
        T,
    )


async def upns(runtime: Runtime, tenant_id: str) -> set[str]:
    users = await runtime.directory.list_users(Actor.operator(tenant_id))
    return {a.user.user_principal_name for a in users}


async def test_an_app_reads_applications_only_with_an_application_permission(runtime: Runtime, world: World) -> None:
    """Application.Read.All lists the tenant's apps (not another tenant's); Presence.Read.All is refused, and
    the refusal names the permissions that would allow it."""
    other = await runtime.identity.create_tenant("Fabrikam", T)
    await register_app(runtime, other.id, "Fabrikam's app")
    listed = await runtime.directory.list_applications(app_only(world, "Application.Read.All"))
    assert sorted(a.display_name for a in listed) == ["Presence Daemon (demo)", "Presence Desktop (demo)"]
    with pytest.raises(Forbidden) as refused:
        await runtime.directory.list_applications(app_only(world, "Presence.Read.All"))
    assert "Application.Read.All" in refused.value.message
    assert "Application.ReadWrite.All" in refused.value.message


async def test_a_delegated_caller_creates_users_only_as_a_directory_administrator(
    runtime: Runtime, world: World
) -> None:
    """User.ReadWrite.All without the administrator role is refused and creates nothing; with it, the user exists."""
    with pytest.raises(Forbidden, match="not an administrator"):
        await runtime.directory.create_user(
            delegated(world, "User.ReadWrite.All", admin=False), NEW_UPN, "Newcomer", "long-enough-1", T
        )
    assert NEW_UPN not in await upns(runtime, world.tenant_id)
    created = await runtime.directory.create_user(
        delegated(world, "User.ReadWrite.All", admin=True), NEW_UPN, "Newcomer", "long-enough-1", T
    )
    assert (created.user.tenant_id, created.user.display_name, created.is_admin) == (world.tenant_id, "Newcomer", False)
    assert NEW_UPN in await upns(runtime, world.tenant_id)


async def test_only_an_administrator_person_registers_apps_but_anyone_signed_in_lists_users(
    runtime: Runtime, world: World
) -> None:
    adele = await account(runtime, world.tenant_id, "adele")
    megan = await account(runtime, world.tenant_id, "megan")
    directory, operator = runtime.directory, Actor.operator(world.tenant_id)
    registered = await directory.register_application(Actor.signed_in(adele), new_app(world.tenant_id, "By Adele"), T)
    assert await directory.application(operator, registered.id) == registered
    refused = new_app(world.tenant_id, "By Megan")
    with pytest.raises(Forbidden, match="administrator"):
        await directory.register_application(Actor.signed_in(megan), refused, T)
    assert "By Megan" not in {a.display_name for a in await directory.list_applications(operator)}
    people = await directory.list_users(Actor.signed_in(megan))
    assert {adele.user.id, megan.user.id} <= {a.user.id for a in people}


async def test_the_operator_creates_and_deletes_a_user(runtime: Runtime, world: World) -> None:
    operator = Actor.operator(world.tenant_id)
    created = await runtime.directory.create_user(operator, NEW_UPN, "Newcomer", None, T, is_admin=True)
    assert (await runtime.directory.user(operator, created.user.id)).is_admin
    deleted = await runtime.directory.delete_user(operator, NEW_UPN)
    assert deleted.user.id == created.user.id
    assert NEW_UPN not in await upns(runtime, world.tenant_id)
    with pytest.raises(ResourceNotFound):
        await runtime.directory.user(operator, created.user.id)


async def test_another_tenants_app_is_not_found_nor_deleted(runtime: Runtime, world: World) -> None:
    other = await runtime.identity.create_tenant("Fabrikam", T)
    theirs = await register_app(runtime, other.id, "Fabrikam's app")
    writer = app_only(world, "Application.ReadWrite.All")
    with pytest.raises(ResourceNotFound):
        await runtime.directory.application(writer, theirs.id)
    with pytest.raises(ResourceNotFound):
        await runtime.directory.find_application(Actor.operator(world.tenant_id), theirs.app_id)
    with pytest.raises(ResourceNotFound):
        await runtime.directory.delete_application(writer, theirs.id)
    assert await runtime.directory.application(Actor.operator(other.id), theirs.id) == theirs


async def test_an_identifier_uri_belongs_to_one_app_of_the_tenant(runtime: Runtime, world: World) -> None:
    operator = Actor.operator(world.tenant_id)
    await runtime.directory.register_application(
        operator, new_app(world.tenant_id, "First", identifier_uris=("api://shared",)), T
    )
    second = new_app(world.tenant_id, "Second", identifier_uris=("api://SHARED/",))
    with pytest.raises(BadRequest, match="identifierUris"):
        await runtime.directory.register_application(operator, second, T)
    assert await runtime.directory.application_by_app_id(operator, second.app_id) is None


async def test_a_display_name_is_at_most_256_characters(runtime: Runtime, world: World) -> None:
    operator = Actor.operator(world.tenant_id)
    with pytest.raises(BadRequest, match="256"):
        await runtime.directory.register_application(operator, new_app(world.tenant_id, "x" * 257), T)
    kept = await runtime.directory.register_application(operator, new_app(world.tenant_id, "x" * 256), T)
    renamed = replace(kept, display_name="y" * 257)
    with pytest.raises(BadRequest, match="256"):
        await runtime.directory.update_application(operator, renamed)
    assert (await runtime.directory.application(operator, kept.id)).display_name == "x" * 256


async def test_a_delegated_grant_exists_once_and_needs_its_permission(runtime: Runtime, world: World) -> None:
    """An app with Application.ReadWrite.All cannot grant; an administrator with DelegatedPermissionGrant.ReadWrite.All
    can, is named as the giver, and the same grant again is a conflict."""
    directory, tenant = runtime.directory, world.tenant_id
    client = await register_app(runtime, tenant, "Grantee")
    client_sp = await runtime.directory.service_principal_of(Actor.operator(tenant), client.app_id, T)
    assert client_sp is not None
    graph_sp, megan = graph_principal_id(tenant), world.user_id("megan")
    args = (client_sp.id, graph_sp, "Principal", megan, "Presence.Read")
    with pytest.raises(Forbidden, match=r"DelegatedPermissionGrant\.ReadWrite\.All"):
        await directory.create_grant(app_only(world, "Application.ReadWrite.All"), *args, T)
    assert await runtime.identity_store.list_grants(tenant, client_id=client_sp.id) == []
    admin = delegated(world, "DelegatedPermissionGrant.ReadWrite.All", admin=True)
    grant = await directory.create_grant(admin, *args, T)
    assert (grant.principal_id, grant.scopes, grant.granted_by) == (megan, ("Presence.Read",), world.user_id("adele"))
    with pytest.raises(Conflict):
        await directory.create_grant(admin, *args, T)
    assert await runtime.identity_store.list_grants(tenant, client_id=client_sp.id) == [grant]


async def test_an_app_role_is_assigned_once(runtime: Runtime, world: World) -> None:
    directory, tenant = runtime.directory, world.tenant_id
    client = await register_app(runtime, tenant, "Role holder")
    sp = await directory.service_principal_of(Actor.operator(tenant), client.app_id, T)
    assert sp is not None
    args = (sp.id, sp.id, graph_principal_id(tenant), APP_PRESENCE_READ_ALL.id, T)
    with pytest.raises(Forbidden):
        await directory.create_assignment(app_only(world, "Application.ReadWrite.All"), *args)
    assigner = app_only(world, "AppRoleAssignment.ReadWrite.All")
    _, resource_sp, assignment = await directory.create_assignment(assigner, *args)
    assert (resource_sp.display_name, assignment.app_role_id) == ("Microsoft Graph", APP_PRESENCE_READ_ALL.id)
    with pytest.raises(BadRequest, match="already exists"):
        await directory.create_assignment(assigner, *args)
    _, held = await directory.list_assignments(assigner, sp.id)
    assert [(a.id, name) for a, name in held] == [(assignment.id, "Microsoft Graph")]


async def test_graphs_service_principal_cannot_be_deleted(runtime: Runtime, world: World) -> None:
    operator, graph_sp = Actor.operator(world.tenant_id), graph_principal_id(world.tenant_id)
    with pytest.raises(BadRequest, match="Microsoft Graph"):
        await runtime.directory.delete_service_principal(operator, graph_sp)
    assert (await runtime.directory.service_principal(operator, graph_sp)).display_name == "Microsoft Graph"


async def test_an_object_id_that_is_not_a_guid_is_a_bad_request(runtime: Runtime, world: World) -> None:
    operator = Actor.operator(world.tenant_id)
    with pytest.raises(BadRequest, match="Invalid object identifier 'not-a-guid'"):
        await runtime.directory.application(operator, "not-a-guid")
    with pytest.raises(BadRequest, match="Invalid object identifier"):
        await runtime.directory.delete_service_principal(operator, "42")
    assert len(await runtime.directory.list_applications(operator)) == 2


@pytest.mark.parametrize(
    "uri", ["http://localhost\x00/cb", "myapp://cb\x07", "https://app.example/a b", "ms-app://x\x7f"]
)
async def test_a_redirect_uri_with_a_control_character_is_refused_however_it_is_registered(
    runtime: Runtime, world: World, uri: str
) -> None:
    """NUL and the other control characters (and blanks) are refused in a redirect URI of any platform, on
    registering and on changing an app, whoever does it; nothing is stored."""
    operator = Actor.operator(world.tenant_id)
    draft = replace(new_app(world.tenant_id, "Control"), public_client_redirect_uris=(uri,))
    with pytest.raises(BadRequest, match="control character"):
        await runtime.directory.register_application(operator, draft, T)
    assert draft.app_id not in {a.app_id for a in await runtime.directory.list_applications(operator)}
    for field in ("web_redirect_uris", "spa_redirect_uris", "public_client_redirect_uris"):
        with pytest.raises(BadRequest, match="control character"):
            await runtime.directory.update_application(operator, replace(world.public, **{field: (uri,)}))
    stored = await runtime.directory.application_by_app_id(operator, world.public.app_id)
    assert stored == world.public

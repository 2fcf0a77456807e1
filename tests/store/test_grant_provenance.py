"""Who granted a permission and when, as the store keeps it, on SQLite and PostgreSQL (migration 0004 included)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from alembic import command
from alembic.config import Config
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from presenced.bootstrap import Runtime
from presenced.services.entities import Account, AppRoleAssignment, PermissionGrant, ServicePrincipal, Tenant, User
from presenced.store.codec import to_us
from presenced.store.engine import MIGRATIONS
from presenced.store.schema import permission_grants
from tests.support import T0

TENANT = Tenant(str(uuid.UUID(int=1)), "Contoso")
ADMIN = User(str(uuid.UUID(int=11)), TENANT.id, "adele@contoso.example", "Adele")
NICK = User(str(uuid.UUID(int=12)), TENANT.id, "nick@contoso.example", "Nick")
CLIENT = ServicePrincipal(str(uuid.UUID(int=201)), TENANT.id, str(uuid.UUID(int=301)), "Dashboard", TENANT.id)
RESOURCE = ServicePrincipal(str(uuid.UUID(int=202)), TENANT.id, str(uuid.UUID(int=302)), "Graph", None)
ROLE = str(uuid.UUID(int=401))


async def _seed(runtime: Runtime) -> None:
    store = runtime.identity_store
    await store.create_tenant(TENANT, T0)
    await store.create_account(Account(ADMIN, None, True), T0)
    await store.create_account(Account(NICK, None, False), T0)
    await store.ensure_service_principal(CLIENT, T0)
    await store.ensure_service_principal(RESOURCE, T0)


def _grant(grant_id: str, scopes: tuple[str, ...], granted_by: str | None) -> PermissionGrant:
    return PermissionGrant(
        grant_id, TENANT.id, CLIENT.id, "Principal", NICK.id, RESOURCE.id, scopes, T0, granted_by, T0
    )


async def test_a_grant_keeps_who_granted_it_and_when(runtime: Runtime) -> None:
    """A saved grant comes back with its granter and grant time; saving it again replaces both, not ``created``."""
    await _seed(runtime)
    store = runtime.identity_store
    await store.save_grant(_grant("g1", ("Presence.Read",), NICK.id))
    assert await store.get_grant(TENANT.id, "g1") == _grant("g1", ("Presence.Read",), NICK.id)
    later = T0 + timedelta(hours=2)
    widened = replace(_grant("g1", ("Presence.Read", "User.Read"), ADMIN.id), granted_at=later)
    await store.save_grant(widened)
    found = await store.get_grant(TENANT.id, "g1")
    assert found == widened
    assert found is not None
    assert found.created == T0


async def test_a_grant_without_a_person_has_no_granter(runtime: Runtime) -> None:
    """A grant given by no signed-in person (the CLI) is stored with no granter."""
    await _seed(runtime)
    await runtime.identity_store.save_grant(_grant("g2", ("Presence.Read",), None))
    found = await runtime.identity_store.get_grant(TENANT.id, "g2")
    assert found is not None
    assert (found.granted_by, found.granted_at) == (None, T0)


async def test_an_assignment_keeps_who_assigned_it(runtime: Runtime) -> None:
    """An app role assignment comes back, listed and by id, with its granter; assigning the role again keeps it."""
    await _seed(runtime)
    store = runtime.identity_store
    assignment = AppRoleAssignment("a1", TENANT.id, CLIENT.id, RESOURCE.id, ROLE, T0, ADMIN.id, T0)
    await store.add_assignment(assignment)
    again = replace(assignment, id="a2", granted_by=None, granted_at=T0 + timedelta(days=1))
    assert await store.add_assignment(again) == assignment
    assert await store.get_assignment(TENANT.id, "a1") == assignment
    assert await store.list_assignments(TENANT.id, CLIENT.id) == [assignment]
    assert await store.get_assignment(TENANT.id, "a2") is None
    assert await store.get_assignment(str(uuid.UUID(int=9)), "a1") is None


def _migrate(connection: Connection, revision: str, up: bool) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    (command.upgrade if up else command.downgrade)(config, revision)


async def test_the_migration_dates_existing_grants_and_names_no_granter(runtime: Runtime) -> None:
    """Grants from before migration 0004 come out of it granted when created, by nobody known; it also reverts."""
    await _seed(runtime)
    async with runtime.engine.begin() as conn:
        await conn.run_sync(_migrate, "0003", False)
        await conn.execute(
            text(
                "INSERT INTO permission_grants (id, tenant_id, client_id, consent_type, principal_id, resource_id,"
                " scope, created_us) VALUES ('old', :tenant, :client, 'AllPrincipals', NULL, :resource,"
                " 'Presence.Read', :created)"
            ),
            {"tenant": TENANT.id, "client": CLIENT.id, "resource": RESOURCE.id, "created": to_us(T0)},
        )
        await conn.run_sync(_migrate, "head", True)
    found = await runtime.identity_store.get_grant(TENANT.id, "old")
    assert found is not None
    assert (found.scopes, found.granted_by, found.granted_at) == (("Presence.Read",), None, T0)
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(permission_grants.c.granted_at_us))).scalars().all()
    assert rows == [to_us(T0)]

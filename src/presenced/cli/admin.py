"""Directory administration: ``presenced tenant|user|app|keys ...``.

The same operations as the Graph-shaped API (``/v1.0/applications`` and
friends), through the same services, for whoever runs the server.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from presenced.cli.common import guid, load_settings, run, store_options, with_runtime
from presenced.clock import real_now
from presenced.errors import ConfigurationError, PresencedError

# Commands import what they need when they run (see ``presenced.cli.main``).
if TYPE_CHECKING:
    from presenced.bootstrap import Runtime
    from presenced.services.directory import Actor
    from presenced.services.entities import Application, RequiredAccess

PLATFORMS = ("web", "spa", "public")


def _tenant_option(command: Any) -> Any:
    return click.option("--tenant", "tenant_ref", help="Tenant id (default: the demo tenant).")(command)


def _admin(work: Any, data_dir: Path | None, database_url: str | None) -> Any:
    """Run ``work(runtime)``; a refusal from the services is one line on stderr."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)

    async def guarded(runtime: Runtime) -> Any:
        try:
            return await work(runtime)
        except PresencedError as error:
            raise ConfigurationError(error.message) from None

    return run(lambda: with_runtime(settings, guarded))


def _tenant(ref: str | None) -> str:
    from presenced.services.demo_ids import DEMO_TENANT_ID

    return guid(ref, "--tenant") if ref else DEMO_TENANT_ID


def _operator(tenant_ref: str | None) -> Actor:
    """Whoever runs the command line: the server's operator, acting in the tenant of ``--tenant``."""
    from presenced.services.directory import Actor

    return Actor.operator(_tenant(tenant_ref))


# ---- tenants ----


@click.group()
def tenant() -> None:
    """Tenants (directories)."""


@tenant.command("create")
@store_options
@click.argument("display_name")
@click.option("--id", "tenant_id", help="The tenant id (default: a new GUID).")
def tenant_create(data_dir: Path | None, database_url: str | None, display_name: str, tenant_id: str | None) -> None:
    """Create a tenant."""
    chosen = guid(tenant_id, "--id") if tenant_id else None
    created = _admin(lambda rt: rt.identity.create_tenant(display_name, real_now(), chosen), data_dir, database_url)
    click.echo(created.id)


@tenant.command("list")
@store_options
def tenant_list(data_dir: Path | None, database_url: str | None) -> None:
    """List the tenants."""
    for item in _admin(lambda rt: rt.identity.list_tenants(), data_dir, database_url):
        click.echo(f"{item.id}  {item.display_name}")


# ---- users ----


@click.group()
def user() -> None:
    """Users: create them with a password, list, delete."""


@user.command("create")
@store_options
@_tenant_option
@click.argument("user_principal_name")
@click.option("--name", "display_name", help="Display name (default: the part before @).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters.")
@click.option("--admin", is_flag=True, help="Make the user a tenant administrator (admin consent, directory API).")
def user_create(
    data_dir: Path | None,
    database_url: str | None,
    tenant_ref: str | None,
    user_principal_name: str,
    display_name: str | None,
    password: str,
    admin: bool,
) -> None:
    """Create a user who can sign in."""
    name = display_name or user_principal_name.split("@")[0]

    async def create(rt: Runtime) -> Any:
        return await rt.directory.create_user(
            _operator(tenant_ref), user_principal_name, name, password, real_now(), is_admin=admin
        )

    account = _admin(create, data_dir, database_url)
    click.echo(account.user.id)


@user.command("list")
@store_options
@_tenant_option
def user_list(data_dir: Path | None, database_url: str | None, tenant_ref: str | None) -> None:
    """List the tenant's users."""
    for account in _admin(lambda rt: rt.directory.list_users(_operator(tenant_ref)), data_dir, database_url):
        flags = " (admin)" if account.is_admin else ""
        click.echo(f"{account.user.id}  {account.user.user_principal_name}  {account.user.display_name}{flags}")


@user.command("set-password")
@store_options
@_tenant_option
@click.argument("user_ref")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def user_set_password(
    data_dir: Path | None, database_url: str | None, tenant_ref: str | None, user_ref: str, password: str
) -> None:
    """Set a user's password."""
    _admin(lambda rt: rt.directory.set_password(_operator(tenant_ref), user_ref, password), data_dir, database_url)
    click.echo("password set")


@user.command("delete")
@store_options
@_tenant_option
@click.argument("user_ref")
def user_delete(data_dir: Path | None, database_url: str | None, tenant_ref: str | None, user_ref: str) -> None:
    """Delete a user (UPN or object id), with their presence, sessions and consents."""

    async def delete(rt: Runtime) -> bool:
        from presenced.errors import ResourceNotFound

        try:
            await rt.directory.delete_user(_operator(tenant_ref), user_ref)
        except ResourceNotFound:
            return False
        return True

    if not _admin(delete, data_dir, database_url):
        raise ConfigurationError(f"no user {user_ref!r} in tenant {_tenant(tenant_ref)}")
    click.echo("deleted")


# ---- applications ----


@click.group()
def app() -> None:
    """App registrations: create, permissions, secrets, admin consent."""


def _permission_access(values: tuple[str, ...]) -> tuple[RequiredAccess, ...]:
    """``Presence.Read`` (delegated) or ``Presence.Read.All:application`` → requiredResourceAccess entries."""
    from presenced.auth.permissions import GRAPH_APP_ID, PermissionKind, find
    from presenced.services.entities import RequiredAccess

    access = []
    for raw in values:
        value, _, kind_name = raw.partition(":")
        kind = (
            PermissionKind.APPLICATION
            if kind_name.lower() in {"application", "app", "role"}
            else PermissionKind.DELEGATED
        )
        if kind_name and kind_name.lower() not in {"application", "app", "role", "delegated", "scope"}:
            raise click.BadParameter(f"{raw!r}: the kind after ':' must be delegated or application")
        permission = find(value, kind)
        if permission is None:
            raise click.BadParameter(f"Microsoft Graph has no {kind.value} permission {value!r}")
        access.append(RequiredAccess(GRAPH_APP_ID, permission.id, kind.graph_type))
    return tuple(access)


@app.command("create")
@store_options
@_tenant_option
@click.argument("display_name")
@click.option("--redirect-uri", "redirects", multiple=True, help="PLATFORM=URI, PLATFORM one of web, spa, public.")
@click.option(
    "--permission", "permissions", multiple=True, help="e.g. Presence.Read (delegated), Presence.Read.All:application."
)
@click.option("--public-client", is_flag=True, help="Allow public client flows (device code).")
@click.option("--multi-tenant", is_flag=True, help="signInAudience AzureADMultipleOrgs.")
@click.option("--secret", "with_secret", is_flag=True, help="Add a client secret and print it (shown once).")
@click.option("--grant-admin-consent", "grant", is_flag=True, help="Consent to its permissions for the whole tenant.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def app_create(
    data_dir: Path | None,
    database_url: str | None,
    tenant_ref: str | None,
    display_name: str,
    redirects: tuple[str, ...],
    permissions: tuple[str, ...],
    public_client: bool,
    multi_tenant: bool,
    with_secret: bool,
    grant: bool,
    as_json: bool,
) -> None:
    """Register an application."""
    uris: dict[str, list[str]] = {p: [] for p in PLATFORMS}
    for item in redirects:
        platform, sep, uri = item.partition("=")
        if not sep or platform not in uris:
            raise click.BadParameter(f"{item!r}: write PLATFORM=URI with PLATFORM one of {', '.join(PLATFORMS)}")
        uris[platform].append(uri)
    access = _permission_access(permissions)
    tenant_id = _tenant(tenant_ref)

    async def create(rt: Runtime) -> dict[str, Any]:
        from presenced.services.entities import Application

        now = real_now()
        registration = Application(
            id=str(uuid.uuid4()),
            app_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            display_name=display_name,
            sign_in_audience="AzureADMultipleOrgs" if multi_tenant else "AzureADMyOrg",
            is_fallback_public_client=public_client,
            web_redirect_uris=tuple(uris["web"]),
            spa_redirect_uris=tuple(uris["spa"]),
            public_client_redirect_uris=tuple(uris["public"]),
            required_resource_access=access,
            identifier_uris=(),
            api_scopes=(),
            created=now,
        )
        await rt.directory.register_application(_operator(tenant_ref), registration, now)
        result: dict[str, Any] = {"id": registration.id, "appId": registration.app_id, "displayName": display_name}
        if with_secret:
            secret = await rt.directory.add_password(_operator(tenant_ref), registration, "cli", now)
            result["clientSecret"] = secret.text
            result["secretExpires"] = secret.secret.end.isoformat()
        if grant:
            await rt.directory.grant_admin_consent(_operator(tenant_ref), registration, now)
            result["adminConsent"] = True
        return result

    result = _admin(create, data_dir, database_url)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"app id (client id): {result['appId']}\nobject id:          {result['id']}")
    if "clientSecret" in result:
        click.echo(f"client secret:      {result['clientSecret']}  (shown once; expires {result['secretExpires']})")


@app.command("list")
@store_options
@_tenant_option
def app_list(data_dir: Path | None, database_url: str | None, tenant_ref: str | None) -> None:
    """List the tenant's app registrations."""
    for item in _admin(lambda rt: rt.directory.list_applications(_operator(tenant_ref)), data_dir, database_url):
        kind = "public" if item.is_fallback_public_client else "confidential" if item.secrets else "no secret"
        click.echo(f"{item.app_id}  {item.display_name}  ({kind}, {len(item.secrets)} secrets)")


async def _find_app(rt: Runtime, tenant_id: str, ref: str) -> Application:
    """An app of the tenant by app id or object id."""
    from presenced.errors import ResourceNotFound
    from presenced.services.directory import Actor

    try:
        return await rt.directory.find_application(Actor.operator(tenant_id), ref)
    except ResourceNotFound:
        raise ConfigurationError(f"no application {ref!r} in tenant {tenant_id}") from None


@app.command("add-secret")
@store_options
@_tenant_option
@click.argument("app_ref")
@click.option("--name", "display_name", help="A name for the secret.")
@click.option("--days", type=click.IntRange(1, 730), default=180, show_default=True, help="Days until it expires.")
def app_add_secret(
    data_dir: Path | None,
    database_url: str | None,
    tenant_ref: str | None,
    app_ref: str,
    display_name: str | None,
    days: int,
) -> None:
    """Add a client secret and print it (it is stored only as a hash: this is the one time it is shown)."""

    async def add(rt: Runtime) -> Any:
        registration = await _find_app(rt, _tenant(tenant_ref), app_ref)
        now = real_now()
        return await rt.directory.add_password(
            _operator(tenant_ref), registration, display_name, now, now + timedelta(days=days)
        )

    secret = _admin(add, data_dir, database_url)
    click.echo(f"{secret.text}\nkey id {secret.secret.key_id}, expires {secret.secret.end.isoformat()}")


@app.command("remove-secret")
@store_options
@_tenant_option
@click.argument("app_ref")
@click.argument("key_id")
def app_remove_secret(
    data_dir: Path | None, database_url: str | None, tenant_ref: str | None, app_ref: str, key_id: str
) -> None:
    """Remove a client secret by its key id."""

    async def remove(rt: Runtime) -> bool:
        from presenced.errors import ResourceNotFound

        registration = await _find_app(rt, _tenant(tenant_ref), app_ref)
        try:
            await rt.directory.remove_password(_operator(tenant_ref), registration, key_id)
        except ResourceNotFound:
            return False
        return True

    if not _admin(remove, data_dir, database_url):
        raise ConfigurationError(f"the app has no secret with key id {key_id!r}")
    click.echo("removed")


@app.command("grant-admin-consent")
@store_options
@_tenant_option
@click.argument("app_ref")
def app_grant(data_dir: Path | None, database_url: str | None, tenant_ref: str | None, app_ref: str) -> None:
    """Consent to everything the app's registration asks for, on behalf of the whole tenant."""

    async def grant(rt: Runtime) -> Any:
        tenant_id = _tenant(tenant_ref)
        registration = await _find_app(rt, tenant_id, app_ref)
        return await rt.directory.grant_admin_consent(_operator(tenant_ref), registration, real_now())

    grants, assignments = _admin(grant, data_dir, database_url)
    scopes = sorted({s for g in grants for s in g.scopes})
    click.echo(f"granted: {len(assignments)} application permissions; delegated: {' '.join(scopes) or 'none'}")


@app.command("delete")
@store_options
@_tenant_option
@click.argument("app_ref")
def app_delete(data_dir: Path | None, database_url: str | None, tenant_ref: str | None, app_ref: str) -> None:
    """Delete an app registration, with its service principals, consents and refresh tokens."""

    async def delete(rt: Runtime) -> None:
        registration = await _find_app(rt, _tenant(tenant_ref), app_ref)
        await rt.directory.delete_application(_operator(tenant_ref), registration.id)

    _admin(delete, data_dir, database_url)
    click.echo("deleted")


# ---- signing keys ----


@click.group()
def keys() -> None:
    """Token-signing keys."""


@keys.command("rotate")
@store_options
def keys_rotate(data_dir: Path | None, database_url: str | None) -> None:
    """Publish a new next key, sign with the old next key, retire the oldest key (running servers follow)."""

    async def rotate(runtime: Runtime) -> tuple[str, str]:
        return await runtime.keys.rotate()

    current, upcoming = _admin(rotate, data_dir, database_url)
    click.echo(f"signing with {current}; next key {upcoming}")


@keys.command("list")
@store_options
def keys_list(data_dir: Path | None, database_url: str | None) -> None:
    """The published keys (previous, current, next) and where they are kept."""

    async def published(runtime: Runtime) -> tuple[str, list[tuple[str, str]]]:
        keys = runtime.keys
        roles = {str(keys.current.kid): "current", str(keys.next.kid): "next"}
        return keys.where, [(str(key.kid), roles.get(str(key.kid), "previous")) for key in keys.keys]

    where, rows = _admin(published, data_dir, database_url)
    click.echo(f"kept in {where}")
    for kid, role in rows:
        click.echo(f"{role:<9} {kid}")


@keys.command("secret")
def keys_secret() -> None:
    """Print a new random secret for PRESENCED_KEYS_SECRET (256 bits, URL-safe base64)."""
    import secrets

    click.echo(secrets.token_urlsafe(32))


@keys.command("reseal")
@store_options
@click.option(
    "--new-secret-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="A file whose first line is the new secret.",
)
def keys_reseal(data_dir: Path | None, database_url: str | None, new_secret_file: Path) -> None:
    """Seal the database's keys under a new secret (opened with PRESENCED_KEYS_SECRET, the old one); then restart
    every process with the new secret."""
    from presenced.bootstrap import reseal_keys
    from presenced.config import KEYS_SECRET_LENGTH

    lines = new_secret_file.read_text().splitlines()
    new_secret = lines[0].strip() if lines else ""
    if len(new_secret) < KEYS_SECRET_LENGTH:
        raise ConfigurationError(f"the new secret must be at least {KEYS_SECRET_LENGTH} characters")
    if load_settings(data_dir=data_dir, database_url=database_url).keys_secret is None:
        raise ConfigurationError("the keys are kept in a folder: set PRESENCED_KEYS_SECRET to the secret they have now")
    count = _admin(lambda runtime: reseal_keys(runtime, new_secret), data_dir, database_url)
    click.echo(f"resealed {count} keys; restart every process with the new secret before the next rotation")


COMMANDS = (tenant, user, app, keys)

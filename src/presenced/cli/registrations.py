"""An app registration's permissions, redirect URIs and secrets, and a user's own consents:
``presenced app add-permission|remove-permission|permissions|revoke-admin-consent|add-redirect-uri|
remove-redirect-uri|secrets`` and ``presenced consent list|revoke``.

Each command makes the change the portal's form makes (and the directory API's ``PATCH``), through
the same service methods: ``services.registrations`` for the change to a registration,
``DirectoryService`` to save it, ``Consents`` for what an app holds and a user consented to. A refusal
from them is one line and exit status 2. Every command prints a table, or JSON with ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from presenced.cli.admin import _admin, _find_app, _operator, _tenant, _tenant_option, app
from presenced.cli.common import store_options
from presenced.errors import ConfigurationError

if TYPE_CHECKING:
    from presenced.bootstrap import Runtime
    from presenced.services.consents import AppPermissions, ClientConsents
    from presenced.services.entities import Account, Application

#: ``--type``: a permission's kind, as the portal's "Delegated" and "Application" lists name them.
KINDS = ("delegated", "application")
#: ``--platform``: the portal's platforms by the directory API's names (``public`` as ``app create`` has it).
PLATFORM_NAMES = {"web": "web", "spa": "spa", "publicClient": "publicClient", "public": "publicClient"}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a header line first."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _print(value: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(value, indent=2) if as_json else text(value))


def _json_option(command: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(command)


def _type_option(command: Any) -> Any:
    return click.option(
        "--type",
        "kind",
        type=click.Choice(KINDS),
        default="delegated",
        show_default=True,
        help="Which of the permission's kinds: delegated (for a signed-in user) or application (as the app).",
    )(command)


def _platform_option(command: Any) -> Any:
    return click.option(
        "--platform",
        type=click.Choice(list(PLATFORM_NAMES)),
        required=True,
        help="web, spa (single-page application) or publicClient (public: mobile and desktop).",
    )(command)


def _graph_permission(value: str, kind: str) -> tuple[str, str]:
    """A Microsoft Graph permission by value and kind, as (requiredResourceAccess type, permission id)."""
    from presenced.auth.permissions import PermissionKind, find

    found = find(value, PermissionKind(kind))
    if found is None:
        other = find(value, PermissionKind.APPLICATION if kind == "delegated" else PermissionKind.DELEGATED)
        article = "an" if kind == "delegated" else "a"
        hint = f" (it has {article} {other.kind.value} one: --type {other.kind.value})" if other else ""
        raise click.BadParameter(f"Microsoft Graph has no {kind} permission {value!r}{hint}", param_hint="PERMISSION")
    return found.kind.graph_type, found.id


# ---- what an app asks for and holds ----


def _permissions_body(registration: Application, held: AppPermissions) -> dict[str, Any]:
    return {
        "appId": registration.app_id,
        "displayName": registration.display_name,
        "servicePrincipalId": None if held.service_principal is None else held.service_principal.id,
        "requested": [
            {
                "permission": p.value,
                "type": "delegated" if p.delegated else "application",
                "resource": p.resource_name,
                "id": p.access.permission_id,
                "adminConsentRequired": p.admin_consent_required,
                "grantedForTenant": p.granted,
            }
            for p in held.requested
        ],
        "granted": [
            {
                "permission": h.value,
                "type": "delegated" if h.delegated else "application",
                "resource": h.resource_name,
                "consent": "admin" if h.admin_consent else "user",
                "users": list(h.user_ids),
            }
            for h in held.held
        ],
    }


def _permissions_text(body: dict[str, Any]) -> str:
    requested = [
        (
            p["permission"],
            p["type"],
            p["resource"],
            "yes" if p["adminConsentRequired"] else "no",
            "granted for the tenant" if p["grantedForTenant"] else "not granted",
        )
        for p in body["requested"]
    ]
    parts = [f"{body['displayName']} ({body['appId']}) asks for:"]
    parts.append(table(("PERMISSION", "TYPE", "API", "ADMIN CONSENT REQUIRED", "STATUS"), requested) if requested
                 else "  nothing")  # fmt: skip
    granted = [(g["permission"], g["type"], g["resource"], _held_by(g)) for g in body["granted"]]
    parts.append("\nGranted:")
    parts.append(table(("PERMISSION", "TYPE", "API", "BY"), granted) if granted else "  nothing")
    return "\n".join(parts)


def _held_by(held: dict[str, Any]) -> str:
    if held["type"] == "application":
        return "app role assignment"
    if held["consent"] == "admin":
        return "admin consent"
    count = len(held["users"])
    return f"user consent ({count} user{'s' if count != 1 else ''})"


async def _permissions(rt: Runtime, registration: Application) -> dict[str, Any]:
    return _permissions_body(registration, await rt.consents.of_app(registration.tenant_id, registration))


def _run_on_app(
    tenant_ref: str | None,
    app_ref: str,
    data_dir: Path | None,
    database_url: str | None,
    change: Callable[[Runtime, Application], Any],
) -> Any:
    """Find the app of the tenant (one line if there is none), then ``change(runtime, app)``."""

    async def work(rt: Runtime) -> Any:
        registration = await _find_app(rt, _tenant(tenant_ref), app_ref)
        return await change(rt, registration)

    return _admin(work, data_dir, database_url)


async def _save(rt: Runtime, tenant_ref: str | None, changed: Application) -> Application:
    saved: Application = await rt.directory.update_application(_operator(tenant_ref), changed)
    return saved


@app.command("permissions")
@store_options
@_tenant_option
@click.argument("app_ref", metavar="APP")
@_json_option
def app_permissions(
    data_dir: Path | None, database_url: str | None, tenant_ref: str | None, app_ref: str, as_json: bool
) -> None:
    """What the app asks for (each granted for the tenant or not), and what it holds: admin consent, app role
    assignments, users' own consents. APP is its application (client) id or object id."""
    body = _run_on_app(tenant_ref, app_ref, data_dir, database_url, _permissions)
    _print(body, as_json, _permissions_text)


@app.command("add-permission")
@store_options
@_tenant_option
@click.argument("app_ref", metavar="APP")
@click.argument("permission")
@_type_option
@_json_option
def app_add_permission(
    data_dir: Path | None,
    database_url: str | None,
    tenant_ref: str | None,
    app_ref: str,
    permission: str,
    kind: str,
    as_json: bool,
) -> None:
    """Make the app ask for a Microsoft Graph permission (it is not granted until someone consents)."""
    access_type, permission_id = _graph_permission(permission, kind)

    async def add(rt: Runtime, registration: Application) -> dict[str, Any]:
        from presenced.services import registrations

        changed = registrations.with_permission(registration, access_type, permission_id)
        return await _permissions(rt, await _save(rt, tenant_ref, changed))

    _print(_run_on_app(tenant_ref, app_ref, data_dir, database_url, add), as_json, _permissions_text)


@app.command("remove-permission")
@store_options
@_tenant_option
@click.argument("app_ref", metavar="APP")
@click.argument("permission")
@_type_option
@_json_option
def app_remove_permission(
    data_dir: Path | None,
    database_url: str | None,
    tenant_ref: str | None,
    app_ref: str,
    permission: str,
    kind: str,
    as_json: bool,
) -> None:
    """Stop the app asking for a permission; consent already given stays until revoked."""
    access_type, permission_id = _graph_permission(permission, kind)

    async def remove(rt: Runtime, registration: Application) -> dict[str, Any]:
        from presenced.auth.permissions import GRAPH_APP_ID
        from presenced.services import registrations
        from presenced.services.entities import RequiredAccess

        wanted = RequiredAccess(GRAPH_APP_ID, permission_id, access_type)
        changed = registrations.without_permission(registration, wanted)
        return await _permissions(rt, await _save(rt, tenant_ref, changed))

    _print(_run_on_app(tenant_ref, app_ref, data_dir, database_url, remove), as_json, _permissions_text)


@app.command("revoke-admin-consent")
@store_options
@_tenant_option
@click.argument("app_ref", metavar="APP")
@_json_option
def app_revoke_admin_consent(
    data_dir: Path | None, database_url: str | None, tenant_ref: str | None, app_ref: str, as_json: bool
) -> None:
    """Remove the tenant-wide consent to the app: its grant for all users and its application permissions
    (users' own consents stay)."""

    async def revoke(rt: Runtime, registration: Application) -> dict[str, Any]:
        removed = await rt.directory.revoke_admin_consent(_operator(tenant_ref), registration)
        return {"removed": removed, **await _permissions(rt, registration)}

    body = _run_on_app(tenant_ref, app_ref, data_dir, database_url, revoke)
    _print(
        body, as_json, lambda b: f"removed {b['removed']} grants and application permissions\n{_permissions_text(b)}"
    )


# ---- redirect URIs ----


def _uris_body(registration: Application) -> dict[str, Any]:
    from presenced.services import registrations

    return {
        "appId": registration.app_id,
        "redirectUris": [
            {"platform": platform, "uri": uri}
            for platform in registrations.PLATFORMS
            for uri in registrations.redirect_uris(registration, platform)
        ],
    }


def _uris_text(body: dict[str, Any]) -> str:
    rows = [(u["platform"], u["uri"]) for u in body["redirectUris"]]
    return table(("PLATFORM", "REDIRECT URI"), rows) if rows else "no redirect URIs"


def _redirect_command(name: str, adding: bool) -> None:
    @app.command(name)
    @store_options
    @_tenant_option
    @click.argument("app_ref", metavar="APP")
    @click.argument("uri")
    @_platform_option
    @_json_option
    def command(
        data_dir: Path | None,
        database_url: str | None,
        tenant_ref: str | None,
        app_ref: str,
        uri: str,
        platform: str,
        as_json: bool,
    ) -> None:
        async def change(rt: Runtime, registration: Application) -> dict[str, Any]:
            from presenced.services import registrations

            which = PLATFORM_NAMES[platform]
            changed = (
                registrations.with_redirect_uri(registration, which, uri)
                if adding
                else registrations.without_redirect_uri(registration, which, uri)
            )
            return _uris_body(await _save(rt, tenant_ref, changed))

        _print(_run_on_app(tenant_ref, app_ref, data_dir, database_url, change), as_json, _uris_text)

    command.__doc__ = (
        "Add a redirect URI for a platform (web and spa: https, or http on localhost)."
        if adding
        else "Remove one of the app's redirect URIs."
    )


_redirect_command("add-redirect-uri", adding=True)
_redirect_command("remove-redirect-uri", adding=False)


# ---- client secrets ----


@app.command("secrets")
@store_options
@_tenant_option
@click.argument("app_ref", metavar="APP")
@_json_option
def app_secrets(
    data_dir: Path | None, database_url: str | None, tenant_ref: str | None, app_ref: str, as_json: bool
) -> None:
    """The app's client secrets: key id, description, the value's first characters, expiry (never the value)."""

    async def listed(rt: Runtime, registration: Application) -> list[dict[str, Any]]:
        return [
            {"keyId": s.key_id, "displayName": s.display_name, "hint": s.hint, "endDateTime": s.end.isoformat()}
            for s in sorted(registration.secrets, key=lambda s: s.end)
        ]

    def text(secrets: list[dict[str, Any]]) -> str:
        rows = [(s["keyId"], s["displayName"] or "", f"{s['hint']}…", s["endDateTime"]) for s in secrets]
        return table(("KEY ID", "DESCRIPTION", "HINT", "EXPIRES"), rows) if rows else "no client secrets"

    _print(_run_on_app(tenant_ref, app_ref, data_dir, database_url, listed), as_json, text)


# ---- a user's own consents ----


@click.group()
def consent() -> None:
    """A user's own consents to apps: list them, revoke them."""


def _user_option(command: Any) -> Any:
    return click.option("--user", "user_ref", required=True, help="The user (user principal name or object id).")(
        command
    )


async def _account(rt: Runtime, tenant_ref: str | None, user_ref: str) -> Account:
    from presenced.errors import ResourceNotFound

    try:
        found: Account = await rt.directory.user(_operator(tenant_ref), user_ref)
    except ResourceNotFound:
        raise ConfigurationError(f"no user {user_ref!r} in tenant {_tenant(tenant_ref)}") from None
    return found


def _consents_body(clients: list[ClientConsents]) -> list[dict[str, Any]]:
    return [
        {
            "id": d.grant.id,
            "appId": c.client.app_id,
            "app": c.client.display_name,
            "resource": d.resource_name,
            "scopes": list(d.grant.scopes),
            "grantedDateTime": (d.grant.granted_at or d.grant.created).isoformat(),
        }
        for c in clients
        for d in c.delegated
    ]


def _consents_text(rows: list[dict[str, Any]]) -> str:
    cells = [(r["id"], r["app"], r["appId"], r["resource"], " ".join(r["scopes"]), r["grantedDateTime"]) for r in rows]
    return table(("GRANT ID", "APP", "APP ID", "API", "PERMISSIONS", "GRANTED"), cells) if cells else "no consents"


@consent.command("list")
@store_options
@_tenant_option
@_user_option
@_json_option
def consent_list(
    data_dir: Path | None, database_url: str | None, tenant_ref: str | None, user_ref: str, as_json: bool
) -> None:
    """The consents the user gave for themselves (as their "My consents" page lists them)."""

    async def listed(rt: Runtime) -> list[dict[str, Any]]:
        return _consents_body(await rt.consents.overview(await _account(rt, tenant_ref, user_ref), own=True))

    _print(_admin(listed, data_dir, database_url), as_json, _consents_text)


@consent.command("revoke")
@store_options
@_tenant_option
@_user_option
@click.argument("ref", metavar="GRANT_OR_APP")
@_json_option
def consent_revoke(
    data_dir: Path | None, database_url: str | None, tenant_ref: str | None, user_ref: str, ref: str, as_json: bool
) -> None:
    """Revoke one of the user's own consents: by its grant id, or all their consents to an app (its application
    id). The app must ask them again before it gets another token with it."""

    async def revoke(rt: Runtime) -> list[dict[str, Any]]:
        account = await _account(rt, tenant_ref, user_ref)
        mine = _consents_body(await rt.consents.overview(account, own=True))
        chosen = [r for r in mine if r["appId"] == ref.lower()] or [r for r in mine if r["id"] == ref]
        if not chosen:
            raise ConfigurationError(f"{user_ref} has no consent {ref!r} (a grant id or an app's application id)")
        for row in chosen:
            await rt.consents.revoke_grant(account, row["id"], own=True)
        return chosen

    _print(_admin(revoke, data_dir, database_url), as_json, lambda rows: "revoked:\n" + _consents_text(rows))


COMMANDS = (consent,)

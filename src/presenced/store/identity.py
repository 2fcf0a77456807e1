"""The SQL side of the identity platform: the directory, consent, and sign-in state."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, and_, delete, false, func, insert, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from presenced.services.entities import (
    Account,
    Application,
    AppRoleAssignment,
    AuthorizationCode,
    ClientSecret,
    DeviceCode,
    PermissionGrant,
    Photo,
    RefreshToken,
    ServicePrincipal,
    Tenant,
    UserClause,
    UserPage,
    UserQuery,
)
from presenced.store.codec import from_us, opt_from_us, opt_to_us, to_us
from presenced.store.identity_rows import account_from_row as _account
from presenced.store.identity_rows import application_from_row as _application
from presenced.store.identity_rows import secret_from_row as _secret
from presenced.store.identity_rows import service_principal_from_row as _sp
from presenced.store.presence import SqlStore
from presenced.store.schema import (
    app_role_assignments,
    applications,
    authorization_codes,
    client_secrets,
    device_codes,
    identity_version,
    permission_grants,
    refresh_tokens,
    service_principals,
    sign_in_failures,
    sign_in_sessions,
    tenants,
    user_photos,
    users,
)
from presenced.store.token_state import TokenState

#: Session keys asked about in one query, at most (``live_sessions``).
_SESSIONS_PER_QUERY = 500

_ACCOUNT_COLUMNS = (
    users.c.id,
    users.c.tenant_id,
    users.c.user_principal_name,
    users.c.display_name,
    users.c.password_hash,
    users.c.is_admin,
    users.c.given_name,
    users.c.surname,
    users.c.mail,
)


class SqlIdentityStore:
    """Implements ``presenced.services.ports.IdentityStore``; writes share ``SqlStore``'s transactions, but
    for the codes and refresh tokens of the token endpoint, which ``tokens`` keeps on the bare drivers."""

    def __init__(self, store: SqlStore, tokens: TokenState) -> None:
        self._store = store
        self._engine = store.engine
        self._tokens = tokens

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction over sign-in state (codes, tokens, sessions, throttling), which nobody caches."""
        async with self._store.begin() as tx:
            yield tx.conn

    @asynccontextmanager
    async def _change(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that changes the directory: its commit raises the directory's version, and every
        process drops what it keeps of the directory (``store.directory_cache``)."""
        async with self._store.begin() as tx:
            tx.directory_changed = True
            yield tx.conn

    async def _rows(self, query: Any) -> Sequence[RowMapping]:
        async with self._engine.connect() as conn:
            return (await conn.execute(query)).mappings().all()

    async def _row(self, query: Any) -> RowMapping | None:
        rows = await self._rows(query.limit(1))
        return rows[0] if rows else None

    async def directory_version(self) -> int:
        """The directory's version (``identity_version``): it moves with every change to the directory."""
        async with self._engine.connect() as conn:
            found = await conn.scalar(select(identity_version.c.version).where(identity_version.c.id == 1))
        return int(found or 0)

    # ---- tenants and users ----

    async def list_tenants(self) -> list[Tenant]:
        rows = await self._rows(select(tenants).order_by(tenants.c.created_us))
        return [Tenant(r["id"], r["display_name"]) for r in rows]

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self._row(select(tenants).where(tenants.c.id == tenant_id.lower()))
        return None if row is None else Tenant(row["id"], row["display_name"])

    async def create_tenant(self, tenant: Tenant, now: datetime) -> None:
        async with self._store.begin() as tx:
            await tx.put_tenant(tenant, now)

    async def find_account(self, tenant_id: str | None, ref: str) -> Account | None:
        if "\x00" in ref:
            return None
        column = users.c.upn_key if "@" in ref else users.c.id
        query = select(*_ACCOUNT_COLUMNS).where(column == ref.lower())
        if tenant_id is not None:
            query = query.where(users.c.tenant_id == tenant_id.lower())
        rows = await self._rows(query.limit(2))
        # A UPN names one user only if no other tenant uses it.
        return _account(rows[0]) if len(rows) == 1 else None

    async def list_accounts(self, tenant_id: str) -> list[Account]:
        query = select(*_ACCOUNT_COLUMNS).where(users.c.tenant_id == tenant_id).order_by(users.c.upn_key)
        return [_account(r) for r in await self._rows(query)]

    async def page_accounts(self, tenant_id: str, query: UserQuery) -> UserPage:
        key = func.lower(users.c.display_name) if query.by_name else users.c.id
        order = (key.desc(), users.c.id.desc()) if query.descending else (key.asc(), users.c.id.asc())
        statement = (
            select(*_ACCOUNT_COLUMNS, key.label("sort_key"))
            .where(users.c.tenant_id == tenant_id.lower(), *_user_conditions(query))
            .order_by(*order)
            .limit(query.limit + 1)
        )
        if query.after:
            statement = statement.where(_after(key, query))
        rows = await self._rows(statement)
        accounts = tuple(_account(r) for r in rows[: query.limit])
        if len(rows) <= query.limit:
            return UserPage(accounts, None)
        last = rows[query.limit - 1]
        return UserPage(accounts, (last["sort_key"], last["id"]) if query.by_name else (last["id"],))

    async def count_accounts(self, tenant_id: str, query: UserQuery) -> int:
        statement = select(func.count().label("n")).where(
            users.c.tenant_id == tenant_id.lower(), *_user_conditions(query)
        )
        return int((await self._rows(statement.select_from(users)))[0]["n"] or 0)

    async def set_profile(self, user_id: str, given_name: str | None, surname: str | None, mail: str | None) -> None:
        async with self._change() as conn:
            await conn.execute(
                update(users).where(users.c.id == user_id).values(given_name=given_name, surname=surname, mail=mail)
            )

    async def photo(self, user_id: str) -> Photo | None:
        row = await self._row(select(user_photos).where(user_photos.c.user_id == user_id))
        if row is None:
            return None
        return Photo(row["content_type"], row["width"], row["height"], bytes(row["data"]), row["etag"])

    async def put_photo(self, user_id: str, photo: Photo, now: datetime) -> bool:
        values = {
            "content_type": photo.content_type,
            "width": photo.width,
            "height": photo.height,
            "data": photo.data,
            "etag": photo.etag,
            "updated_us": to_us(now),
        }
        async with self._write() as conn:
            # The user row is locked first, so a photo never outlives a user deleted at the same time.
            found = await conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
            if found.first() is None:
                return False
            changed = await conn.execute(update(user_photos).where(user_photos.c.user_id == user_id).values(**values))
            if changed.rowcount == 0:
                await conn.execute(insert(user_photos).values(user_id=user_id, **values))
            return True

    async def photo_tags(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, str]:
        if not user_ids:
            return {}
        query = (
            select(user_photos.c.user_id, user_photos.c.etag)
            .join(users, users.c.id == user_photos.c.user_id)
            .where(users.c.tenant_id == tenant_id.lower(), user_photos.c.user_id.in_(list(user_ids)))
        )
        return {row["user_id"]: row["etag"] for row in await self._rows(query)}

    async def delete_photo(self, user_id: str) -> bool:
        async with self._write() as conn:
            return (await conn.execute(delete(user_photos).where(user_photos.c.user_id == user_id))).rowcount > 0

    async def create_account(self, account: Account, now: datetime) -> None:
        async with self._store.begin() as tx:
            await tx.put_user(account.user, now)
            await tx.conn.execute(
                update(users)
                .where(users.c.id == account.user.id)
                .values(
                    password_hash=account.password_hash,
                    is_admin=account.is_admin,
                    given_name=account.given_name,
                    surname=account.surname,
                    mail=account.mail,
                )
            )

    async def set_password(self, user_id: str, password_hash: str | None, is_admin: bool | None = None) -> bool:
        values: dict[str, Any] = {"password_hash": password_hash}
        if is_admin is not None:
            values["is_admin"] = is_admin
        async with self._change() as conn:
            return (await conn.execute(update(users).where(users.c.id == user_id).values(**values))).rowcount > 0

    async def delete_user(self, tenant_id: str, user_id: str) -> bool:
        async with self._change() as conn:
            result = await conn.execute(delete(users).where(users.c.tenant_id == tenant_id, users.c.id == user_id))
            return result.rowcount > 0

    # ---- applications ----

    async def save_application(self, app: Application) -> None:
        values = _application_row(app)
        async with self._change() as conn:
            updated = await conn.execute(update(applications).where(applications.c.id == app.id).values(**values))
            if updated.rowcount == 0:
                await conn.execute(insert(applications).values(id=app.id, **values))

    async def get_application(self, tenant_id: str, object_id: str) -> Application | None:
        query = select(applications).where(applications.c.tenant_id == tenant_id, applications.c.id == object_id)
        return await self._application(query)

    async def find_application(self, app_id: str) -> Application | None:
        return await self._application(select(applications).where(applications.c.app_id == app_id.lower()))

    async def _application(self, query: Any) -> Application | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(query.limit(1))).mappings().first()
            if row is None:
                return None
            secret_rows = await conn.execute(
                select(client_secrets)
                .where(client_secrets.c.application_id == row["id"])
                .order_by(client_secrets.c.start_us)
            )
            return _application(row, [_secret(s) for s in secret_rows.mappings()])

    async def list_applications(self, tenant_id: str) -> list[Application]:
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(applications)
                    .where(applications.c.tenant_id == tenant_id)
                    .order_by(applications.c.created_us, applications.c.id)
                )
            ).mappings()
            secrets: dict[str, list[ClientSecret]] = {}
            secret_rows = await conn.execute(
                select(client_secrets)
                .join(applications, applications.c.id == client_secrets.c.application_id)
                .where(applications.c.tenant_id == tenant_id)
                .order_by(client_secrets.c.start_us)
            )
            for s in secret_rows.mappings():
                secrets.setdefault(s["application_id"], []).append(_secret(s))
            return [_application(r, secrets.get(r["id"], [])) for r in rows]

    async def delete_application(self, tenant_id: str, object_id: str) -> bool:
        async with self._change() as conn:
            app = (
                await conn.execute(
                    select(applications.c.app_id).where(
                        applications.c.tenant_id == tenant_id, applications.c.id == object_id
                    )
                )
            ).scalar()
            if app is None:
                return False
            # The registration takes its service principals (and so their grants) with it.
            await conn.execute(delete(service_principals).where(service_principals.c.app_id == app))
            await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.client_app_id == app))
            await conn.execute(delete(applications).where(applications.c.id == object_id))
            return True

    async def add_secret(self, application_id: str, secret: ClientSecret) -> None:
        async with self._change() as conn:
            await conn.execute(
                insert(client_secrets).values(
                    key_id=secret.key_id,
                    application_id=application_id,
                    display_name=secret.display_name,
                    hint=secret.hint,
                    secret_hash=secret.secret_hash,
                    start_us=to_us(secret.start),
                    end_us=to_us(secret.end),
                )
            )

    async def remove_secret(self, application_id: str, key_id: str) -> bool:
        async with self._change() as conn:
            result = await conn.execute(
                delete(client_secrets).where(
                    client_secrets.c.application_id == application_id, client_secrets.c.key_id == key_id.lower()
                )
            )
            return result.rowcount > 0

    # ---- service principals ----

    async def ensure_service_principal(self, sp: ServicePrincipal, now: datetime) -> ServicePrincipal:
        # Nearly always there already: look without taking the write lock first.
        existing = await self.find_service_principal(sp.tenant_id, sp.app_id)
        if existing is not None:
            return existing
        async with self._change() as conn:
            found = await _service_principal(
                conn, service_principals.c.tenant_id == sp.tenant_id, service_principals.c.app_id == sp.app_id
            )
            if found is not None:
                return found
            await conn.execute(
                insert(service_principals).values(
                    id=sp.id,
                    tenant_id=sp.tenant_id,
                    app_id=sp.app_id,
                    display_name=sp.display_name,
                    app_owner_tenant_id=sp.app_owner_tenant_id,
                    created_us=to_us(now),
                )
            )
            return sp

    async def find_service_principal(self, tenant_id: str, app_id: str) -> ServicePrincipal | None:
        async with self._engine.connect() as conn:
            return await _service_principal(
                conn, service_principals.c.tenant_id == tenant_id, service_principals.c.app_id == app_id.lower()
            )

    async def get_service_principal(self, tenant_id: str, object_id: str) -> ServicePrincipal | None:
        async with self._engine.connect() as conn:
            return await _service_principal(
                conn, service_principals.c.tenant_id == tenant_id, service_principals.c.id == object_id.lower()
            )

    async def list_service_principals(self, tenant_id: str) -> list[ServicePrincipal]:
        query = (
            select(service_principals)
            .where(service_principals.c.tenant_id == tenant_id)
            .order_by(service_principals.c.created_us, service_principals.c.id)
        )
        return [_sp(r) for r in await self._rows(query)]

    async def delete_service_principal(self, tenant_id: str, object_id: str) -> bool:
        async with self._change() as conn:
            result = await conn.execute(
                delete(service_principals).where(
                    service_principals.c.tenant_id == tenant_id, service_principals.c.id == object_id
                )
            )
            return result.rowcount > 0

    # ---- consent ----

    async def list_grants(
        self, tenant_id: str, client_id: str | None = None, principal_id: str | None = None
    ) -> list[PermissionGrant]:
        query = select(permission_grants).where(permission_grants.c.tenant_id == tenant_id)
        if client_id is not None:
            query = query.where(permission_grants.c.client_id == client_id)
        if principal_id is not None:
            query = query.where(permission_grants.c.principal_id == principal_id)
        return [_grant(r) for r in await self._rows(query.order_by(permission_grants.c.created_us))]

    async def grants_for(self, client_id: str, resource_id: str, user_id: str | None) -> list[PermissionGrant]:
        whose = permission_grants.c.consent_type == "AllPrincipals"
        if user_id is not None:
            whose = or_(whose, permission_grants.c.principal_id == user_id)
        query = select(permission_grants).where(
            permission_grants.c.client_id == client_id, permission_grants.c.resource_id == resource_id, whose
        )
        return [_grant(r) for r in await self._rows(query)]

    async def save_grant(self, grant: PermissionGrant) -> None:
        values = {
            "tenant_id": grant.tenant_id,
            "client_id": grant.client_id,
            "consent_type": grant.consent_type,
            "principal_id": grant.principal_id,
            "resource_id": grant.resource_id,
            "scope": " ".join(grant.scopes),
            "created_us": to_us(grant.created),
        }
        consent = {"granted_by": grant.granted_by, "granted_at_us": opt_to_us(grant.granted_at)}
        async with self._change() as conn:
            updated = await conn.execute(
                update(permission_grants)
                .where(permission_grants.c.id == grant.id)
                .values(scope=values["scope"], **consent)
            )
            if updated.rowcount == 0:
                await conn.execute(insert(permission_grants).values(id=grant.id, **values, **consent))

    async def merge_grant(self, grant: PermissionGrant) -> PermissionGrant:
        consent = {"granted_by": grant.granted_by, "granted_at_us": opt_to_us(grant.granted_at)}
        async with self._change() as conn:
            # The row first (a concurrent insert of the same id waits for ours, or we for it), then locked.
            row_insert = _insert_ignoring_conflict(conn, permission_grants).values(
                id=grant.id,
                tenant_id=grant.tenant_id,
                client_id=grant.client_id,
                consent_type=grant.consent_type,
                principal_id=grant.principal_id,
                resource_id=grant.resource_id,
                scope="",
                created_us=to_us(grant.created),
                **consent,
            )
            await conn.execute(row_insert)
            locked = select(permission_grants).where(permission_grants.c.id == grant.id).with_for_update()
            row = (await conn.execute(locked)).mappings().one()
            stored = row["scope"].split()
            merged = (*stored, *sorted(set(grant.scopes) - set(stored)))
            await conn.execute(
                update(permission_grants)
                .where(permission_grants.c.id == grant.id)
                .values(scope=" ".join(merged), **consent)
            )
        return replace(grant, scopes=merged, created=from_us(row["created_us"]))

    async def get_grant(self, tenant_id: str, grant_id: str) -> PermissionGrant | None:
        row = await self._row(
            select(permission_grants).where(
                permission_grants.c.tenant_id == tenant_id, permission_grants.c.id == grant_id
            )
        )
        return None if row is None else _grant(row)

    async def delete_grant(self, tenant_id: str, grant_id: str) -> bool:
        async with self._change() as conn:
            result = await conn.execute(
                delete(permission_grants).where(
                    permission_grants.c.tenant_id == tenant_id, permission_grants.c.id == grant_id
                )
            )
            return result.rowcount > 0

    async def list_assignments(self, tenant_id: str, principal_id: str | None = None) -> list[AppRoleAssignment]:
        query = select(app_role_assignments).where(app_role_assignments.c.tenant_id == tenant_id)
        if principal_id is not None:
            query = query.where(app_role_assignments.c.principal_id == principal_id)
        return [_assignment(r) for r in await self._rows(query.order_by(app_role_assignments.c.created_us))]

    async def add_assignment(self, assignment: AppRoleAssignment) -> AppRoleAssignment:
        async with self._change() as conn:
            existing = (
                (
                    await conn.execute(
                        select(app_role_assignments).where(
                            app_role_assignments.c.principal_id == assignment.principal_id,
                            app_role_assignments.c.resource_id == assignment.resource_id,
                            app_role_assignments.c.app_role_id == assignment.app_role_id,
                        )
                    )
                )
                .mappings()
                .first()
            )
            if existing is not None:
                return _assignment(existing)
            await conn.execute(
                insert(app_role_assignments).values(
                    id=assignment.id,
                    tenant_id=assignment.tenant_id,
                    principal_id=assignment.principal_id,
                    resource_id=assignment.resource_id,
                    app_role_id=assignment.app_role_id,
                    created_us=to_us(assignment.created),
                    granted_by=assignment.granted_by,
                    granted_at_us=opt_to_us(assignment.granted_at),
                )
            )
            return assignment

    async def get_assignment(self, tenant_id: str, assignment_id: str) -> AppRoleAssignment | None:
        row = await self._row(
            select(app_role_assignments).where(
                app_role_assignments.c.tenant_id == tenant_id, app_role_assignments.c.id == assignment_id
            )
        )
        return None if row is None else _assignment(row)

    async def delete_assignment(self, tenant_id: str, assignment_id: str) -> bool:
        async with self._change() as conn:
            result = await conn.execute(
                delete(app_role_assignments).where(
                    app_role_assignments.c.tenant_id == tenant_id, app_role_assignments.c.id == assignment_id
                )
            )
            return result.rowcount > 0

    # ---- authorization codes and refresh tokens ----

    async def save_code(self, code: AuthorizationCode) -> None:
        await self._tokens.save_code(code)

    async def redeem_code(self, code_hash: str, now: datetime) -> AuthorizationCode | None:
        return await self._tokens.redeem_code(code_hash, now)

    async def save_refresh_token(self, token: RefreshToken) -> None:
        await self._tokens.save_refresh_token(token)

    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None:
        return await self._tokens.find_refresh_token(token_hash)

    async def rotate_refresh_token(self, spent_hash: str, token: RefreshToken, now: datetime) -> bool:
        return await self._tokens.rotate_refresh_token(spent_hash, token, now)

    async def revoke_refresh_family(self, family_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.family_id == family_id))

    # ---- device codes ----

    async def save_device_code(self, code: DeviceCode) -> None:
        async with self._write() as conn:
            await conn.execute(insert(device_codes).values(**_device_row(code)))

    async def find_device_code(
        self, *, device_code_hash: str | None = None, user_code: str | None = None
    ) -> DeviceCode | None:
        if device_code_hash is not None:
            condition = device_codes.c.device_code_hash == device_code_hash
        else:
            condition = device_codes.c.user_code == (user_code or "")
        row = await self._row(select(device_codes).where(condition))
        return None if row is None else _device(row)

    async def update_device_code(self, code: DeviceCode, expected_status: str) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                update(device_codes)
                .where(
                    device_codes.c.device_code_hash == code.device_code_hash,
                    device_codes.c.status == expected_status,
                )
                .values(**_device_row(code))
            )
            return result.rowcount > 0

    # ---- browser sessions and throttling ----

    async def create_session(self, id_hash: str, user_id: str, auth_time: datetime, expires: datetime) -> None:
        async with self._write() as conn:
            await conn.execute(
                insert(sign_in_sessions).values(
                    id_hash=id_hash, user_id=user_id, auth_time_us=to_us(auth_time), expires_us=to_us(expires)
                )
            )

    async def find_session(self, id_hash: str, now: datetime) -> tuple[Account, datetime, datetime] | None:
        query = (
            select(*_ACCOUNT_COLUMNS, sign_in_sessions.c.auth_time_us, sign_in_sessions.c.expires_us)
            .select_from(sign_in_sessions.join(users, users.c.id == sign_in_sessions.c.user_id))
            .where(sign_in_sessions.c.id_hash == id_hash, sign_in_sessions.c.expires_us > to_us(now))
        )
        row = await self._row(query)
        if row is None:
            return None
        return _account(row), from_us(row["auth_time_us"]), from_us(row["expires_us"])

    async def live_sessions(self, id_hashes: Collection[str], now: datetime) -> set[str]:
        live: set[str] = set()
        wanted = list(id_hashes)
        async with self._engine.connect() as conn:
            for start in range(0, len(wanted), _SESSIONS_PER_QUERY):
                rows = await conn.execute(
                    select(sign_in_sessions.c.id_hash).where(
                        sign_in_sessions.c.id_hash.in_(wanted[start : start + _SESSIONS_PER_QUERY]),
                        sign_in_sessions.c.expires_us > to_us(now),
                    )
                )
                live.update(rows.scalars())
        return live

    async def delete_session(self, id_hash: str) -> None:
        async with self._write() as conn:
            await conn.execute(delete(sign_in_sessions).where(sign_in_sessions.c.id_hash == id_hash))

    async def record_failure(self, key: str, now: datetime, window: timedelta, limit: int, lock: timedelta) -> None:
        now_us = to_us(now)
        async with self._write() as conn:
            row = (
                (await conn.execute(select(sign_in_failures).where(sign_in_failures.c.key == key).with_for_update()))
                .mappings()
                .first()
            )
            if row is None or now_us - row["window_start_us"] > to_us_delta(window):
                failures, start = 1, now_us
            else:
                failures, start = row["failures"] + 1, row["window_start_us"]
            locked = now_us + to_us_delta(lock) if failures >= limit else None
            values = {"failures": failures, "window_start_us": start, "locked_until_us": locked}
            if row is None:
                await conn.execute(insert(sign_in_failures).values(key=key, **values))
            else:
                await conn.execute(update(sign_in_failures).where(sign_in_failures.c.key == key).values(**values))

    async def locked_until(self, key: str, now: datetime) -> datetime | None:
        row = await self._row(select(sign_in_failures.c.locked_until_us).where(sign_in_failures.c.key == key))
        if row is None or row["locked_until_us"] is None or row["locked_until_us"] <= to_us(now):
            return None
        return from_us(row["locked_until_us"])

    async def clear_failures(self, key: str) -> None:
        async with self._write() as conn:
            await conn.execute(delete(sign_in_failures).where(sign_in_failures.c.key == key))

    async def purge_expired(self, now: datetime) -> None:
        now_us = to_us(now)
        async with self._write() as conn:
            await conn.execute(delete(authorization_codes).where(authorization_codes.c.expires_us < now_us))
            await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_us < now_us))
            await conn.execute(delete(device_codes).where(device_codes.c.expires_us < now_us))
            await conn.execute(delete(sign_in_sessions).where(sign_in_sessions.c.expires_us < now_us))


def to_us_delta(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


async def _service_principal(conn: AsyncConnection, *conditions: Any) -> ServicePrincipal | None:
    row = (await conn.execute(select(service_principals).where(*conditions).limit(1))).mappings().first()
    return None if row is None else _sp(row)


def _grant(row: RowMapping) -> PermissionGrant:
    return PermissionGrant(
        id=row["id"],
        tenant_id=row["tenant_id"],
        client_id=row["client_id"],
        consent_type=row["consent_type"],
        principal_id=row["principal_id"],
        resource_id=row["resource_id"],
        scopes=tuple(row["scope"].split()),
        created=from_us(row["created_us"]),
        granted_by=row["granted_by"],
        granted_at=opt_from_us(row["granted_at_us"]),
    )


def _assignment(row: RowMapping) -> AppRoleAssignment:
    return AppRoleAssignment(
        row["id"],
        row["tenant_id"],
        row["principal_id"],
        row["resource_id"],
        row["app_role_id"],
        from_us(row["created_us"]),
        granted_by=row["granted_by"],
        granted_at=opt_from_us(row["granted_at_us"]),
    )


def _application_row(app: Application) -> dict[str, Any]:
    return {
        "app_id": app.app_id,
        "tenant_id": app.tenant_id,
        "display_name": app.display_name,
        "sign_in_audience": app.sign_in_audience,
        "is_fallback_public_client": app.is_fallback_public_client,
        "web_redirect_uris": json.dumps(list(app.web_redirect_uris)),
        "spa_redirect_uris": json.dumps(list(app.spa_redirect_uris)),
        "public_client_redirect_uris": json.dumps(list(app.public_client_redirect_uris)),
        "required_resource_access": msgspec.json.encode(list(app.required_resource_access)).decode(),
        "identifier_uris": json.dumps(list(app.identifier_uris)),
        "api_scopes": msgspec.json.encode(list(app.api_scopes)).decode(),
        "created_us": to_us(app.created),
    }


def _device_row(code: DeviceCode) -> dict[str, Any]:
    return {
        "device_code_hash": code.device_code_hash,
        "user_code": code.user_code,
        "tenant_ref": code.tenant_ref,
        "client_app_id": code.client_app_id,
        "scopes": " ".join(code.scopes),
        "status": code.status,
        "interval_s": code.interval,
        "expires_us": to_us(code.expires),
        "last_poll_us": opt_to_us(code.last_poll),
        "tenant_id": code.tenant_id,
        "user_id": code.user_id,
        "auth_time_us": opt_to_us(code.auth_time),
    }


def _device(row: RowMapping) -> DeviceCode:
    return DeviceCode(
        device_code_hash=row["device_code_hash"],
        user_code=row["user_code"],
        tenant_ref=row["tenant_ref"],
        client_app_id=row["client_app_id"],
        scopes=tuple(row["scopes"].split()),
        status=row["status"],
        interval=row["interval_s"],
        expires=from_us(row["expires_us"]),
        last_poll=opt_from_us(row["last_poll_us"]),
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        auth_time=opt_from_us(row["auth_time_us"]),
    )


def _insert_ignoring_conflict(conn: AsyncConnection, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


_PROFILE_COLUMNS = {
    "id": users.c.id,
    "displayName": users.c.display_name,
    "userPrincipalName": users.c.upn_key,
    "mail": users.c.mail,
    "givenName": users.c.given_name,
    "surname": users.c.surname,
}


def _escaped(text: str) -> str:
    """``text`` in a LIKE pattern, its wildcards taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(column: Any, pattern: str) -> ColumnElement[bool]:
    """``column`` matches ``pattern`` without regard to case: both sides are folded by the database's own
    ``lower``, so letters beyond ASCII compare alike whatever the database folds."""
    return func.lower(column).like(func.lower(pattern), escape="\\")


def _clause(clause: UserClause) -> ColumnElement[bool]:
    if clause.prop == "accountEnabled":
        # Every user is enabled: disabled accounts are not supported.
        return true() if clause.values == ("true",) else false()
    column = _PROFILE_COLUMNS[clause.prop]
    if clause.op == "startswith":
        return _like(column, _escaped(clause.values[0]) + "%")
    if clause.prop in {"id", "userPrincipalName"}:
        # Both stored folded by Python (GUIDs in lower case, the UPN's key), as the values are here.
        return column.in_([v.lower() for v in clause.values])
    return func.lower(column).in_([func.lower(v) for v in clause.values])


def _term(prop: str, word: str) -> ColumnElement[bool]:
    """A ``$search`` term: a word of the property starts with ``word``."""
    column = users.c.display_name if prop == "displayName" else users.c.upn_key
    separators = (" ",) if prop == "displayName" else (" ", ".", "@", "\\_", "-")
    pattern = _escaped(word) + "%"
    return or_(_like(column, pattern), *(_like(column, f"%{s}{pattern}") for s in separators))


def _user_conditions(query: UserQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.clauses:
        clauses = [_clause(c) for c in query.clauses]
        conditions.append(or_(*clauses) if query.any_clause else and_(*clauses))
    if query.terms:
        terms = [_term(prop, word) for prop, word in query.terms]
        conditions.append(and_(*terms) if query.all_terms else or_(*terms))
    return conditions


def _after(key: Any, query: UserQuery) -> ColumnElement[bool]:
    """The users after the last of the previous page, in the page's order (the key, then the id)."""
    if not query.by_name:
        return users.c.id < query.after[0] if query.descending else users.c.id > query.after[0]
    name, last_id = query.after
    if query.descending:
        return or_(key < name, and_(key == name, users.c.id < last_id))
    return or_(key > name, and_(key == name, users.c.id > last_id))

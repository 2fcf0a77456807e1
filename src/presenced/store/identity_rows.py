"""Directory rows → directory values, by column name.

Shared by the SQLAlchemy identity store (``presenced.store.identity``) and the bare-driver lookups
of short-lived commands (``presenced.store.bare_directory``): any row that maps column names to
values (SQLAlchemy's ``RowMapping``, ``sqlite3.Row``, asyncpg's ``Record``) will do.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import msgspec

from presenced.services.entities import (
    Account,
    ApiScope,
    Application,
    ClientSecret,
    RequiredAccess,
    ServicePrincipal,
    User,
)
from presenced.store.codec import from_us


class Row(Protocol):
    def __getitem__(self, column: str, /) -> Any: ...


_scopes_decoder = msgspec.json.Decoder(list[ApiScope])
_access_decoder = msgspec.json.Decoder(list[RequiredAccess])


def account_from_row(row: Row) -> Account:
    user = User(row["id"], row["tenant_id"], row["user_principal_name"], row["display_name"])
    return Account(user, row["password_hash"], bool(row["is_admin"]), row["given_name"], row["surname"], row["mail"])


def service_principal_from_row(row: Row) -> ServicePrincipal:
    return ServicePrincipal(row["id"], row["tenant_id"], row["app_id"], row["display_name"], row["app_owner_tenant_id"])


def secret_from_row(row: Row) -> ClientSecret:
    return ClientSecret(
        row["key_id"],
        row["display_name"],
        row["hint"],
        row["secret_hash"],
        from_us(row["start_us"]),
        from_us(row["end_us"]),
    )


def application_from_row(row: Row, secrets: list[ClientSecret]) -> Application:
    return Application(
        id=row["id"],
        app_id=row["app_id"],
        tenant_id=row["tenant_id"],
        display_name=row["display_name"],
        sign_in_audience=row["sign_in_audience"],
        is_fallback_public_client=bool(row["is_fallback_public_client"]),
        web_redirect_uris=tuple(json.loads(row["web_redirect_uris"])),
        spa_redirect_uris=tuple(json.loads(row["spa_redirect_uris"])),
        public_client_redirect_uris=tuple(json.loads(row["public_client_redirect_uris"])),
        required_resource_access=tuple(_access_decoder.decode(row["required_resource_access"])),
        identifier_uris=tuple(json.loads(row["identifier_uris"])),
        api_scopes=tuple(_scopes_decoder.decode(row["api_scopes"])),
        created=from_us(row["created_us"]),
        secrets=tuple(secrets),
    )

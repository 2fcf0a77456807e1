"""The permissions explorer's JSON and CSV exports (``docs/permissions-explorer.md``).

One permission value exports as a JSON document (its variants in Graph's ``permissionScope`` and
``appRole`` names, the methods they allow with their limits, the properties those expose) and as
CSV rows (one per variant); the whole catalog as a list of those documents and one CSV table.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from presenced.auth.allowances import Allowance
from presenced.auth.permissions import Permission, PermissionKind
from presenced.web.permission_entries import Entry

_DELEGATED = PermissionKind.DELEGATED


def permission_json(permission: Permission) -> dict[str, Any]:
    """One variant, with the names of Graph's ``permissionScope`` (Scope) or ``appRole`` (Role)."""
    if permission.kind is _DELEGATED:
        return {
            "id": permission.id,
            "value": permission.value,
            "type": "Scope",
            "adminConsentDisplayName": permission.admin_display_name,
            "adminConsentDescription": permission.admin_description,
            "userConsentDisplayName": permission.user_display_name,
            "userConsentDescription": permission.user_description,
            "isAdminConsentRequired": permission.admin_consent_required,
            "userConsentAllowed": permission.user_consentable,
        }
    return {
        "id": permission.id,
        "value": permission.value,
        "type": "Role",
        "displayName": permission.admin_display_name,
        "description": permission.admin_description,
        "isAdminConsentRequired": permission.admin_consent_required,
    }


def _limits(allowed: Allowance | None) -> dict[str, bool] | None:
    return None if allowed is None else {"ownUserOnly": allowed.own_only, "administratorsOnly": allowed.administrators}


def export(entry: Entry) -> dict[str, Any]:
    """The JSON of one permission value (``docs/permissions-explorer.md``)."""
    return {
        "value": entry.value,
        "delegated": None if entry.delegated is None else permission_json(entry.delegated.permission),
        "application": None if entry.application is None else permission_json(entry.application.permission),
        "methods": [
            {
                "method": m.method,
                "path": path,
                "version": path.split("/")[1] if m.versioned else None,
                "summary": m.summary,
                "delegated": _limits(m.delegated),
                "application": _limits(m.application),
            }
            for m in entry.methods
            for path in m.paths
        ],
        "properties": [
            {"resource": p.resource, "name": p.name, "description": p.description} for p in entry.properties
        ],
    }


def json_bytes(document: object) -> bytes:
    """A JSON export's bytes: indented, UTF-8, with a final newline."""
    return json.dumps(document, ensure_ascii=False, indent=2).encode() + b"\n"


CSV_COLUMNS = (
    "value",
    "type",
    "id",
    "displayName",
    "description",
    "adminConsentRequired",
    "userConsentAllowed",
    "userConsentDisplayName",
    "userConsentDescription",
)


def csv_text(entries: Iterable[Entry]) -> str:
    """A header row, then one row per variant (RFC 4180: quoted where needed, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        for variant in entry.variants:
            p = variant.permission
            writer.writerow((
                p.value,
                "Delegated" if p.kind is _DELEGATED else "Application",
                p.id,
                p.admin_display_name,
                p.admin_description,
                str(p.admin_consent_required).lower(),
                str(p.user_consentable).lower(),
                p.user_display_name or "",
                p.user_description or "",
            ))  # fmt: skip
    return out.getvalue()

"""What each permission of the catalog allows of an endpoint that asks for some accesses.

An endpoint names the accesses (operation, whose) it asks the policy for; a permission allows the
endpoint when it allows one of them. ``allowances`` says which permissions do, and with what limit:
only the caller's own user (where others need another permission), or, delegated, only for directory
administrators. The OpenAPI document and the permissions explorer both word their permissions with
it, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from presenced.auth.operations import Access, Operation, Target
from presenced.auth.permissions import CATALOG, Permission, PermissionKind, allowing
from presenced.auth.policy import POLICY

_DELEGATED, _APPLICATION = PermissionKind.DELEGATED, PermissionKind.APPLICATION

#: What "own ... only" names, by operation.
_OWN_NOUN = {
    Operation.READ_PRESENCE: "presence",
    Operation.WRITE_PRESENCE: "presence",
    Operation.WRITE_LOCATION: "presence",
    Operation.READ_MAILBOX_SETTINGS: "mailbox settings",
    Operation.WRITE_MAILBOX_SETTINGS: "mailbox settings",
    Operation.READ_PROFILE: "profile",
    Operation.WRITE_PHOTO: "photo",
}


@dataclass(frozen=True, slots=True)
class Allowance:
    """What one permission allows of one endpoint."""

    permission: Permission
    #: The endpoint's accesses it allows.
    accesses: tuple[Access, ...]
    #: Only for the caller's own user, where the endpoint also serves others (with other permissions).
    own_only: bool
    #: A delegated caller must also be a directory administrator.
    administrators: bool

    @property
    def note(self) -> str:
        """How the page words a limit ("own presence only"), or "" for none."""
        if self.own_only:
            return f"own {_OWN_NOUN.get(self.accesses[0][0], 'user')} only"
        return "administrators only" if self.administrators else ""


def allowances(access: Sequence[Access], delegated_only: bool = False) -> tuple[Allowance, ...]:
    """The catalog's permissions that allow one of ``access``, in catalog order (delegated ones only when
    ``delegated_only``: a ``/me`` path needs a signed-in user)."""
    found: list[Allowance] = []
    serves_others = any(target is not Target.OWN for _, target in access)
    for kind in (_DELEGATED, _APPLICATION):
        if delegated_only and kind is _APPLICATION:
            continue
        values = {value for a in access for value in allowing(a, kind)}
        for permission in CATALOG:
            if permission.kind is not kind or permission.value not in values:
                continue
            allowed = tuple(a for a in access if permission.value in allowing(a, kind))
            wider = [a for a in allowed if a[1] is not Target.OWN]
            admin = bool(wider) and all((rule := POLICY.get(a)) is not None and rule.admin_only for a in wider)
            found.append(Allowance(permission, allowed, serves_others and not wider, kind is _DELEGATED and admin))
    return tuple(found)

"""Who may do what to whose presence (docs/graph-api.md, "Paths" and "Writes") and to the directory, as one table.

The permissions that allow each access come from the catalog (``permissions``).

Pure: the caller passes the principal and the target; nothing here reads the
clock, the store or the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from presenced.auth.operations import Operation as Operation
from presenced.auth.operations import Target as Target
from presenced.auth.permissions import PermissionKind, allowing
from presenced.auth.principal import Principal
from presenced.errors import BadRequest, Forbidden


@dataclass(frozen=True, slots=True)
class Rule:
    """The scopes (delegated) and roles (application) that allow one operation."""

    delegated: frozenset[str]
    application: frozenset[str]
    #: What a delegated caller without a usable scope is told, when no scope could help.
    delegated_refusal: str | None = None
    #: A delegated caller must also be a directory administrator (as Graph asks for a directory role).
    admin_only: bool = False


def _rule(operation: Operation, target: Target, refusal: str | None = None, admin_only: bool = False) -> Rule:
    """The rule for one access, with the permissions that allow it read from the catalog."""
    access = (operation, target)
    return Rule(
        allowing(access, PermissionKind.DELEGATED),
        allowing(access, PermissionKind.APPLICATION),
        refusal,
        admin_only,
    )


_O, _T = Operation, Target
_DIRECTORY = (
    _O.WRITE_USERS,
    _O.READ_APPLICATIONS,
    _O.WRITE_APPLICATIONS,
    _O.WRITE_PERMISSION_GRANTS,
    _O.WRITE_APP_ROLE_ASSIGNMENTS,
)

POLICY: dict[tuple[Operation, Target], Rule] = {
    (_O.READ_PRESENCE, _T.OWN): _rule(_O.READ_PRESENCE, _T.OWN),
    (_O.READ_PRESENCE, _T.OTHER): _rule(_O.READ_PRESENCE, _T.OTHER),
    (_O.READ_PRESENCES, _T.ANY): _rule(_O.READ_PRESENCES, _T.ANY),
    (_O.WRITE_PRESENCE, _T.OWN): _rule(_O.WRITE_PRESENCE, _T.OWN),
    (_O.WRITE_PRESENCE, _T.OTHER): _rule(_O.WRITE_PRESENCE, _T.OTHER, "Cannot set the presence of another user."),
    (_O.WRITE_LOCATION, _T.OWN): _rule(_O.WRITE_LOCATION, _T.OWN),
    (_O.WRITE_LOCATION, _T.OTHER): _rule(_O.WRITE_LOCATION, _T.OTHER, "Cannot set the work location of another user."),
    (_O.READ_MAILBOX_SETTINGS, _T.OWN): _rule(_O.READ_MAILBOX_SETTINGS, _T.OWN),
    (_O.READ_MAILBOX_SETTINGS, _T.OTHER): _rule(
        _O.READ_MAILBOX_SETTINGS, _T.OTHER, "Cannot read the mailbox settings of another user."
    ),
    (_O.WRITE_MAILBOX_SETTINGS, _T.OWN): _rule(_O.WRITE_MAILBOX_SETTINGS, _T.OWN),
    (_O.WRITE_MAILBOX_SETTINGS, _T.OTHER): _rule(
        _O.WRITE_MAILBOX_SETTINGS, _T.OTHER, "Cannot change the mailbox settings of another user."
    ),
    (_O.READ_PROFILE, _T.OWN): _rule(_O.READ_PROFILE, _T.OWN),
    # Reading the organization's users takes a permission, not a directory role (as in Graph).
    (_O.READ_USERS_BASIC, _T.ANY): _rule(_O.READ_USERS_BASIC, _T.ANY),
    (_O.READ_USERS, _T.ANY): _rule(_O.READ_USERS, _T.ANY),
    (_O.WRITE_PHOTO, _T.OWN): _rule(_O.WRITE_PHOTO, _T.OWN),
    (_O.WRITE_PHOTO, _T.OTHER): _rule(_O.WRITE_PHOTO, _T.OTHER, admin_only=True),
    (_O.SUBSCRIBE_PRESENCE, _T.ANY): _rule(_O.SUBSCRIBE_PRESENCE, _T.ANY),
    **{(op, _T.ANY): _rule(op, _T.ANY, admin_only=True) for op in _DIRECTORY},
}


def target_of(principal: Principal, user_id: str | None) -> Target:
    """Whether ``user_id`` is the caller's own (delegated) or someone else's; None means many."""
    if user_id is None:
        return Target.ANY
    return Target.OWN if principal.is_self(user_id) else Target.OTHER


def require_delegated(principal: Principal) -> str:
    """The signed-in user's id; an app-only token on ``/me`` is a bad request (docs/graph-api.md, "Paths")."""
    if principal.user_id is None:
        raise BadRequest("/me request is only valid with delegated authentication flow.")
    return principal.user_id


def authorize(principal: Principal, operation: Operation, target: Target) -> None:
    """Raise ``Forbidden`` unless the principal's scopes or roles allow the operation."""
    rule = POLICY[(operation, target)]
    if principal.is_delegated:
        if not principal.scopes.isdisjoint(rule.delegated):
            if rule.admin_only and not principal.directory_admin:
                raise Forbidden(
                    f"Insufficient privileges to {operation.value}: the signed-in user is not an administrator."
                )
            return
        if rule.delegated_refusal is not None:
            raise Forbidden(rule.delegated_refusal)
    elif not principal.roles.isdisjoint(rule.application):
        return
    elif not rule.application:
        own = POLICY.get((operation, Target.OWN))
        scopes = f" with {', '.join(sorted(own.delegated))}" if own is not None and own.delegated else ""
        raise Forbidden(f"Application permissions cannot {operation.value}: it takes a delegated token{scopes}.")
    raise Forbidden(_missing_message(operation, target, rule))


def _missing_message(operation: Operation, target: Target, rule: Rule) -> str:
    whose = {Target.OWN: " of the signed-in user", Target.OTHER: " of another user", Target.ANY: ""}
    allowed = []
    if rule.delegated:
        allowed.append(f"delegated {', '.join(sorted(rule.delegated))}")
    if rule.application:
        allowed.append(f"application {', '.join(sorted(rule.application))}")
    if not allowed:
        return f"No permission allows this caller to {operation.value}{whose[target]}."
    return f"Insufficient privileges to {operation.value}{whose[target]}. Allowed by: {'; '.join(allowed)}."

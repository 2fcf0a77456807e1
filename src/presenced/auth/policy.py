"""Who may do what to whose presence (spec §A.4), as one table.

Pure: the caller passes the principal and the target; nothing here reads the
clock, the store or the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from presenced.auth.principal import Principal
from presenced.errors import BadRequest, Forbidden


class Operation(StrEnum):
    READ_PRESENCE = "read presence"
    READ_PRESENCES = "read the presence of many users"
    WRITE_PRESENCE = "write presence"
    WRITE_LOCATION = "write the work location"
    READ_MAILBOX_SETTINGS = "read mailbox settings"
    WRITE_MAILBOX_SETTINGS = "write mailbox settings"


class Target(StrEnum):
    OWN = "own"
    OTHER = "other"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class Rule:
    """The scopes (delegated) and roles (application) that allow one operation."""

    delegated: frozenset[str]
    application: frozenset[str]
    #: What a delegated caller without a usable scope is told, when no scope could help.
    delegated_refusal: str | None = None


_READ_OWN = frozenset({"Presence.Read", "Presence.Read.All", "Presence.ReadWrite"})
_READ_ALL = frozenset({"Presence.Read.All"})
_APP_READ = frozenset({"Presence.Read.All", "Presence.ReadWrite.All"})
_WRITE_OWN = frozenset({"Presence.ReadWrite"})
_APP_WRITE = frozenset({"Presence.ReadWrite.All"})
_NONE: frozenset[str] = frozenset()
_MAILBOX_READ = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
_MAILBOX_WRITE = frozenset({"MailboxSettings.ReadWrite"})

POLICY: dict[tuple[Operation, Target], Rule] = {
    (Operation.READ_PRESENCE, Target.OWN): Rule(_READ_OWN, _APP_READ),
    (Operation.READ_PRESENCE, Target.OTHER): Rule(_READ_ALL, _APP_READ),
    (Operation.READ_PRESENCES, Target.ANY): Rule(_READ_ALL, _APP_READ),
    (Operation.WRITE_PRESENCE, Target.OWN): Rule(_WRITE_OWN, _APP_WRITE),
    (Operation.WRITE_PRESENCE, Target.OTHER): Rule(_NONE, _APP_WRITE, "Cannot set the presence of another user."),
    (Operation.WRITE_LOCATION, Target.OWN): Rule(_WRITE_OWN, _NONE),
    (Operation.WRITE_LOCATION, Target.OTHER): Rule(_NONE, _NONE, "Cannot set the work location of another user."),
    (Operation.READ_MAILBOX_SETTINGS, Target.OWN): Rule(_MAILBOX_READ, _MAILBOX_READ),
    (Operation.READ_MAILBOX_SETTINGS, Target.OTHER): Rule(
        _NONE, _MAILBOX_READ, "Cannot read the mailbox settings of another user."
    ),
    (Operation.WRITE_MAILBOX_SETTINGS, Target.OWN): Rule(_MAILBOX_WRITE, _MAILBOX_WRITE),
    (Operation.WRITE_MAILBOX_SETTINGS, Target.OTHER): Rule(
        _NONE, _MAILBOX_WRITE, "Cannot change the mailbox settings of another user."
    ),
}


def target_of(principal: Principal, user_id: str | None) -> Target:
    """Whether ``user_id`` is the caller's own (delegated) or someone else's; None means many."""
    if user_id is None:
        return Target.ANY
    return Target.OWN if principal.is_self(user_id) else Target.OTHER


def require_delegated(principal: Principal) -> str:
    """The signed-in user's id; an app-only token on ``/me`` is a bad request (§A.1)."""
    if principal.user_id is None:
        raise BadRequest("/me request is only valid with delegated authentication flow.")
    return principal.user_id


def authorize(principal: Principal, operation: Operation, target: Target) -> None:
    """Raise ``Forbidden`` unless the principal's scopes or roles allow the operation."""
    rule = POLICY[(operation, target)]
    if principal.is_delegated:
        if not principal.scopes.isdisjoint(rule.delegated):
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

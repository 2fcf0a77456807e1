"""Tests of who may call what (spec Part A §A.4, §A.1) and of the permission catalog (Part B §7)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from presenced.auth.permissions import CATALOG, GRAPH_APP_ID, PermissionKind, known_values
from presenced.auth.policy import POLICY, Operation, Target, authorize, require_delegated, target_of
from presenced.auth.principal import Principal
from presenced.errors import BadRequest, Forbidden

EXPIRES = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TENANT = "aaaaaaaa-0000-0000-0000-000000000001"
APP = "11111111-2222-3333-4444-555555555555"
ME = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
SOMEONE_ELSE = "99999999-8888-7777-6666-555555555555"

READ = "Presence.Read"
READ_ALL = "Presence.Read.All"
READ_WRITE = "Presence.ReadWrite"
READ_WRITE_ALL = "Presence.ReadWrite.All"
MAILBOX_READ = "MailboxSettings.Read"
MAILBOX_WRITE = "MailboxSettings.ReadWrite"
DELEGATED_SCOPES = [READ, READ_ALL, READ_WRITE, MAILBOX_READ, MAILBOX_WRITE]
APPLICATION_ROLES = [READ_ALL, READ_WRITE_ALL]
APPLICATION_MAILBOX_ROLES = [MAILBOX_READ, MAILBOX_WRITE]
#: Permissions outside the catalog, which never allow anything here.
UNRELATED = ["User.Read", "Mail.Read", "presence.read.all", "mailboxsettings.readwrite"]

CANNOT_SET_PRESENCE = "Cannot set the presence of another user."
PRESENCE_OPERATIONS = frozenset(
    {
        Operation.READ_PRESENCE,
        Operation.READ_PRESENCES,
        Operation.WRITE_PRESENCE,
        Operation.WRITE_LOCATION,
        Operation.READ_MAILBOX_SETTINGS,
        Operation.WRITE_MAILBOX_SETTINGS,
    }
)

#: The table of spec §A.4, written out independently of POLICY:
#: (delegated scopes that allow, application roles that allow, delegated refusal message).
SPEC: dict[tuple[Operation, Target], tuple[frozenset[str], frozenset[str], str | None]] = {
    (Operation.READ_PRESENCE, Target.OWN): (
        frozenset({READ, READ_ALL, READ_WRITE}),
        frozenset(APPLICATION_ROLES),
        None,
    ),
    (Operation.READ_PRESENCE, Target.OTHER): (frozenset({READ_ALL}), frozenset(APPLICATION_ROLES), None),
    (Operation.READ_PRESENCES, Target.ANY): (frozenset({READ_ALL}), frozenset(APPLICATION_ROLES), None),
    (Operation.WRITE_PRESENCE, Target.OWN): (frozenset({READ_WRITE}), frozenset({READ_WRITE_ALL}), None),
    (Operation.WRITE_PRESENCE, Target.OTHER): (frozenset(), frozenset({READ_WRITE_ALL}), CANNOT_SET_PRESENCE),
    (Operation.WRITE_LOCATION, Target.OWN): (frozenset({READ_WRITE}), frozenset(), None),
    (Operation.WRITE_LOCATION, Target.OTHER): (
        frozenset(),
        frozenset(),
        "Cannot set the work location of another user.",
    ),
    (Operation.READ_MAILBOX_SETTINGS, Target.OWN): (
        frozenset({MAILBOX_READ, MAILBOX_WRITE}),
        frozenset({MAILBOX_READ, MAILBOX_WRITE}),
        None,
    ),
    (Operation.READ_MAILBOX_SETTINGS, Target.OTHER): (
        frozenset(),
        frozenset({MAILBOX_READ, MAILBOX_WRITE}),
        "Cannot read the mailbox settings of another user.",
    ),
    (Operation.WRITE_MAILBOX_SETTINGS, Target.OWN): (frozenset({MAILBOX_WRITE}), frozenset({MAILBOX_WRITE}), None),
    (Operation.WRITE_MAILBOX_SETTINGS, Target.OTHER): (
        frozenset(),
        frozenset({MAILBOX_WRITE}),
        "Cannot change the mailbox settings of another user.",
    ),
}


def user(*scopes: str, user_id: str = ME, roles: frozenset[str] = frozenset()) -> Principal:
    return Principal(TENANT, APP, EXPIRES, user_id=user_id, scopes=frozenset(scopes), roles=roles)


def app(*roles: str, scopes: frozenset[str] = frozenset()) -> Principal:
    return Principal(TENANT, APP, EXPIRES, roles=frozenset(roles), scopes=scopes)


def named_permissions(message: str) -> set[str]:
    """The permission values a message names (Presence.Read is not counted inside Presence.Read.All)."""
    return set(re.findall(r"(?:Presence|MailboxSettings)(?:\.[A-Za-z]+)+", message))


def row_id(key: tuple[Operation, Target]) -> str:
    return f"{key[0].name.lower()}-{key[1].value}"


def delegated_cases() -> list[Any]:
    return [
        pytest.param(key, permission, permission in SPEC[key][0], id=f"{row_id(key)}-scp={permission}")
        for key in SPEC
        for permission in [*DELEGATED_SCOPES, *UNRELATED]
    ]


def application_cases() -> list[Any]:
    return [
        pytest.param(key, permission, permission in SPEC[key][1], id=f"{row_id(key)}-roles={permission}")
        for key in SPEC
        for permission in [*APPLICATION_ROLES, *APPLICATION_MAILBOX_ROLES, *UNRELATED]
    ]


def test_policy_has_exactly_the_spec_rows() -> None:
    """POLICY's presence and mailbox rows are exactly those of §A.4, with the same scopes and roles."""
    presence_rows = {key for key in POLICY if key[0] in PRESENCE_OPERATIONS}
    assert presence_rows == set(SPEC)
    for key, (delegated, application, refusal) in SPEC.items():
        rule = POLICY[key]
        assert (rule.delegated, rule.application, rule.delegated_refusal) == (delegated, application, refusal), key


@pytest.mark.parametrize(("key", "scope", "allowed"), delegated_cases())
def test_delegated_single_scope(key: tuple[Operation, Target], scope: str, allowed: bool) -> None:
    """A delegated caller with one scope passes iff §A.4 lists it, else gets Forbidden naming the allowing scopes."""
    principal = user(scope)
    if allowed:
        authorize(principal, *key)
        return
    with pytest.raises(Forbidden) as caught:
        authorize(principal, *key)
    delegated, _, refusal = SPEC[key]
    if refusal is not None:
        assert caught.value.message == refusal
    else:
        assert delegated <= named_permissions(caught.value.message)


@pytest.mark.parametrize(("key", "role", "allowed"), application_cases())
def test_application_single_role(key: tuple[Operation, Target], role: str, allowed: bool) -> None:
    """An app-only caller with one role passes iff §A.4 lists it, else gets Forbidden naming the allowing roles."""
    principal = app(role)
    if allowed:
        authorize(principal, *key)
        return
    with pytest.raises(Forbidden) as caught:
        authorize(principal, *key)
    application = SPEC[key][1]
    assert application <= named_permissions(caught.value.message)
    if not application:
        assert "application Presence" not in caught.value.message


@pytest.mark.parametrize("key", list(SPEC), ids=row_id)
def test_no_permissions_at_all(key: tuple[Operation, Target]) -> None:
    """A caller with no scopes or roles is refused every operation, delegated or app-only."""
    with pytest.raises(Forbidden):
        authorize(user(), *key)
    with pytest.raises(Forbidden):
        authorize(app(), *key)


@pytest.mark.parametrize("key", list(SPEC), ids=row_id)
def test_every_permission_together(key: tuple[Operation, Target]) -> None:
    """A caller holding every permission is allowed exactly the rows §A.4 allows its kind."""
    delegated, application, _ = SPEC[key]
    everything = user(*DELEGATED_SCOPES)
    if delegated:
        authorize(everything, *key)
    else:
        with pytest.raises(Forbidden):
            authorize(everything, *key)
    all_roles = app(*APPLICATION_ROLES, *APPLICATION_MAILBOX_ROLES)
    if application:
        authorize(all_roles, *key)
    else:
        with pytest.raises(Forbidden):
            authorize(all_roles, *key)


@pytest.mark.parametrize("operation", [Operation.WRITE_PRESENCE, Operation.WRITE_LOCATION], ids=lambda o: o.name)
def test_delegated_write_to_another_user(operation: Operation) -> None:
    """A delegated caller may never write someone else's presence or location, whatever its scopes."""
    with pytest.raises(Forbidden) as caught:
        authorize(user(*DELEGATED_SCOPES, READ_WRITE_ALL), operation, Target.OTHER)
    if operation is Operation.WRITE_PRESENCE:
        assert caught.value.message == CANNOT_SET_PRESENCE
    assert caught.value.status == 403
    assert caught.value.code == "Forbidden"


@pytest.mark.parametrize("target", [Target.OWN, Target.OTHER], ids=lambda t: t.value)
def test_application_never_writes_work_location(target: Target) -> None:
    """An app-only caller is refused the work-location actions, even with every role."""
    with pytest.raises(Forbidden):
        authorize(app(*APPLICATION_ROLES, "Presence.ReadWrite"), Operation.WRITE_LOCATION, target)


def test_delegated_caller_ignores_roles() -> None:
    """A delegated principal is judged by its scopes only; roles it may carry do not help."""
    with pytest.raises(Forbidden):
        authorize(user(roles=frozenset({READ_WRITE_ALL})), Operation.WRITE_PRESENCE, Target.OWN)


def test_application_caller_ignores_scopes() -> None:
    """An app-only principal is judged by its roles only; scopes it may carry do not help."""
    with pytest.raises(Forbidden):
        authorize(app(scopes=frozenset({READ_ALL})), Operation.READ_PRESENCE, Target.OTHER)


def test_forbidden_message_lists_delegated_and_application_permissions() -> None:
    """The Forbidden message for reading another user names every delegated scope and app role that allows it."""
    with pytest.raises(Forbidden) as caught:
        authorize(user(READ), Operation.READ_PRESENCE, Target.OTHER)
    assert named_permissions(caught.value.message) == {READ_ALL, READ_WRITE_ALL}
    assert "delegated Presence.Read.All" in caught.value.message
    assert "application Presence.Read.All, Presence.ReadWrite.All" in caught.value.message


# --- target_of and require_delegated -----------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "user_id", "expected"),
    [
        pytest.param(user(READ), None, Target.ANY, id="delegated-many"),
        pytest.param(app(READ_ALL), None, Target.ANY, id="app-many"),
        pytest.param(user(READ), ME, Target.OWN, id="own-id"),
        pytest.param(user(READ), ME.upper(), Target.OWN, id="own-id-upper-case"),
        pytest.param(user(READ), "0F1e2D3c-4B5a-6978-8796-A5b4C3d2E1f0", Target.OWN, id="own-id-mixed-case"),
        pytest.param(user(READ), SOMEONE_ELSE, Target.OTHER, id="other-id"),
        pytest.param(user(READ), ME + "0", Target.OTHER, id="own-id-prefix-is-other"),
        pytest.param(app(READ_ALL), ME, Target.OTHER, id="app-any-id-is-other"),
    ],
)
def test_target_of(principal: Principal, user_id: str | None, expected: Target) -> None:
    """The target is ANY for many users, OWN for the signed-in user's id in any case, else OTHER."""
    assert target_of(principal, user_id) is expected


def test_is_self_compares_with_a_lower_case_user_id() -> None:
    """Principal.is_self lower-cases the id it is given and compares it with the (lower-case) user_id."""
    assert user(user_id=ME).is_self(ME.upper())
    assert not app().is_self(ME)


def test_require_delegated_returns_the_user() -> None:
    """A delegated principal's user id is returned for /me."""
    assert require_delegated(user(READ)) == ME


def test_require_delegated_refuses_app_only() -> None:
    """An app-only principal on /me is a 400 BadRequest with Graph's message."""
    with pytest.raises(BadRequest) as caught:
        require_delegated(app(READ_ALL))
    assert caught.value.status == 400
    assert caught.value.message.startswith("/me request is only valid with delegated authentication flow")


# --- The permission catalog --------------------------------------------------------------------

#: Part B §7: (value, kind, id, display name, admin consent required).
SPEC_CATALOG = {
    (READ, PermissionKind.DELEGATED, "76bc735e-aecd-4a1d-8b4c-2b915deabb79", "Read user's presence information", False),
    (
        READ_ALL,
        PermissionKind.DELEGATED,
        "9c7a330d-35b3-4aa1-963d-cb2b9f927841",
        "Read presence information of all users in your organization",
        False,
    ),
    (
        READ_WRITE,
        PermissionKind.DELEGATED,
        "8d3c54a7-cf58-4773-bf81-c0cd6ad522bb",
        "Read and write a user's presence information",
        False,
    ),
    (
        READ_ALL,
        PermissionKind.APPLICATION,
        "a70e0c2d-e793-494c-94c4-118fa0a67f42",
        "Read presence information for all users",
        True,
    ),
    (
        READ_WRITE_ALL,
        PermissionKind.APPLICATION,
        "83cded22-8297-4ff6-a7fa-e97e9545a259",
        "Read and write presence information for all users",
        True,
    ),
}


#: The mailbox-settings permissions that §A.7 uses, as Microsoft Graph publishes them.
MAILBOX_CATALOG = {
    (
        MAILBOX_READ,
        PermissionKind.DELEGATED,
        "87f447af-9fa4-4c32-9dfa-4a57a73d18ce",
        "Read user mailbox settings",
        False,
    ),
    (
        MAILBOX_WRITE,
        PermissionKind.DELEGATED,
        "818c620a-27a9-40bd-a6a5-d96f7d610b4b",
        "Read and write user mailbox settings",
        False,
    ),
    (
        MAILBOX_READ,
        PermissionKind.APPLICATION,
        "40f97065-369a-49f4-947c-6a255697ae91",
        "Read all user mailbox settings",
        True,
    ),
    (
        MAILBOX_WRITE,
        PermissionKind.APPLICATION,
        "6931bccd-447a-43d1-b442-00a195474933",
        "Read and write all user mailbox settings",
        True,
    ),
}


def test_catalog_matches_spec_part_b_section_7() -> None:
    """The catalog holds the five presence permissions of Part B §7 and the four mailbox-settings ones of §A.7."""
    catalog = {(p.value, p.kind, p.id, p.display_name, p.admin_consent_required) for p in CATALOG}
    presence = {entry for entry in catalog if entry[0].startswith(("Presence.", "MailboxSettings."))}
    assert presence == SPEC_CATALOG | MAILBOX_CATALOG
    assert GRAPH_APP_ID == "00000003-0000-0000-c000-000000000000"


@pytest.mark.parametrize("key", list(POLICY), ids=row_id)
def test_policy_permissions_exist_in_catalog_with_right_kind(key: tuple[Operation, Target]) -> None:
    """Every scope in POLICY is a delegated catalog permission and every role an application one."""
    rule = POLICY[key]
    assert rule.delegated <= known_values(PermissionKind.DELEGATED)
    assert rule.application <= known_values(PermissionKind.APPLICATION)


def test_known_values_by_kind() -> None:
    """known_values gives the delegated and application permission values separately."""
    delegated = known_values(PermissionKind.DELEGATED)
    application = known_values(PermissionKind.APPLICATION)
    assert {READ, READ_ALL, READ_WRITE, MAILBOX_READ, MAILBOX_WRITE, "openid", "User.Read"} <= delegated
    assert {READ_ALL, READ_WRITE_ALL, MAILBOX_READ, MAILBOX_WRITE} <= application
    assert READ_WRITE_ALL not in delegated
    assert {READ, READ_WRITE, "openid", "User.Read"}.isdisjoint(application)


def test_catalog_ids_are_unique_and_consent_follows_kind() -> None:
    """Every permission has its own id; application permissions always need an administrator's consent."""
    assert len({p.id for p in CATALOG}) == len(CATALOG)
    for permission in CATALOG:
        if permission.kind is PermissionKind.APPLICATION:
            assert permission.admin_consent_required
            assert permission.user_display_name is None
        else:
            assert permission.user_display_name
            assert permission.user_description


def test_presence_permissions_are_user_consentable() -> None:
    """The three delegated Presence permissions can be consented to by a user (Part B §7)."""
    for value in (READ, READ_ALL, READ_WRITE):
        assert next(p for p in CATALOG if p.value == value and p.kind is PermissionKind.DELEGATED).user_consentable


USER_READS = frozenset({Operation.READ_USERS_BASIC, Operation.READ_USERS})


@pytest.mark.parametrize(
    "operation",
    [
        op
        for op in Operation
        if op not in PRESENCE_OPERATIONS | {Operation.READ_PROFILE, Operation.SUBSCRIBE_PRESENCE} | USER_READS
        and op is not Operation.WRITE_PHOTO
    ],
)
def test_directory_operations_need_an_admin_user(operation: Operation) -> None:
    """A delegated directory operation needs both an allowing scope and an administrator user."""
    rule = POLICY[(operation, Target.ANY)]
    scope = sorted(rule.delegated)[0]
    with pytest.raises(Forbidden, match="not an administrator"):
        authorize(user(scope), operation, Target.ANY)
    admin = Principal(TENANT, APP, EXPIRES, user_id=ME, scopes=frozenset({scope}), directory_admin=True)
    authorize(admin, operation, Target.ANY)
    role = sorted(rule.application)[0]
    authorize(app(role), operation, Target.ANY)


@pytest.mark.parametrize("operation", sorted(USER_READS))
def test_reading_users_needs_a_permission_but_no_administrator(operation: Operation) -> None:
    for scope in sorted(POLICY[(operation, Target.ANY)].delegated):
        authorize(user(scope), operation, Target.ANY)
    with pytest.raises(Forbidden):
        authorize(user(READ_ALL), operation, Target.ANY)
    with pytest.raises(Forbidden):
        authorize(user("User.ReadBasic.All"), Operation.READ_USERS, Target.ANY)


def test_another_users_photo_is_changed_by_an_administrator_or_an_application() -> None:
    with pytest.raises(Forbidden, match="not an administrator"):
        authorize(user("User.ReadWrite.All"), Operation.WRITE_PHOTO, Target.OTHER)
    authorize(user("User.ReadWrite"), Operation.WRITE_PHOTO, Target.OWN)
    with pytest.raises(Forbidden):
        authorize(user("User.ReadWrite"), Operation.WRITE_PHOTO, Target.OTHER)
    authorize(app("User.ReadWrite.All"), Operation.WRITE_PHOTO, Target.OTHER)


def test_presence_subscriptions_take_presence_read_all() -> None:
    """Delegated and (as an extension) application Presence.Read.All may subscribe; Presence.Read may not."""
    authorize(user(READ_ALL), Operation.SUBSCRIBE_PRESENCE, Target.ANY)
    authorize(app(READ_ALL), Operation.SUBSCRIBE_PRESENCE, Target.ANY)
    for principal in (user(READ), user(READ_WRITE), app(READ_WRITE_ALL)):
        with pytest.raises(Forbidden):
            authorize(principal, Operation.SUBSCRIBE_PRESENCE, Target.ANY)

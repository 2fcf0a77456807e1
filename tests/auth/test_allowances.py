"""Which permissions of the catalog allow an endpoint's accesses, and with what limit (``auth.allowances``)."""

from __future__ import annotations

from presenced.auth.allowances import Allowance, allowances
from presenced.auth.operations import Access, Operation, Target
from presenced.auth.permissions import (
    APP_PRESENCE_READWRITE_ALL,
    CATALOG,
    PRESENCE_READ,
    PRESENCE_READWRITE,
    PermissionKind,
)
from presenced.auth.policy import POLICY

OWN_READ: Access = (Operation.READ_PRESENCE, Target.OWN)
OTHER_READ: Access = (Operation.READ_PRESENCE, Target.OTHER)
OWN_WRITE: Access = (Operation.WRITE_PRESENCE, Target.OWN)
OTHER_WRITE: Access = (Operation.WRITE_PRESENCE, Target.OTHER)


def named(found: tuple[Allowance, ...]) -> list[tuple[str, str, bool, bool]]:
    return [(a.permission.value, a.permission.kind.value, a.own_only, a.administrators) for a in found]


def test_me_presence_is_allowed_by_delegated_permissions_only() -> None:
    """GET /me/presence: Presence.Read and the wider delegated ones, no limit worth naming, no application one."""
    found = allowances((OWN_READ,), delegated_only=True)
    assert found[0].permission is PRESENCE_READ
    assert named(found) == [
        ("Presence.Read", "delegated", False, False),
        ("Presence.Read.All", "delegated", False, False),
        ("Presence.ReadWrite", "delegated", False, False),
    ]
    assert all(a.permission.kind is PermissionKind.DELEGATED for a in found)
    assert [a.note for a in found] == ["", "", ""]


def test_a_users_presence_is_own_only_for_presence_read() -> None:
    """GET /users/{id}/presence serves others too: Presence.Read allows only the caller's own presence."""
    found = allowances((OWN_READ, OTHER_READ))
    assert named(found) == [
        ("Presence.Read", "delegated", True, False),
        ("Presence.Read.All", "delegated", False, False),
        ("Presence.ReadWrite", "delegated", True, False),
        ("Presence.Read.All", "application", False, False),
        ("Presence.ReadWrite.All", "application", False, False),
    ]
    own = found[0]
    assert own.permission is PRESENCE_READ
    assert own.accesses == (OWN_READ,)
    assert own.note == "own presence only"
    assert found[1].accesses == (OWN_READ, OTHER_READ)


def test_set_presence_of_another_user_takes_the_application_permission() -> None:
    """setPresence on someone else: application Presence.ReadWrite.All, no delegated permission at all."""
    found = allowances((OTHER_WRITE,))
    assert named(found) == [("Presence.ReadWrite.All", "application", False, False)]
    assert found[0].permission is APP_PRESENCE_READWRITE_ALL
    assert found[0].note == ""


def test_set_presence_on_a_users_path_is_own_only_for_delegated_callers() -> None:
    """/users/{id}/presence/setPresence: Presence.ReadWrite for the caller's own presence only."""
    found = allowances((OWN_WRITE, OTHER_WRITE))
    assert named(found) == [
        ("Presence.ReadWrite", "delegated", True, False),
        ("Presence.ReadWrite.All", "application", False, False),
    ]
    assert found[0].permission is PRESENCE_READWRITE
    assert found[0].accesses == (OWN_WRITE,)


def test_delegated_only_leaves_out_application_permissions() -> None:
    found = allowances((OWN_READ, OTHER_READ), delegated_only=True)
    assert [a.permission.kind for a in found] == [PermissionKind.DELEGATED] * 3


def test_reading_users_takes_a_permission_not_a_directory_role() -> None:
    """As in Graph: User.ReadBasic.All (delegated) and User.Read.All list users without an administrator;
    creating users still asks a delegated caller for the role."""
    basic: Access = (Operation.READ_USERS_BASIC, Target.ANY)
    assert not POLICY[basic].admin_only
    assert named(allowances((basic,))) == [
        ("User.ReadBasic.All", "delegated", False, False),
        ("User.Read.All", "delegated", False, False),
        ("User.ReadWrite.All", "delegated", False, False),
        ("User.Read.All", "application", False, False),
        ("User.ReadWrite.All", "application", False, False),
    ]
    write: Access = (Operation.WRITE_USERS, Target.ANY)
    assert [a.note for a in allowances((write,))] == ["administrators only", ""]


def test_the_own_only_note_names_what_is_limited() -> None:
    found = allowances(((Operation.READ_MAILBOX_SETTINGS, Target.OWN), (Operation.READ_MAILBOX_SETTINGS, Target.OTHER)))
    assert [a.note for a in found if a.own_only] == ["own mailbox settings only", "own mailbox settings only"]


def test_no_access_is_allowed_by_no_permission() -> None:
    assert allowances(()) == ()


def test_allowances_follow_catalog_order_and_the_catalogs_accesses() -> None:
    """Delegated before application, each kind in catalog order; every allowed access is one the permission lists."""
    order = {(p.value, p.kind): i for i, p in enumerate(CATALOG)}
    for access in POLICY:
        found = allowances((access,))
        kinds = [a.permission.kind for a in found]
        assert kinds == sorted(kinds, key=lambda k: k is PermissionKind.APPLICATION), access
        for kind in PermissionKind:
            positions = [order[(a.permission.value, kind)] for a in found if a.permission.kind is kind]
            assert positions == sorted(positions), access
        for allowed in found:
            assert allowed.accesses == (access,)
            assert access in allowed.permission.allows

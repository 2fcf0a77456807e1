"""The permission catalog (spec Part B §7): ids, names and consent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: The Microsoft Graph resource application, whose permissions these are.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", GRAPH_APP_ID})


class PermissionKind(StrEnum):
    DELEGATED = "delegated"
    APPLICATION = "application"


@dataclass(frozen=True, slots=True)
class Permission:
    value: str
    kind: PermissionKind
    id: str
    display_name: str
    admin_consent_required: bool


PRESENCE_READ = Permission(
    "Presence.Read",
    PermissionKind.DELEGATED,
    "76bc735e-aecd-4a1d-8b4c-2b915deabb79",
    "Read user's presence information",
    False,
)
PRESENCE_READ_ALL = Permission(
    "Presence.Read.All",
    PermissionKind.DELEGATED,
    "9c7a330d-35b3-4aa1-963d-cb2b9f927841",
    "Read presence information of all users in your organization",
    False,
)
PRESENCE_READWRITE = Permission(
    "Presence.ReadWrite",
    PermissionKind.DELEGATED,
    "8d3c54a7-cf58-4773-bf81-c0cd6ad522bb",
    "Read and write a user's presence information",
    False,
)
APP_PRESENCE_READ_ALL = Permission(
    "Presence.Read.All",
    PermissionKind.APPLICATION,
    "a70e0c2d-e793-494c-94c4-118fa0a67f42",
    "Read presence information for all users",
    True,
)
APP_PRESENCE_READWRITE_ALL = Permission(
    "Presence.ReadWrite.All",
    PermissionKind.APPLICATION,
    "83cded22-8297-4ff6-a7fa-e97e9545a259",
    "Read and write presence information for all users",
    True,
)

MAILBOX_SETTINGS_READ = Permission(
    "MailboxSettings.Read",
    PermissionKind.DELEGATED,
    "87f447af-9fa4-4c32-9dfa-4a57a73d18ce",
    "Read user mailbox settings",
    False,
)
MAILBOX_SETTINGS_READWRITE = Permission(
    "MailboxSettings.ReadWrite",
    PermissionKind.DELEGATED,
    "818c620a-27a9-40bd-a6a5-d96f7d610b4b",
    "Read and write user mailbox settings",
    False,
)
APP_MAILBOX_SETTINGS_READ = Permission(
    "MailboxSettings.Read",
    PermissionKind.APPLICATION,
    "40f97065-369a-49f4-947c-6a255697ae91",
    "Read all user mailbox settings",
    True,
)
APP_MAILBOX_SETTINGS_READWRITE = Permission(
    "MailboxSettings.ReadWrite",
    PermissionKind.APPLICATION,
    "6931bccd-447a-43d1-b442-00a195474933",
    "Read and write all user mailbox settings",
    True,
)

CATALOG: tuple[Permission, ...] = (
    PRESENCE_READ,
    PRESENCE_READ_ALL,
    PRESENCE_READWRITE,
    APP_PRESENCE_READ_ALL,
    APP_PRESENCE_READWRITE_ALL,
    MAILBOX_SETTINGS_READ,
    MAILBOX_SETTINGS_READWRITE,
    APP_MAILBOX_SETTINGS_READ,
    APP_MAILBOX_SETTINGS_READWRITE,
)


def known_values(kind: PermissionKind) -> frozenset[str]:
    """The permission values of one kind, as they appear in ``scp`` or ``roles``."""
    return frozenset(p.value for p in CATALOG if p.kind is kind)

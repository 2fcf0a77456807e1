"""What a caller can do, and to whom: the vocabulary of the permission catalog and the policy."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    READ_PRESENCE = "read presence"
    READ_PRESENCES = "read the presence of many users"
    WRITE_PRESENCE = "write presence"
    WRITE_LOCATION = "write the work location"
    READ_MAILBOX_SETTINGS = "read mailbox settings"
    WRITE_MAILBOX_SETTINGS = "write mailbox settings"
    SUBSCRIBE_PRESENCE = "subscribe to presence changes"
    READ_PROFILE = "read the user profile"
    READ_USERS_BASIC = "read users' basic profiles"
    READ_USERS = "read users' full profiles"
    WRITE_PHOTO = "change the profile photo"
    WRITE_USERS = "create and delete users"
    READ_APPLICATIONS = "read applications and service principals"
    WRITE_APPLICATIONS = "manage applications and service principals"
    WRITE_PERMISSION_GRANTS = "manage delegated permission grants"
    WRITE_APP_ROLE_ASSIGNMENTS = "manage app role assignments"


class Target(StrEnum):
    OWN = "own"
    OTHER = "other"
    ANY = "any"


#: An operation on a target: what one permission allows, one entry at a time.
Access = tuple[Operation, Target]

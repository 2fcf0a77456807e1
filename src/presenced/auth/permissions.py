"""The permission catalog: every permission presenced knows, once.

The token issuer (which scopes and roles exist, which need an administrator),
the policy (what each allows), the consent screen (the words a person reads)
and the permissions explorer all read this table; nothing else lists
permissions. Ids and wording are Microsoft Graph's (docs/permissions-explorer.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from presenced.auth.operations import Access, Operation, Target

#: The Microsoft Graph resource application, whose permissions these are.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_AUDIENCES = frozenset({GRAPH_RESOURCE, GRAPH_APP_ID})
GRAPH_DISPLAY_NAME = "Microsoft Graph"


class PermissionKind(StrEnum):
    DELEGATED = "delegated"
    APPLICATION = "application"

    @property
    def graph_type(self) -> str:
        """The ``resourceAccess.type`` of Graph's app model: Scope or Role."""
        return "Scope" if self is PermissionKind.DELEGATED else "Role"


@dataclass(frozen=True, slots=True)
class Permission:
    value: str
    kind: PermissionKind
    id: str
    admin_display_name: str
    admin_description: str
    #: The words a user reads on the consent screen (delegated permissions only).
    user_display_name: str | None
    user_description: str | None
    admin_consent_required: bool
    #: The operations it allows.
    allows: frozenset[Access] = frozenset()
    #: An OpenID Connect scope (sign-in, profile, refresh tokens), not an API permission.
    openid: bool = False

    @property
    def user_consentable(self) -> bool:
        return self.kind is PermissionKind.DELEGATED and not self.admin_consent_required

    @property
    def display_name(self) -> str:
        return self.admin_display_name


def _allows(*pairs: tuple[Operation, Target]) -> frozenset[Access]:
    return frozenset(pairs)


_D, _A = PermissionKind.DELEGATED, PermissionKind.APPLICATION
_O, _T = Operation, Target
_PRESENCE_NOTE = "Presence information includes activity, availability, status note, calendar out-of-office message, timezone and location."  # noqa: E501

_READ_OWN = _allows((_O.READ_PRESENCE, _T.OWN))
_READ_ANY = _allows((_O.READ_PRESENCE, _T.OWN), (_O.READ_PRESENCE, _T.OTHER), (_O.READ_PRESENCES, _T.ANY))
#: Presence subscriptions: delegated Presence.Read.All as Graph; application Presence.Read.All an extension.
_SUBSCRIBE = _allows((_O.SUBSCRIBE_PRESENCE, _T.ANY))
_WRITE_OWN = _allows((_O.WRITE_PRESENCE, _T.OWN), (_O.WRITE_LOCATION, _T.OWN))
_MAILBOX_READ_OWN = _allows((_O.READ_MAILBOX_SETTINGS, _T.OWN))
_MAILBOX_WRITE_OWN = _allows((_O.WRITE_MAILBOX_SETTINGS, _T.OWN))
_MAILBOX_READ_ANY = _allows((_O.READ_MAILBOX_SETTINGS, _T.OWN), (_O.READ_MAILBOX_SETTINGS, _T.OTHER))
_MAILBOX_WRITE_ANY = _allows((_O.WRITE_MAILBOX_SETTINGS, _T.OWN), (_O.WRITE_MAILBOX_SETTINGS, _T.OTHER))
_USERS_BASIC = _allows((_O.READ_USERS_BASIC, _T.ANY))
_USERS_READ = _USERS_BASIC | _allows((_O.READ_PROFILE, _T.OWN), (_O.READ_USERS, _T.ANY))
_USERS_WRITE = _USERS_READ | _allows((_O.WRITE_USERS, _T.ANY), (_O.WRITE_PHOTO, _T.OWN), (_O.WRITE_PHOTO, _T.OTHER))
_APPS_READ = _allows((_O.READ_APPLICATIONS, _T.ANY))
_APPS_WRITE = _APPS_READ | _allows((_O.WRITE_APPLICATIONS, _T.ANY))

PRESENCE_READ = Permission(
    "Presence.Read", _D, "76bc735e-aecd-4a1d-8b4c-2b915deabb79",
    "Read user's presence information",
    f"Allows the app to read presence information on behalf of the signed-in user. {_PRESENCE_NOTE}",
    "Read your presence information",
    f"Allows the app to read your presence information on your behalf. {_PRESENCE_NOTE}",
    False, _READ_OWN,
)  # fmt: skip
PRESENCE_READ_ALL = Permission(
    "Presence.Read.All", _D, "9c7a330d-35b3-4aa1-963d-cb2b9f927841",
    "Read presence information of all users in your organization",
    f"Allows the app to read presence information of all users in the directory on behalf of the signed-in user. {_PRESENCE_NOTE}",  # noqa: E501
    "Read presence information of all users in your organization",
    f"Allows the app to read presence information of all users in the directory on your behalf. {_PRESENCE_NOTE}",
    False, _READ_ANY | _SUBSCRIBE,
)  # fmt: skip
PRESENCE_READWRITE = Permission(
    "Presence.ReadWrite", _D, "8d3c54a7-cf58-4773-bf81-c0cd6ad522bb",
    "Read and write a user's presence information",
    f"Allows the app to read the presence information and write activity and availability on behalf of the signed-in user. {_PRESENCE_NOTE}",  # noqa: E501
    "Read and write your presence information",
    f"Allows the app to read the presence information and write activity and availability on your behalf. {_PRESENCE_NOTE}",  # noqa: E501
    False, _READ_OWN | _WRITE_OWN,
)  # fmt: skip
APP_PRESENCE_READ_ALL = Permission(
    "Presence.Read.All", _A, "a70e0c2d-e793-494c-94c4-118fa0a67f42",
    "Read presence information for all users",
    f"Allows the app to read presence information of all users in the directory without a signed-in user. {_PRESENCE_NOTE}",  # noqa: E501
    None, None, True, _READ_ANY | _SUBSCRIBE,
)  # fmt: skip
APP_PRESENCE_READWRITE_ALL = Permission(
    "Presence.ReadWrite.All", _A, "83cded22-8297-4ff6-a7fa-e97e9545a259",
    "Read and write presence information for all users",
    "Allows the app to read all presence information and write activity and availability of all users in the directory without a signed-in user. Presence information includes activity, availability, status note, calendar out-of-office message, time zone and location.",  # noqa: E501
    None, None, True, _READ_ANY | _allows((_O.WRITE_PRESENCE, _T.OWN), (_O.WRITE_PRESENCE, _T.OTHER)),
)  # fmt: skip
MAILBOX_SETTINGS_READ = Permission(
    "MailboxSettings.Read", _D, "87f447af-9fa4-4c32-9dfa-4a57a73d18ce",
    "Read user mailbox settings",
    "Allows the app to the read user's mailbox settings. Does not include permission to send mail.",
    "Read your mailbox settings",
    "Allows the app to read your mailbox settings.",
    False, _MAILBOX_READ_OWN,
)  # fmt: skip
MAILBOX_SETTINGS_READWRITE = Permission(
    "MailboxSettings.ReadWrite", _D, "818c620a-27a9-40bd-a6a5-d96f7d610b4b",
    "Read and write user mailbox settings",
    "Allows the app to create, read, update, and delete user's mailbox settings. Does not include permission to send mail.",  # noqa: E501
    "Read and write to your mailbox settings",
    "Allows the app to read, update, create, and delete your mailbox settings.",
    False, _MAILBOX_READ_OWN | _MAILBOX_WRITE_OWN,
)  # fmt: skip
APP_MAILBOX_SETTINGS_READ = Permission(
    "MailboxSettings.Read", _A, "40f97065-369a-49f4-947c-6a255697ae91",
    "Read all user mailbox settings",
    "Allows the app to read user's mailbox settings without a signed-in user. Does not include permission to send mail.",  # noqa: E501
    None, None, True, _MAILBOX_READ_ANY,
)  # fmt: skip
APP_MAILBOX_SETTINGS_READWRITE = Permission(
    "MailboxSettings.ReadWrite", _A, "6931bccd-447a-43d1-b442-00a195474933",
    "Read and write all user mailbox settings",
    "Allows the app to create, read, update, and delete user's mailbox settings without a signed-in user. Does not include permission to send mail.",  # noqa: E501
    None, None, True, _MAILBOX_READ_ANY | _MAILBOX_WRITE_ANY,
)  # fmt: skip
USER_READ = Permission(
    "User.Read", _D, "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
    "Sign in and read user profile",
    "Allows users to sign-in to the app, and allows the app to read the profile of signed-in users. It also allows the app to read basic company information of signed-in users.",  # noqa: E501
    "Sign you in and read your profile",
    "Allows you to sign in to the app with your organizational account and let the app read your profile. It also allows the app to read basic company information.",  # noqa: E501
    False, _allows((_O.READ_PROFILE, _T.OWN)),
)  # fmt: skip
USER_READWRITE = Permission(
    "User.ReadWrite", _D, "b4e74841-8e56-480b-be8b-910348b18b4c",
    "Read and write access to user profile",
    "Allows the app to read the full profile of the signed-in user. It also allows the app to update the profile information of the signed-in user on their behalf.",  # noqa: E501
    "Read and update your profile",
    "Allows the app to read your profile, and discover your group membership, reports and manager. It also allows the app to update your profile information on your behalf.",  # noqa: E501
    False, _allows((_O.READ_PROFILE, _T.OWN), (_O.WRITE_PHOTO, _T.OWN)),
)  # fmt: skip
USER_READBASIC_ALL = Permission(
    "User.ReadBasic.All", _D, "b340eb25-3456-403f-be2f-af7a0d370277",
    "Read all users' basic profiles",
    "Allows the app to read a basic set of profile properties of other users in your organization on behalf of the signed-in user. This includes display name, first and last name, email address and photo.",  # noqa: E501
    "Read all users' basic profiles",
    "Allows the app to read a basic set of profile properties of other users in your organization on your behalf. Includes display name, first and last name, email address and photo.",  # noqa: E501
    False, _USERS_BASIC,
)  # fmt: skip
USER_READ_ALL = Permission(
    "User.Read.All", _D, "a154be20-db9c-4678-8ab7-66f6cc099a59",
    "Read all users' full profiles",
    "Allows the app to read the full set of profile properties, reports, and managers of other users in your organization, on behalf of the signed-in user.",  # noqa: E501
    "Read all users' full profiles",
    "Allows the app to read the full set of profile properties, reports, and managers of other users in your organization, on your behalf.",  # noqa: E501
    True, _USERS_READ,
)  # fmt: skip
APP_USER_READ_ALL = Permission(
    "User.Read.All", _A, "df021288-bdef-4463-88db-98f22de89214",
    "Read all users' full profiles",
    "Allows the app to read user profiles without a signed in user.",
    None, None, True, _USERS_READ,
)  # fmt: skip
USER_READWRITE_ALL = Permission(
    "User.ReadWrite.All", _D, "204e0828-b5ca-4ad8-b9f3-f32a958e7cc4",
    "Read and write all users' full profiles",
    "Allows the app to read and write the full set of profile properties, reports, and managers of other users in your organization, on behalf of the signed-in user. Also allows the app to create and delete users as well as reset user passwords on behalf of the signed-in user.",  # noqa: E501
    "Read and write all users' full profiles",
    "Allows the app to read and write the full set of profile properties, reports, and managers of other users in your organization, on your behalf. Also allows the app to create and delete users as well as reset user passwords on your behalf.",  # noqa: E501
    True, _USERS_WRITE,
)  # fmt: skip
APP_USER_READWRITE_ALL = Permission(
    "User.ReadWrite.All", _A, "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Read and write all users' full profiles",
    "Allows the app to read and update user profiles without a signed in user.",
    None, None, True, _USERS_WRITE,
)  # fmt: skip
APPLICATION_READ_ALL = Permission(
    "Application.Read.All", _D, "c79f8feb-a9db-4090-85f9-90d820caa0eb",
    "Read applications",
    "Allows the app to read applications and service principals on behalf of the signed-in user.",
    "Read applications",
    "Allows the app to read applications and service principals on your behalf.",
    True, _APPS_READ,
)  # fmt: skip
APP_APPLICATION_READ_ALL = Permission(
    "Application.Read.All", _A, "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Read all applications",
    "Allows the app to read all applications and service principals without a signed-in user.",
    None, None, True, _APPS_READ,
)  # fmt: skip
APPLICATION_READWRITE_ALL = Permission(
    "Application.ReadWrite.All", _D, "bdfbf15f-ee85-4955-8675-146e8e5296b5",
    "Read and write all applications",
    "Allows the app to create, read, update and delete applications and service principals on behalf of the signed-in user. Does not allow management of consent grants.",  # noqa: E501
    "Read and write applications",
    "Allows the app to create, read, update and delete applications and service principals on your behalf. Does not allow management of consent grants.",  # noqa: E501
    True, _APPS_WRITE,
)  # fmt: skip
APP_APPLICATION_READWRITE_ALL = Permission(
    "Application.ReadWrite.All", _A, "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    "Read and write all applications",
    "Allows the app to create, read, update and delete applications and service principals without a signed-in user.  Does not allow management of consent grants.",  # noqa: E501
    None, None, True, _APPS_WRITE,
)  # fmt: skip
GRANTS_READWRITE_ALL = Permission(
    "DelegatedPermissionGrant.ReadWrite.All", _D, "41ce6ca6-6826-4807-84f1-1c82854f7ee5",
    "Manage all delegated permission grants",
    "Allows the app to manage permission grants for delegated permissions exposed by any API (including Microsoft Graph), on behalf of the signed in user.",  # noqa: E501
    "Manage all delegated permission grants",
    "Allows the app to manage permission grants for delegated permissions exposed by any API (including Microsoft Graph), on your behalf.",  # noqa: E501
    True, _APPS_READ | _allows((_O.WRITE_PERMISSION_GRANTS, _T.ANY)),
)  # fmt: skip
APP_GRANTS_READWRITE_ALL = Permission(
    "DelegatedPermissionGrant.ReadWrite.All", _A, "8e8e4742-1d95-4f68-9d56-6ee75648c72a",
    "Manage all delegated permission grants",
    "Allows the app to manage permission grants for delegated permissions exposed by any API (including Microsoft Graph), without a signed-in user.",  # noqa: E501
    None, None, True, _APPS_READ | _allows((_O.WRITE_PERMISSION_GRANTS, _T.ANY)),
)  # fmt: skip
ASSIGNMENTS_READWRITE_ALL = Permission(
    "AppRoleAssignment.ReadWrite.All", _D, "84bccea3-f856-4a8a-967b-dbe0a3d53a64",
    "Manage app permission grants and app role assignments",
    "Allows the app to manage permission grants for application permissions to any API (including Microsoft Graph) and application assignments for any app, on behalf of the signed-in user.",  # noqa: E501
    "Manage app permission grants and app role assignments",
    "Allows the app to manage permission grants for application permissions to any API (including Microsoft Graph) and application assignments for any app, on your behalf.",  # noqa: E501
    True, _APPS_READ | _allows((_O.WRITE_APP_ROLE_ASSIGNMENTS, _T.ANY)),
)  # fmt: skip
APP_ASSIGNMENTS_READWRITE_ALL = Permission(
    "AppRoleAssignment.ReadWrite.All", _A, "06b708a9-e830-4db3-a914-8e69da51d44f",
    "Manage app permission grants and app role assignments",
    "Allows the app to manage permission grants for application permissions to any API (including Microsoft Graph) and application assignments for any app, without a signed-in user.",  # noqa: E501
    None, None, True, _APPS_READ | _allows((_O.WRITE_APP_ROLE_ASSIGNMENTS, _T.ANY)),
)  # fmt: skip
OPENID = Permission(
    "openid", _D, "37f7f235-527c-4136-accd-4a02d197296e",
    "Sign users in", "Allows users to sign in to the app with their work or school accounts and allows the app to see basic user profile information.",  # noqa: E501
    "Sign in as you", "Allows you to sign in to the app with your work or school account and allows the app to read your basic profile information.",  # noqa: E501
    False, openid=True,
)  # fmt: skip
PROFILE = Permission(
    "profile", _D, "14dad69e-099b-42c9-810b-d002981feec1",
    "View users' basic profile", "Allows the app to see your users' basic profile (e.g., name, picture, user name, email address)",  # noqa: E501
    "View your basic profile", "Allows the app to see your basic profile (e.g., name, picture, user name, email address)",  # noqa: E501
    False, openid=True,
)  # fmt: skip
EMAIL = Permission(
    "email", _D, "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0",
    "View users' email address", "Allows the app to read your users' primary email address",
    "View your email address", "Allows the app to read your primary email address",
    False, openid=True,
)  # fmt: skip
OFFLINE_ACCESS = Permission(
    "offline_access", _D, "7427e0e9-2fba-42fe-b0c0-848c9e6a8182",
    "Maintain access to data you have given it access to",
    "Allows the app to see and update the data you gave it access to, even when users are not currently using the app. This does not give the app any additional permissions.",  # noqa: E501
    "Maintain access to data you have given it access to",
    "Allows the app to see and update the data you gave it access to, even when you are not currently using the app. This does not give the app any additional permissions.",  # noqa: E501
    False, openid=True,
)  # fmt: skip

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
    USER_READ,
    USER_READWRITE,
    USER_READBASIC_ALL,
    USER_READ_ALL,
    APP_USER_READ_ALL,
    USER_READWRITE_ALL,
    APP_USER_READWRITE_ALL,
    APPLICATION_READ_ALL,
    APP_APPLICATION_READ_ALL,
    APPLICATION_READWRITE_ALL,
    APP_APPLICATION_READWRITE_ALL,
    GRANTS_READWRITE_ALL,
    APP_GRANTS_READWRITE_ALL,
    ASSIGNMENTS_READWRITE_ALL,
    APP_ASSIGNMENTS_READWRITE_ALL,
    OPENID,
    PROFILE,
    EMAIL,
    OFFLINE_ACCESS,
)

OPENID_SCOPES = frozenset(p.value for p in CATALOG if p.openid)
_BY_VALUE = {(p.value, p.kind): p for p in CATALOG}
_BY_ID = {p.id: p for p in CATALOG}


def known_values(kind: PermissionKind) -> frozenset[str]:
    """The permission values of one kind, as they appear in ``scp`` or ``roles``."""
    return frozenset(p.value for p in CATALOG if p.kind is kind)


def find(value: str, kind: PermissionKind) -> Permission | None:
    """The permission with this exact value (values are case-sensitive) and kind."""
    return _BY_VALUE.get((value, kind))


def by_id(permission_id: str) -> Permission | None:
    return _BY_ID.get(permission_id.lower())


def allowing(access: Access, kind: PermissionKind) -> frozenset[str]:
    """The values of the permissions of ``kind`` that allow ``access``."""
    return frozenset(p.value for p in CATALOG if p.kind is kind and access in p.allows)

"""The properties of the resource a response type carries, with a short description of each.

The permissions explorer shows, for each permission, the properties that the methods it allows
expose: read off the endpoints' response types (msgspec structs), by their wire names.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import msgspec

#: Graph's name of the resource each response type carries (by type name; otherwise the name less
#: ``Body``/``Entity``), and a short description of each of its properties.
_RESOURCES = {
    "GrantBody": "oAuth2PermissionGrant",
    "AssignmentBody": "appRoleAssignment",
    "SubscriptionBody": "subscription",
    "SubscriptionEntity": "subscription",
    "HistoryEntry": "presenceHistoryEntry",
}
_DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("presence", "id"): "The user's object id.",
    ("presence", "availability"): "Base presence: Available, AvailableIdle, Away, BeRightBack, Busy, BusyIdle, "
    "DoNotDisturb, Offline or PresenceUnknown.",
    ("presence", "activity"): "What the user is doing, e.g. Available, InACall, InAMeeting, Presenting, OutOfOffice.",
    ("presence", "outOfOfficeSettings"): "Whether the user is out of office (from their automatic replies), "
    "and the reply message.",
    ("presence", "statusMessage"): "The status note the user set, with when it was published and when it expires.",
    ("presence", "sequenceNumber"): "Rises with every change of the presence: the newest of two has the higher one.",
    ("presence", "workLocation"): "Where the user works (office, remote, time off), set by hand or detected.",
    ("mailboxSettings", "timeZone"): "The user's time zone (Windows or IANA name).",
    ("mailboxSettings", "automaticRepliesSetting"): "Automatic replies (out of office): status, schedule, audience "
    "and messages.",
    ("presenceHistoryEntry", "availability"): "The availability after the change (extension).",
    ("presenceHistoryEntry", "activity"): "The activity after the change (extension).",
    ("presenceHistoryEntry", "sequenceNumber"): "The presence's sequence number after the change (extension).",
    ("presenceHistoryEntry", "dateTime"): "When the change was made, on the presence clock (extension).",
    ("presenceHistoryEntry", "cause"): "What made it: the write's action (setPresence, …) or timer (extension).",
    ("lastSeen", "id"): "The user's object id.",
    ("lastSeen", "lastSeenDateTime"): "The last instant the presence was not Offline; null if unknown (extension).",
    ("user", "id"): "The user's object id.",
    ("user", "displayName"): "The user's name as shown.",
    ("user", "userPrincipalName"): "The sign-in name, e.g. adele@contoso.example.",
    ("user", "givenName"): "The user's first name (null when not set).",
    ("user", "surname"): "The user's last name (null when not set).",
    ("user", "mail"): "The user's email address (null when not set).",
    ("profilePhoto", "id"): "The photo's size as WIDTHxHEIGHT, e.g. 240X240.",
    ("profilePhoto", "height"): "The photo's height in pixels.",
    ("profilePhoto", "width"): "The photo's width in pixels.",
    ("application", "id"): "The registration's object id.",
    ("application", "appId"): "The application (client) id.",
    ("application", "displayName"): "The app's name.",
    ("application", "createdDateTime"): "When it was registered.",
    ("application", "signInAudience"): "Who may sign in: AzureADMyOrg (its tenant) or AzureADMultipleOrgs.",
    ("application", "isFallbackPublicClient"): "Whether public client flows (device code) are allowed.",
    ("application", "identifierUris"): "The URIs that name the API the app exposes.",
    ("application", "web"): "Redirect URIs of web apps.",
    ("application", "spa"): "Redirect URIs of single-page apps.",
    ("application", "publicClient"): "Redirect URIs of mobile and desktop apps.",
    ("application", "api"): "The delegated permissions the app's API exposes.",
    ("application", "requiredResourceAccess"): "The permissions the app asks for, per API.",
    ("application", "passwordCredentials"): "Its client secrets: name, hint and validity, never the secret.",
    ("application", "keyCredentials"): "Certificate credentials (always empty here).",
    ("servicePrincipal", "id"): "The service principal's object id.",
    ("servicePrincipal", "appId"): "The application id it stands for in this tenant.",
    ("servicePrincipal", "displayName"): "Its name.",
    ("servicePrincipal", "appDisplayName"): "The application's name.",
    ("servicePrincipal", "appOwnerOrganizationId"): "The tenant that registered the application.",
    ("servicePrincipal", "accountEnabled"): "Whether the app may sign in here.",
    ("servicePrincipal", "servicePrincipalType"): "Application.",
    ("servicePrincipal", "servicePrincipalNames"): "Its names: the app id and identifier URIs.",
    ("servicePrincipal", "oauth2PermissionScopes"): "The delegated permissions its API exposes.",
    ("servicePrincipal", "appRoles"): "The application permissions its API exposes.",
    ("oAuth2PermissionGrant", "id"): "The grant's id.",
    ("oAuth2PermissionGrant", "clientId"): "Object id of the client app's service principal.",
    ("oAuth2PermissionGrant", "consentType"): "AllPrincipals (for everyone, by an administrator) or Principal "
    "(one user).",
    ("oAuth2PermissionGrant", "principalId"): "The user a Principal grant is for.",
    ("oAuth2PermissionGrant", "resourceId"): "Object id of the API's service principal.",
    ("oAuth2PermissionGrant", "scope"): "The delegated permissions granted, space-separated.",
    ("appRoleAssignment", "id"): "The assignment's id.",
    ("appRoleAssignment", "createdDateTime"): "When it was granted.",
    ("appRoleAssignment", "principalId"): "Object id of the service principal holding it.",
    ("appRoleAssignment", "principalType"): "ServicePrincipal.",
    ("appRoleAssignment", "principalDisplayName"): "The name of the service principal holding it.",
    ("appRoleAssignment", "resourceId"): "Object id of the API's service principal.",
    ("appRoleAssignment", "resourceDisplayName"): "The API's name.",
    ("appRoleAssignment", "appRoleId"): "Id of the application permission granted.",
    ("passwordCredential", "customKeyIdentifier"): "Not used for secrets (null).",
    ("passwordCredential", "displayName"): "The secret's name.",
    ("passwordCredential", "endDateTime"): "When the secret expires.",
    ("passwordCredential", "hint"): "The secret's first characters.",
    ("passwordCredential", "keyId"): "The secret's id.",
    ("passwordCredential", "secretText"): "The secret itself: only in the answer that adds it.",
    ("passwordCredential", "startDateTime"): "When the secret was added.",
    ("subscription", "id"): "The subscription's id.",
    ("subscription", "resource"): "What it watches, e.g. /communications/presences?$filter=id in ('…').",
    ("subscription", "applicationId"): "The app that created it.",
    ("subscription", "changeType"): "updated: the presence changes it notifies.",
    ("subscription", "clientState"): "The secret sent back with each notification.",
    ("subscription", "notificationUrl"): "Where notifications are posted.",
    ("subscription", "notificationQueryOptions"): "Not supported for presence (null).",
    ("subscription", "lifecycleNotificationUrl"): "Where reauthorization and removal notices are posted.",
    ("subscription", "expirationDateTime"): "When it ends unless renewed.",
    ("subscription", "creatorId"): "The user (delegated) or app that created it.",
    ("subscription", "includeResourceData"): "Whether notifications carry the presence, encrypted.",
    ("subscription", "latestSupportedTlsVersion"): "The newest TLS version the notification URL supports.",
    ("subscription", "encryptionCertificate"): "The certificate the resource data is encrypted for.",
    ("subscription", "encryptionCertificateId"): "Its id, sent back with each notification.",
    ("subscription", "notificationUrlAppId"): "Not supported for presence (null).",
}


@dataclass(frozen=True, slots=True)
class Property:
    resource: str
    name: str
    description: str


def _item_type(body: type) -> type:
    """The entity type of a response: the items of a collection (``{"value": [...]}``), else itself."""
    fields = [f for f in msgspec.structs.fields(body) if not f.encode_name.startswith("@")]
    if len(fields) == 1 and fields[0].encode_name == "value" and typing.get_origin(fields[0].type) is list:
        (item,) = typing.get_args(fields[0].type)
        if isinstance(item, type):
            return item
    return body


def resource_properties(body: type) -> tuple[Property, ...]:
    """The properties of the resource a response type carries, by their wire names."""
    item = _item_type(body)
    name = _RESOURCES.get(item.__name__) or item.__name__.removesuffix("Body").removesuffix("Entity")
    resource = name[:1].lower() + name[1:]
    return tuple(
        Property(resource, f.encode_name, _DESCRIPTIONS.get((resource, f.encode_name), ""))
        for f in msgspec.structs.fields(item)
        if not f.encode_name.startswith("@")
    )

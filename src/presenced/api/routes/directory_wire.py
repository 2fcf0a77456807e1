"""The Graph JSON shapes of the directory management API (applications, service principals, consent, users).

Input structs forbid unknown fields and name the field of any problem; GUIDs
are decoded as ``uuid.UUID`` so a malformed one is a 400 at its path.
Output structs are camelCase, with ``@odata.context`` on single entities and
collections only.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from presenced.api.wire import graph_datetime
from presenced.auth.permissions import GRAPH_APP_ID
from presenced.services.entities import Account, Application, AppRoleAssignment, ClientSecret, PermissionGrant
from presenced.services.entities import ServicePrincipal as ServicePrincipalRecord
from presenced.services.identity import Resource

#: The tenant that owns Microsoft's first-party applications (Graph's ``appOwnerOrganizationId``).
MICROSOFT_SERVICES_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"


def _rename(name: str) -> str:
    if name == "odata_context":
        return "@odata.context"
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


Text = Annotated[str, Meta(max_length=256)]
LongText = Annotated[str, Meta(max_length=4000)]
Uris = Annotated[list[Annotated[str, Meta(max_length=256)]], Meta(max_length=256)]

# --- input ------------------------------------------------------------------------------------------


class RedirectUrisInput(Struct, kw_only=True, forbid_unknown_fields=True):
    redirectUris: Uris | UnsetType = UNSET


class ResourceAccessInput(Struct, kw_only=True, forbid_unknown_fields=True):
    id: uuid.UUID
    type: str


class RequiredResourceAccessInput(Struct, kw_only=True, forbid_unknown_fields=True):
    resourceAppId: uuid.UUID
    resourceAccess: Annotated[list[ResourceAccessInput], Meta(max_length=400)]


class PermissionScopeInput(Struct, kw_only=True, forbid_unknown_fields=True):
    id: uuid.UUID
    value: Annotated[str, Meta(min_length=1, max_length=120, pattern=r"^[!#-\[\]-~]+$")]
    type: str = "User"
    adminConsentDisplayName: Text
    adminConsentDescription: LongText
    userConsentDisplayName: Text | None = None
    userConsentDescription: LongText | None = None
    #: A disabled scope is not exposed (Graph's way to retire one before removing it).
    isEnabled: bool = True


class ApiInput(Struct, kw_only=True, forbid_unknown_fields=True):
    oauth2PermissionScopes: Annotated[list[PermissionScopeInput], Meta(max_length=100)] | UnsetType = UNSET


class ApplicationInput(Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /applications`` (``displayName`` required) and ``PATCH /applications/{id}`` (all optional)."""

    displayName: Text | UnsetType = UNSET
    signInAudience: str | UnsetType = UNSET
    isFallbackPublicClient: bool | UnsetType | None = UNSET
    web: RedirectUrisInput | UnsetType = UNSET
    spa: RedirectUrisInput | UnsetType = UNSET
    publicClient: RedirectUrisInput | UnsetType = UNSET
    requiredResourceAccess: Annotated[list[RequiredResourceAccessInput], Meta(max_length=50)] | UnsetType = UNSET
    identifierUris: Uris | UnsetType = UNSET
    api: ApiInput | UnsetType = UNSET


class PasswordCredentialInput(Struct, kw_only=True, forbid_unknown_fields=True):
    displayName: Text | None = None
    endDateTime: str | None = None
    #: Accepted for compatibility; a secret always starts when it is added.
    startDateTime: str | None = None


class AddPasswordInput(Struct, kw_only=True, forbid_unknown_fields=True):
    passwordCredential: PasswordCredentialInput | None = None


class RemovePasswordInput(Struct, kw_only=True, forbid_unknown_fields=True):
    keyId: uuid.UUID


class ServicePrincipalInput(Struct, kw_only=True, forbid_unknown_fields=True):
    appId: uuid.UUID


class GrantInput(Struct, kw_only=True, forbid_unknown_fields=True):
    clientId: uuid.UUID
    consentType: str
    principalId: uuid.UUID | None = None
    resourceId: uuid.UUID
    scope: Annotated[str, Meta(max_length=4000)]


class GrantPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    scope: Annotated[str, Meta(max_length=4000)]


class AssignmentInput(Struct, kw_only=True, forbid_unknown_fields=True):
    principalId: uuid.UUID
    resourceId: uuid.UUID
    appRoleId: uuid.UUID


class PasswordProfileInput(Struct, kw_only=True, forbid_unknown_fields=True):
    password: Annotated[str, Meta(max_length=256)]
    #: Accepted for compatibility; presenced has no forced password change.
    forceChangePasswordNextSignIn: bool = False
    forceChangePasswordNextSignInWithMfa: bool = False


class UserInput(Struct, kw_only=True, forbid_unknown_fields=True):
    accountEnabled: bool
    displayName: Text
    userPrincipalName: Annotated[str, Meta(max_length=113)]
    passwordProfile: PasswordProfileInput
    mailNickname: Annotated[str, Meta(max_length=64)] | None = None
    givenName: Annotated[str, Meta(max_length=64)] | None = None
    surname: Annotated[str, Meta(max_length=64)] | None = None
    mail: Annotated[str, Meta(max_length=320)] | None = None


# --- output -----------------------------------------------------------------------------------------


class RedirectUris(Struct, kw_only=True, rename=_rename):
    redirect_uris: list[str]


class ResourceAccess(Struct, kw_only=True, rename=_rename):
    id: str
    type: str


class RequiredResourceAccess(Struct, kw_only=True, rename=_rename):
    resource_app_id: str
    resource_access: list[ResourceAccess]


class PermissionScope(Struct, kw_only=True, rename=_rename):
    id: str
    value: str
    type: str
    admin_consent_display_name: str
    admin_consent_description: str
    user_consent_display_name: str | None
    user_consent_description: str | None
    is_enabled: bool = True


class AppRole(Struct, kw_only=True, rename=_rename):
    id: str
    value: str
    display_name: str
    description: str
    allowed_member_types: list[str]
    is_enabled: bool = True


class ApiApplication(Struct, kw_only=True, rename=_rename):
    oauth2_permission_scopes: list[PermissionScope]


class PasswordCredential(Struct, kw_only=True, rename=_rename):
    odata_context: str | UnsetType = UNSET
    custom_key_identifier: None = None
    display_name: str | None
    end_date_time: str
    hint: str
    key_id: str
    #: The secret itself: only in the answer to ``addPassword``, else null.
    secret_text: str | None = None
    start_date_time: str


class ApplicationBody(Struct, kw_only=True, rename=_rename):
    odata_context: str | UnsetType = UNSET
    id: str
    app_id: str
    display_name: str
    created_date_time: str
    sign_in_audience: str
    is_fallback_public_client: bool
    identifier_uris: list[str]
    web: RedirectUris
    spa: RedirectUris
    public_client: RedirectUris
    api: ApiApplication
    required_resource_access: list[RequiredResourceAccess]
    password_credentials: list[PasswordCredential]
    key_credentials: list[str]


class ApplicationCollection(Struct, kw_only=True, rename=_rename):
    odata_context: str
    value: list[ApplicationBody]


class ServicePrincipalBody(Struct, kw_only=True, rename=_rename):
    odata_context: str | UnsetType = UNSET
    id: str
    app_id: str
    display_name: str
    app_display_name: str
    app_owner_organization_id: str | None
    account_enabled: bool = True
    service_principal_type: str = "Application"
    service_principal_names: list[str]
    oauth2_permission_scopes: list[PermissionScope]
    app_roles: list[AppRole]


class ServicePrincipalCollection(Struct, kw_only=True, rename=_rename):
    odata_context: str
    value: list[ServicePrincipalBody]


class GrantBody(Struct, kw_only=True, rename=_rename):
    odata_context: str | UnsetType = UNSET
    id: str
    client_id: str
    consent_type: str
    principal_id: str | None
    resource_id: str
    scope: str


class GrantCollection(Struct, kw_only=True, rename=_rename):
    odata_context: str
    value: list[GrantBody]


class AssignmentBody(Struct, kw_only=True, rename=_rename):
    odata_context: str | UnsetType = UNSET
    id: str
    created_date_time: str
    principal_id: str
    principal_type: str = "ServicePrincipal"
    principal_display_name: str
    resource_id: str
    resource_display_name: str
    app_role_id: str


class AssignmentCollection(Struct, kw_only=True, rename=_rename):
    odata_context: str
    value: list[AssignmentBody]


class UserBody(Struct, kw_only=True, rename=_rename):
    odata_context: str | UnsetType = UNSET
    id: str
    display_name: str
    given_name: str | None
    surname: str | None
    mail: str | None
    user_principal_name: str


class UserCollection(Struct, kw_only=True, rename=_rename):
    odata_context: str
    value: list[UserBody]


# --- rendering --------------------------------------------------------------------------------------


def password_credential(secret: ClientSecret, text: str | None = None) -> PasswordCredential:
    return PasswordCredential(
        display_name=secret.display_name,
        end_date_time=graph_datetime(secret.end),
        hint=secret.hint,
        key_id=secret.key_id,
        secret_text=text,
        start_date_time=graph_datetime(secret.start),
    )


def application(app: Application) -> ApplicationBody:
    by_resource: dict[str, list[ResourceAccess]] = {}
    for access in app.required_resource_access:
        by_resource.setdefault(access.resource_app_id, []).append(
            ResourceAccess(id=access.permission_id, type=access.type)
        )
    return ApplicationBody(
        id=app.id,
        app_id=app.app_id,
        display_name=app.display_name,
        created_date_time=graph_datetime(app.created),
        sign_in_audience=app.sign_in_audience,
        is_fallback_public_client=app.is_fallback_public_client,
        identifier_uris=list(app.identifier_uris),
        web=RedirectUris(redirect_uris=list(app.web_redirect_uris)),
        spa=RedirectUris(redirect_uris=list(app.spa_redirect_uris)),
        public_client=RedirectUris(redirect_uris=list(app.public_client_redirect_uris)),
        api=ApiApplication(
            oauth2_permission_scopes=[
                PermissionScope(
                    id=s.id,
                    value=s.value,
                    type=s.type,
                    admin_consent_display_name=s.admin_consent_display_name,
                    admin_consent_description=s.admin_consent_description,
                    user_consent_display_name=s.user_consent_display_name,
                    user_consent_description=s.user_consent_description,
                )
                for s in app.api_scopes
            ]
        ),
        required_resource_access=[
            RequiredResourceAccess(resource_app_id=resource, resource_access=accesses)
            for resource, accesses in by_resource.items()
        ],
        password_credentials=[password_credential(s) for s in app.secrets],
        key_credentials=[],
    )


def service_principal(sp: ServicePrincipalRecord, resource: Resource | None) -> ServicePrincipalBody:
    """``resource``: the API the principal's application exposes (None if its registration is gone)."""
    scopes = [] if resource is None else list(resource.scopes.values())
    roles = [] if resource is None else list(resource.roles.values())
    owner = MICROSOFT_SERVICES_TENANT if sp.app_id == GRAPH_APP_ID else sp.app_owner_tenant_id
    return ServicePrincipalBody(
        id=sp.id,
        app_id=sp.app_id,
        display_name=sp.display_name,
        app_display_name=sp.display_name,
        app_owner_organization_id=owner,
        service_principal_names=list(dict.fromkeys(resource.identifiers if resource else (sp.app_id,))),
        oauth2_permission_scopes=[
            PermissionScope(
                id=p.id,
                value=p.value,
                type="Admin" if p.admin_consent_required else "User",
                admin_consent_display_name=p.display_name,
                admin_consent_description=p.description,
                user_consent_display_name=p.user_display_name,
                user_consent_description=p.user_description,
            )
            for p in scopes
        ],
        app_roles=[
            AppRole(
                id=p.id,
                value=p.value,
                display_name=p.display_name,
                description=p.description,
                allowed_member_types=["Application"],
            )
            for p in roles
        ],
    )


def grant(g: PermissionGrant) -> GrantBody:
    return GrantBody(
        id=g.id,
        client_id=g.client_id,
        consent_type=g.consent_type,
        principal_id=g.principal_id,
        resource_id=g.resource_id,
        scope=" ".join(g.scopes),
    )


def assignment(a: AppRoleAssignment, principal_name: str, resource_name: str) -> AssignmentBody:
    return AssignmentBody(
        id=a.id,
        created_date_time=graph_datetime(a.created),
        principal_id=a.principal_id,
        principal_display_name=principal_name,
        resource_id=a.resource_id,
        resource_display_name=resource_name,
        app_role_id=a.app_role_id,
    )


def user(account: Account) -> UserBody:
    u = account.user
    return UserBody(
        id=u.id,
        display_name=u.display_name,
        given_name=account.given_name,
        surname=account.surname,
        mail=account.mail,
        user_principal_name=u.user_principal_name,
    )

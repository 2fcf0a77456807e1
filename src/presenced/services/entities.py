"""The records the services and the stores exchange: the directory (tenants, users, app
registrations, service principals, grants), sign-in state, presence as stored, and change
notifications. Plain values; what the services need from storage is in ``services.ports``."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime

from presenced.domain.model import MailboxSettings, PresenceFacts, VisiblePresence
from presenced.domain.sequence import Change, PresenceState


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class User:
    id: str
    tenant_id: str
    user_principal_name: str
    display_name: str


@dataclass(frozen=True, slots=True)
class UserRef:
    """A user named by object id, not looked up: whoever stores a write to them finds out whether they exist."""

    id: str
    tenant_id: str


@dataclass(frozen=True, slots=True)
class UserPresence:
    """A user's stored presence state.

    ``user_principal_name`` is known when the user was looked up by UPN or in a
    batch, else None.
    """

    user_id: str
    user_principal_name: str | None
    state: PresenceState


@dataclass(frozen=True, slots=True)
class StoredPresence:
    """A user's presence as stored: the facts, the materialised state, and the mailbox settings.

    ``mailbox.automatic_replies`` and ``facts.automatic_replies`` are the same stored
    columns; when they differ in what a decision returns, the facts' are stored.
    """

    facts: PresenceFacts
    state: PresenceState
    mailbox: MailboxSettings


@dataclass(frozen=True, slots=True)
class Decision:
    """What one write decided: the user's presence to store, and the changes of the visible presence to log."""

    stored: StoredPresence
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the sign-in side sees it."""

    user: User
    password_hash: str | None
    is_admin: bool
    #: The profile Graph lists; None where it is not set.
    given_name: str | None = None
    surname: str | None = None
    mail: str | None = None


@dataclass(frozen=True, slots=True)
class Photo:
    """A user's profile photo: a JPEG or PNG, its size in pixels, and an etag that changes with it."""

    content_type: str
    width: int
    height: int
    data: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class ApiScope:
    """A delegated permission an app registration exposes (``api.oauth2PermissionScopes``)."""

    id: str
    value: str
    #: "User" (users may consent) or "Admin".
    type: str
    admin_consent_display_name: str
    admin_consent_description: str
    user_consent_display_name: str
    user_consent_description: str


@dataclass(frozen=True, slots=True)
class RequiredAccess:
    """One entry of ``requiredResourceAccess``: a permission of a resource that the app asks for."""

    resource_app_id: str
    permission_id: str
    #: "Scope" (delegated) or "Role" (application).
    type: str


@dataclass(frozen=True, slots=True)
class ClientSecret:
    key_id: str
    display_name: str | None
    hint: str
    secret_hash: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Application:
    id: str
    app_id: str
    tenant_id: str
    display_name: str
    sign_in_audience: str
    is_fallback_public_client: bool
    web_redirect_uris: tuple[str, ...]
    spa_redirect_uris: tuple[str, ...]
    public_client_redirect_uris: tuple[str, ...]
    required_resource_access: tuple[RequiredAccess, ...]
    identifier_uris: tuple[str, ...]
    api_scopes: tuple[ApiScope, ...]
    created: datetime
    secrets: tuple[ClientSecret, ...] = ()


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    id: str
    tenant_id: str
    app_id: str
    display_name: str
    app_owner_tenant_id: str | None


@dataclass(frozen=True, slots=True)
class PermissionGrant:
    """An ``oAuth2PermissionGrant``: delegated permissions a client may use on a resource."""

    id: str
    tenant_id: str
    client_id: str
    #: "AllPrincipals" (admin consent) or "Principal" (one user).
    consent_type: str
    principal_id: str | None
    resource_id: str
    scopes: tuple[str, ...]
    created: datetime
    #: The user whose consent it records last (an administrator, or the user for their own grant);
    #: None when no signed-in person gave it (the CLI, the demo data, an app with directory permissions).
    granted_by: str | None = None
    #: When that consent was given (a grant widened later keeps ``created``); None if not recorded.
    granted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AppRoleAssignment:
    id: str
    tenant_id: str
    principal_id: str
    resource_id: str
    app_role_id: str
    created: datetime
    #: The administrator who assigned it; None when no signed-in person did (the CLI, the demo data, an app).
    granted_by: str | None = None
    granted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_hash: str
    tenant_id: str
    client_app_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: datetime
    expires: datetime
    redeemed: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: str
    family_id: str
    tenant_id: str
    client_app_id: str
    user_id: str
    scopes: tuple[str, ...]
    public_client: bool
    auth_time: datetime
    expires: datetime
    used: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_code_hash: str
    user_code: str
    tenant_ref: str
    client_app_id: str
    scopes: tuple[str, ...]
    #: pending, approved, declined or redeemed.
    status: str
    interval: int
    expires: datetime
    last_poll: datetime | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    auth_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    tenant_id: str
    app_id: str
    #: The signed-in user of a delegated subscription; None for an app-only one (or once the user is gone).
    creator_id: str | None
    resource: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: datetime
    include_resource_data: bool
    encryption_certificate: str | None
    encryption_certificate_id: str | None
    latest_tls: str
    created: datetime
    #: The users whose presence it watches.
    user_ids: tuple[str, ...]
    #: Made with a delegated token (a user's), not an app-only one.
    delegated: bool = False


@dataclass(frozen=True, slots=True)
class PendingNotification:
    """A notification a worker took for delivery (its lease runs until it is recorded)."""

    id: str
    subscription: Subscription
    #: Where it goes: the notification URL, or the lifecycle URL for a lifecycle notification.
    url: str
    attempts: int
    created: datetime
    #: A change notification's user, sequence number and visible presence after the change.
    user_id: str | None = None
    sequence: int | None = None
    visible: VisiblePresence | None = None
    #: reauthorizationRequired or subscriptionRemoved, for a lifecycle notification.
    lifecycle_event: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    notification_id: str
    #: The HTTP status, or None when no answer came.
    status: int | None
    latency_ms: int
    error: str | None
    #: delivered, retry (at ``next_attempt``) or failed (given up).
    outcome: str
    next_attempt: datetime | None = None


@dataclass(frozen=True, slots=True)
class LoggedChange:
    """One entry of the change log: a user's visible presence after a change."""

    id: int
    tenant_id: str
    user_id: str
    state: PresenceState
    #: What made the change: a write (its action, e.g. ``setPresence``) or time (``timer``).
    cause: str = ""


@dataclass(frozen=True, slots=True)
class UserClause:
    """One test of a users query: ``startswith`` (a prefix, any case), ``eq``/``in`` (one of ``values``, any
    case), or, on ``accountEnabled``, ``eq`` with ``true``/``false``."""

    prop: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserQuery:
    """Which of a tenant's users to list, in which order, from where (docs/graph-api.md, "Users")."""

    clauses: tuple[UserClause, ...] = ()
    #: The clauses are joined by ``or`` (else ``and``).
    any_clause: bool = False
    #: ``$search`` terms (property, word prefix); a user matches one of them, or all with ``all_terms``.
    terms: tuple[tuple[str, str], ...] = ()
    all_terms: bool = False
    #: Ordered by display name (else by id), descending with ``descending``.
    by_name: bool = False
    descending: bool = False
    #: The sort key of the last user of the previous page: the page starts after it.
    after: tuple[str, ...] = ()
    limit: int = 100


@dataclass(frozen=True, slots=True)
class UserPage:
    accounts: tuple[Account, ...]
    #: Where the next page starts; None on the last page.
    next_after: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class FaultRule:
    """A request rule (it has a ``path``) or a notification rule (it has an ``action``)."""

    id: str
    #: A glob on the path below the version (``/users/*/presence``), matched without regard to case.
    path: str | None
    method: str | None = None
    app_id: str | None = None
    user_id: str | None = None
    #: None: the request is only delayed, then served.
    status: int | None = None
    retry_after: int | None = None
    latency_ms: int | None = None
    #: The next ``count`` matching requests (what is left of them), or each with ``probability``.
    count: int | None = None
    probability: float | None = None
    seed: int | None = None
    fired: int = 0
    #: A notification rule's: delay, duplicate, reorder or drop the deliveries of a subscription or to a URL.
    action: str | None = None
    subscription_id: str | None = None
    notification_url: str | None = None
    delay_ms: int | None = None
    window_ms: int | None = None

    def covers(self, notification: PendingNotification) -> bool:
        """Whether this notification rule applies to the notification (its subscription's, or sent to its URL)."""
        if self.subscription_id is not None and self.subscription_id != notification.subscription.id.lower():
            return False
        return self.notification_url is None or self.notification_url == notification.url

    def matches(self, method: str, path: str, app_id: str | None, user_ids: frozenset[str]) -> bool:
        if self.path is None:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.app_id is not None and self.app_id != (app_id or "").lower():
            return False
        if self.user_id is not None and self.user_id not in user_ids:
            return False
        return fnmatch.fnmatchcase(path.lower(), self.path.lower())


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A token-signing key as the database keeps it (docs/deployment.md, "Signing keys"): its place in the
    order of keys (1 the oldest), its ``kid``, and its private PEM encrypted (``oauth.keys.KeySealer``)."""

    position: int
    kid: str
    sealed: bytes

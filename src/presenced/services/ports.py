"""What the services need from storage, as protocols. The store implements them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from presenced.domain.model import MailboxSettings
from presenced.domain.sequence import Change, PresenceState
from presenced.services.entities import (
    Account,
    Application,
    AppRoleAssignment,
    AuthorizationCode,
    ClientSecret,
    Decision,
    DeliveryResult,
    DeviceCode,
    FaultRule,
    LoggedChange,
    PendingNotification,
    PermissionGrant,
    Photo,
    RefreshToken,
    SealedKey,
    ServicePrincipal,
    StoredPresence,
    Subscription,
    Tenant,
    User,
    UserPage,
    UserPresence,
    UserQuery,
    UserRef,
)


class PresenceReader(Protocol):
    async def load(self, tenant_id: str, refs: Sequence[str]) -> list[UserPresence]:
        """The stored presence of the tenant's users named by object id or UPN, in one query.

        Refs that match no user of the tenant are left out; order is not kept.
        """
        ...


class UserFinder(Protocol):
    async def find_user(self, tenant_id: str, ref: str) -> User | None: ...


class Directory(Protocol):
    async def tenant_exists(self, tenant_id: str) -> bool: ...

    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        """The tenant's user with this object id or UPN (case-insensitive)."""
        ...

    async def mailbox_settings(self, user_id: str) -> MailboxSettings:
        """The user's mailbox settings (defaults if none were ever set)."""
        ...


class Transaction(Protocol):
    """A directory transaction. Presence facts are written through ``PresenceWriter`` only."""

    async def find_user(self, tenant_id: str, ref: str) -> User | None:
        """As ``Directory.find_user``, inside this transaction."""
        ...

    async def put_tenant(self, tenant: Tenant, now: datetime) -> None:
        """Create the tenant, or rename it if it exists."""
        ...

    async def put_user(self, user: User, now: datetime) -> None:
        """Create the user with an Offline presence, or update its names if it exists."""
        ...


#: Decides a write from the user's stored presence and the time read after the user was locked.
#: It may raise (a ``PresencedError`` for a refused write): then nothing of that write is stored.
Decide = Callable[[StoredPresence, datetime], Decision]
#: Stores what fell due of a state's upcoming changes: the new state and the changes to log.
Advance = Callable[[PresenceState, datetime], tuple[PresenceState, tuple[Change, ...]]]


class PresenceWriter(Protocol):
    """Stores decided writes: the facts, the state, the change log and the notification outbox, together."""

    async def write(self, user: User | UserRef, decide: Decide) -> Decision:
        """Lock the user, read the clock, apply ``decide`` to the stored presence, store what it returns.

        Returns once the commit is durable. The transaction may be shared with other
        writes (group commit); writes to one user are applied in the order they were
        submitted, each to the presence the previous one left. What ``decide`` raises
        is raised here and stores nothing of this write; ``UserNotFound`` when the user
        does not exist in ``user.tenant_id``.
        """
        ...

    async def due(self, limit: int) -> list[str]:
        """Up to ``limit`` users whose next transition is due now, in user-id order."""
        ...

    async def sweep(self, advance: Advance, user_ids: Sequence[str], wait: bool) -> tuple[int, int]:
        """Apply ``advance`` to those of the users whose next transition is still due; (users taken, changes logged).

        One transaction. Only the state is read: what falls due was decided when the facts were
        written. Users another transaction holds are skipped unless ``wait``.
        """
        ...


class ManualClock(Protocol):
    """The emulator's clock: it moves only when told."""

    async def now(self) -> datetime: ...

    async def move(self, decide: Callable[[datetime], datetime]) -> datetime:
        """Set the time to ``decide(current time)``, atomically; the new time."""
        ...


#: Where the database's schema stands against this version's migrations: at the newest, behind (an older
#: one), ahead (a migration this version does not know: a newer presenced migrated it), or never migrated.
Migration = Literal["newest", "behind", "ahead", "none"]


class SchemaState(Protocol):
    """The database as a whole: whether it answers, and which migrations it has."""

    async def migration(self) -> Migration:
        """Read on a connection of its own; ``ServiceUnavailable`` when the database cannot be reached."""
        ...


class UnitOfWork(Protocol):
    def begin(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction that commits when the block ends normally, else rolls back."""
        ...


# ---- The identity platform ----


class IdentityStore(Protocol):
    """The directory and the sign-in state. Each method is one transaction."""

    # Tenants and users
    async def list_tenants(self) -> list[Tenant]: ...
    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...
    async def create_tenant(self, tenant: Tenant, now: datetime) -> None: ...
    async def find_account(self, tenant_id: str | None, ref: str) -> Account | None:
        """The user with this object id or UPN, in the tenant (or in any tenant when None)."""
        ...

    async def list_accounts(self, tenant_id: str) -> list[Account]: ...
    async def page_accounts(self, tenant_id: str, query: UserQuery) -> UserPage: ...
    async def count_accounts(self, tenant_id: str, query: UserQuery) -> int: ...
    async def set_profile(
        self, user_id: str, given_name: str | None, surname: str | None, mail: str | None
    ) -> None: ...

    async def photo(self, user_id: str) -> Photo | None: ...
    async def put_photo(self, user_id: str, photo: Photo, now: datetime) -> bool: ...
    async def delete_photo(self, user_id: str) -> bool: ...
    async def photo_tags(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, str]:
        """The etag of the photo of each of these users of the tenant who has one."""
        ...

    async def create_account(self, account: Account, now: datetime) -> None: ...
    async def set_password(self, user_id: str, password_hash: str | None, is_admin: bool | None = None) -> bool: ...
    async def delete_user(self, tenant_id: str, user_id: str) -> bool: ...

    # Applications and service principals
    async def save_application(self, app: Application) -> None:
        """Create the registration, or replace its settings (secrets are kept apart)."""
        ...

    async def get_application(self, tenant_id: str, object_id: str) -> Application | None: ...
    async def find_application(self, app_id: str) -> Application | None:
        """The registration with this application (client) id, in any tenant."""
        ...

    async def list_applications(self, tenant_id: str) -> list[Application]: ...
    async def delete_application(self, tenant_id: str, object_id: str) -> bool: ...
    async def add_secret(self, application_id: str, secret: ClientSecret) -> None: ...
    async def remove_secret(self, application_id: str, key_id: str) -> bool: ...
    async def ensure_service_principal(self, sp: ServicePrincipal, now: datetime) -> ServicePrincipal:
        """The tenant's service principal for ``sp.app_id``, created as ``sp`` if there is none."""
        ...

    async def find_service_principal(self, tenant_id: str, app_id: str) -> ServicePrincipal | None: ...
    async def get_service_principal(self, tenant_id: str, object_id: str) -> ServicePrincipal | None: ...
    async def list_service_principals(self, tenant_id: str) -> list[ServicePrincipal]: ...
    async def delete_service_principal(self, tenant_id: str, object_id: str) -> bool: ...

    # Consent
    async def list_grants(
        self, tenant_id: str, client_id: str | None = None, principal_id: str | None = None
    ) -> list[PermissionGrant]: ...
    async def grants_for(self, client_id: str, resource_id: str, user_id: str | None) -> list[PermissionGrant]:
        """The AllPrincipals grant and, with ``user_id``, that user's Principal grant."""
        ...

    async def save_grant(self, grant: PermissionGrant) -> None:
        """Create the grant or replace its scopes and who granted them when."""
        ...

    async def merge_grant(self, grant: PermissionGrant) -> PermissionGrant:
        """Save ``grant`` in one transaction with what is stored under its id: the stored scopes stay
        (first, in their order) and the grant's new ones follow, so consents given at once all count;
        the creation time stays, the consent's giver and time are the grant's. The grant as stored."""
        ...

    async def get_grant(self, tenant_id: str, grant_id: str) -> PermissionGrant | None: ...
    async def delete_grant(self, tenant_id: str, grant_id: str) -> bool: ...
    async def list_assignments(self, tenant_id: str, principal_id: str | None = None) -> list[AppRoleAssignment]: ...
    async def add_assignment(self, assignment: AppRoleAssignment) -> AppRoleAssignment:
        """Store it, or return the existing assignment of the same role to the same principal."""
        ...

    async def get_assignment(self, tenant_id: str, assignment_id: str) -> AppRoleAssignment | None: ...
    async def delete_assignment(self, tenant_id: str, assignment_id: str) -> bool: ...

    # Sign-in state
    async def save_code(self, code: AuthorizationCode) -> None: ...
    async def redeem_code(self, code_hash: str, now: datetime) -> AuthorizationCode | None:
        """Mark the code redeemed; the code as it was before (``redeemed`` set if it already was)."""
        ...

    async def save_refresh_token(self, token: RefreshToken) -> None: ...
    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None: ...
    async def rotate_refresh_token(self, spent_hash: str, token: RefreshToken, now: datetime) -> bool:
        """In one transaction, mark the token ``spent_hash`` used and store its successor ``token``; False (and
        nothing changed) if it was used already or is gone."""
        ...

    async def revoke_refresh_family(self, family_id: str) -> None: ...
    async def save_device_code(self, code: DeviceCode) -> None: ...
    async def find_device_code(
        self, *, device_code_hash: str | None = None, user_code: str | None = None
    ) -> DeviceCode | None: ...
    async def update_device_code(self, code: DeviceCode, expected_status: str) -> bool:
        """Replace the code's state if its status is still ``expected_status``."""
        ...

    async def create_session(self, id_hash: str, user_id: str, auth_time: datetime, expires: datetime) -> None: ...
    async def find_session(self, id_hash: str, now: datetime) -> tuple[Account, datetime, datetime] | None:
        """The signed-in account, its sign-in time and when the session expires, for a live session."""
        ...

    async def live_sessions(self, id_hashes: Collection[str], now: datetime) -> set[str]:
        """Which of these sessions are live (not signed out, not expired)."""
        ...

    async def delete_session(self, id_hash: str) -> None: ...
    async def record_failure(self, key: str, now: datetime, window: timedelta, limit: int, lock: timedelta) -> None:
        """Count a failed sign-in; at ``limit`` failures within ``window``, lock the key for ``lock``."""
        ...

    async def locked_until(self, key: str, now: datetime) -> datetime | None: ...
    async def clear_failures(self, key: str) -> None: ...
    async def purge_expired(self, now: datetime) -> None:
        """Remove sign-in state that can no longer be used."""
        ...


class SecretHasher(Protocol):
    """Hashes passwords (slow, salted) and verifies them."""

    def hash_password(self, password: str) -> str: ...
    def hash_public_password(self, password: str) -> str:
        """A password everyone may read (the demo's): checked the same way, hashed at the lowest cost,
        since slowness protects nothing there."""
        ...

    def verify_password(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password, or for None (no password), after the same work."""
        ...


# ---- Change notifications ----


class SubscriptionStore(Protocol):
    async def create_subscription(self, subscription: Subscription) -> None: ...
    async def get_subscription(self, tenant_id: str, subscription_id: str) -> Subscription | None: ...
    async def list_subscriptions(self, tenant_id: str, app_id: str, creator_id: str | None) -> list[Subscription]:
        """The subscriptions of one app (and, for a delegated caller, one user)."""
        ...

    async def find_same(self, subscription: Subscription, now: datetime) -> Subscription | None:
        """A live subscription of the same app (and user) to the same users, if there is one."""
        ...

    async def set_expiry(self, subscription_id: str, expires: datetime) -> None: ...
    async def delete_subscription(self, tenant_id: str, subscription_id: str) -> bool: ...
    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> list[PendingNotification]:
        """Pending notifications due at ``now``, oldest first, leased for ``lease`` so no other worker
        takes them meanwhile; a worker that dies leaves them to be taken again when the lease ends."""
        ...

    async def record(self, results: Sequence[DeliveryResult], now: datetime) -> None:
        """Store each attempt and its outcome."""
        ...

    async def renew_leases(self, ids: Sequence[str], until: datetime) -> None:
        """Extend the lease of these notifications (still pending, taken by this worker) to ``until``."""
        ...

    async def delete_expired_subscriptions(self, before: datetime) -> int:
        """Remove subscriptions that expired before ``before`` (with anything still undelivered)."""
        ...

    async def live_subscriptions(self, now: datetime) -> list[Subscription]:
        """Every subscription not yet expired, in every tenant."""
        ...

    async def queue_lifecycle(
        self, subscription: Subscription, event: str, now: datetime, *, on_demand: bool = False
    ) -> None:
        """Queue a lifecycle notification to the subscription's lifecycle URL (nothing if it has none);
        ``reauthorizationRequired`` once per expiry (``on_demand``: each time), ``subscriptionRemoved`` also
        ends the subscription."""
        ...


class FaultStore(Protocol):
    async def add_fault(self, rule: FaultRule) -> None: ...
    async def faults(self) -> list[FaultRule]:
        """Every rule, in the order they were added, with what is left of its count and how often it fired."""
        ...

    async def take_fault(self, rule_id: str) -> bool:
        """Take one of a count rule's requests; False when none is left."""
        ...

    async def fired(self, rule_id: str) -> bool:
        """Count a firing of the rule; False when the rule is gone (removed by another process)."""
        ...

    async def remove_faults(self, rule_id: str | None) -> int:
        """Remove one rule (None: all); how many were removed."""
        ...


class KeyRows(Protocol):
    """The signing keys kept in the database, sealed (the keys of every process that shares it)."""

    async def sealed_keys(self) -> list[SealedKey]:
        """Every stored key, oldest first."""
        ...

    async def add_keys(self, keys: Sequence[SealedKey], retire_before: int) -> bool:
        """Store ``keys`` and remove those before position ``retire_before``, in one transaction; False (and
        nothing changed) when a key already holds one of these positions (another process added it first)."""
        ...

    async def reseal_keys(self, keys: Sequence[SealedKey]) -> None:
        """Replace the sealed form of these (existing) keys, all in one transaction."""
        ...


class ThrottleCounts(Protocol):
    async def add(self, window: int, seconds: int, deltas: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """Add each (tenant, app)'s count to its counter of ``window`` (of ``seconds``); the totals after."""
        ...


class ChangeLog(Protocol):
    async def latest_change_id(self) -> int: ...
    async def changes_after(self, after_id: int, limit: int) -> list[LoggedChange]:
        """Entries with an id above ``after_id``, in id order."""
        ...

    async def changes_since(
        self, tenant_id: str, user_ids: Sequence[str], sequence: int, limit: int
    ) -> list[LoggedChange]:
        """The users' entries with a sequence number above ``sequence``, in id order."""
        ...

    async def history(
        self, tenant_id: str, user_id: str, start: datetime | None, end: datetime | None, after_id: int, limit: int
    ) -> list[LoggedChange]:
        """One user's entries made in [start, end) with an id above ``after_id``, in id order."""
        ...

    async def changes_before(
        self, tenant_id: str, user_id: str, before_id: int | None, limit: int
    ) -> list[LoggedChange]:
        """One user's entries with an id below ``before_id`` (None: all), newest first."""
        ...

    async def latest_changes(self, tenant_id: str, user_ids: Sequence[str], per_user: int) -> list[LoggedChange]:
        """Each of these users' ``per_user`` newest entries (fewer if they have fewer), newest first, in one query."""
        ...

    async def purge_changes(self, before: datetime) -> int:
        """Delete the entries made before ``before``; how many."""
        ...


@dataclass(frozen=True, slots=True)
class Backlogs:
    """What is waiting, measured at once for a metrics scrape (``Measures``)."""

    #: Notifications in the outbox not yet delivered nor given up, and when the oldest was written.
    outbox_pending: int
    outbox_oldest: datetime | None
    #: The change log's newest entry id (0 when empty).
    latest_change_id: int
    #: The earliest next transition of any user's presence (due when not after now); None when none is set.
    next_transition: datetime | None
    #: The database pool's connections in use and idle; None when its pool does not say.
    pool_checked_out: int | None = None
    pool_idle: int | None = None


class Measures(Protocol):
    async def backlogs(self) -> Backlogs:
        """The backlogs, with one cheap query for each."""
        ...

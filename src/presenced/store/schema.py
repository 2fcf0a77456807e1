"""The tables. Instants are stored as microseconds since the Unix epoch (UTC).

Tables keyed by a GUID are ``WITHOUT ROWID`` on SQLite, so a lookup by key is
one B-tree search instead of an index search plus a table search.

Integers compare and index the same on SQLite and PostgreSQL and cost nothing to
convert; the repositories turn them into aware datetimes at the edge.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

GUID = String(36)
# A BIGINT that is also SQLite's rowid alias when it is the primary key.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("display_name", String(256), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("user_principal_name", String(320), nullable=False),
    # The UPN folded to lower case: UPNs match case-insensitively.
    Column("upn_key", String(320), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # argon2id; NULL: the user cannot sign in with a password.
    Column("password_hash", Text),
    # Holds the tenant's administrator role (admin consent, the directory API).
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    # The profile Graph lists (NULL: not set, as Graph answers it).
    Column("given_name", String(64)),
    Column("surname", String(64)),
    Column("mail", String(320)),
    UniqueConstraint("tenant_id", "upn_key"),
    sqlite_with_rowid=False,
)

#: Requests each application made in each tenant per throttling window, added up by every process
#: (``services.throttle``); windows before the last are deleted as new ones begin.
throttle_counts = Table(
    "throttle_counts",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("app_id", String(64), primary_key=True),
    Column("window", BigInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

#: The emulator's fault rules (``services.faults``): what each rule says, what is left of its count (NULL
#: for a rule of probability) and how often it fired.
emulator_faults = Table(
    "emulator_faults",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("rule", Text, nullable=False),
    Column("remaining", BigInteger),
    Column("fired", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

#: The database is an emulator's (``serve --emulator`` or ``--clock manual``): fault rules may be set and
#: every process applies them. One row (id 1) when it is, none when it is not.
emulator_mode = Table(
    "emulator_mode",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("since_us", BigInteger, nullable=False),
)

#: The token-signing keys when they are kept in the database (docs/deployment.md, "Signing keys"): the newest
#: three, ``position`` rising with each new key, the private PEM sealed with AES-256-GCM under a key derived
#: from PRESENCED_KEYS_SECRET (the ``kid`` as associated data). Empty while the keys are kept in a folder.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("kid", String(64), nullable=False, unique=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

#: The directory's version: one row (id 1), raised in the same transaction as every change to tenants, users,
#: app registrations and their secrets, service principals, grants and app role assignments. Every process
#: keeps what token requests read of the directory (``store.directory_cache``) and drops it when it sees
#: the version move. A database emptied by hand has no row: that reads as version 0.
identity_version = Table(
    "identity_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

#: A user's profile photo (``/users/{id}/photo``): the bytes as uploaded, checked to be a JPEG or PNG.
user_photos = Table(
    "user_photos",
    metadata,
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("content_type", String(32), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("etag", String(64), nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# One row per user: the facts that are one-per-user, and the materialised state.
presences = Table(
    "presences",
    metadata,
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", GUID, nullable=False),
    # Facts.
    Column("preferred_availability", String(32)),
    Column("preferred_activity", String(32)),
    Column("preferred_expires_us", BigInteger),
    Column("status_content", Text),
    Column("status_content_type", String(16)),
    Column("status_published_us", BigInteger),
    Column("status_expires_us", BigInteger),
    Column("status_expiry_time_zone", String(64)),
    Column("manual_location_type", String(16)),
    Column("manual_place_id", String(256)),
    Column("automatic_location_type", String(16)),
    Column("automatic_place_id", String(256)),
    # Materialised state: the visible presence (JSON), its sequence number, the next
    # instant it changes by itself (what the sweeper looks for), and every change it
    # makes by itself from then on, as decided when the facts were written (JSON,
    # presenced.store.codec; NULL in rows of versions before it was kept).
    Column("visible", Text, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("changed_us", BigInteger, nullable=False),
    Column("next_change_us", BigInteger),
    Column("upcoming", Text),
    # Raised by every write of the user's presence (facts or state): a writer that kept the row
    # decoded knows, reading this alone, whether it may use it (presenced.store.batches.Recent).
    Column("version", BigInteger, nullable=False, server_default="0"),
    Index("ix_presences_next_change_us", "next_change_us"),
    sqlite_with_rowid=False,
)

presence_sessions = Table(
    "presence_sessions",
    metadata,
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("app_id", GUID, primary_key=True),
    Column("availability", String(32), nullable=False),
    Column("activity", String(32), nullable=False),
    Column("refreshed_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

mailbox_settings = Table(
    "mailbox_settings",
    metadata,
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("time_zone", String(64)),
    Column("auto_reply_status", String(16), nullable=False, server_default="disabled"),
    Column("scheduled_start_us", BigInteger),
    Column("scheduled_start_time_zone", String(64)),
    Column("scheduled_end_us", BigInteger),
    Column("scheduled_end_time_zone", String(64)),
    Column("internal_reply_message", Text),
    Column("external_reply_message", Text),
    Column("external_audience", String(16), nullable=False, server_default="all"),
    sqlite_with_rowid=False,
)

# The emulator's manual clock (one row), shared by every process on the database.
emulator_clock = Table(
    "emulator_clock",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("now_us", BigInteger, nullable=False),
)

# Every change of a user's visible presence, exactly once, in sequence order.
presence_changes = Table(
    "presence_changes",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("tenant_id", GUID, nullable=False),
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("visible", Text, nullable=False),
    Column("cause", String(64), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    UniqueConstraint("user_id", "sequence"),
)


# ---- The identity platform: app registrations, consent, and sign-in state. ----
# Lists inside an app registration (redirect URIs, required permissions, exposed
# scopes) are JSON text: they are read and written with the registration, never queried.

applications = Table(
    "applications",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("app_id", GUID, nullable=False, unique=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("sign_in_audience", String(64), nullable=False),
    Column("is_fallback_public_client", Boolean, nullable=False),
    Column("web_redirect_uris", Text, nullable=False),
    Column("spa_redirect_uris", Text, nullable=False),
    Column("public_client_redirect_uris", Text, nullable=False),
    Column("required_resource_access", Text, nullable=False),
    Column("identifier_uris", Text, nullable=False),
    Column("api_scopes", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_applications_tenant_id", "tenant_id"),
    sqlite_with_rowid=False,
)

client_secrets = Table(
    "client_secrets",
    metadata,
    Column("key_id", GUID, primary_key=True),
    Column("application_id", GUID, ForeignKey("applications.id", ondelete="CASCADE"), nullable=False),
    Column("display_name", String(256)),
    Column("hint", String(8), nullable=False),
    # SHA-256 of the secret: secrets are 40 random characters, so a fast hash is safe.
    Column("secret_hash", String(64), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=False),
    Index("ix_client_secrets_application_id", "application_id"),
    sqlite_with_rowid=False,
)

service_principals = Table(
    "service_principals",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", GUID, nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("app_owner_tenant_id", GUID),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("tenant_id", "app_id"),
    sqlite_with_rowid=False,
)

permission_grants = Table(
    "permission_grants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("client_id", GUID, ForeignKey("service_principals.id", ondelete="CASCADE"), nullable=False),
    Column("consent_type", String(16), nullable=False),
    # NULL for AllPrincipals (admin consent for everyone).
    Column("principal_id", GUID, ForeignKey("users.id", ondelete="CASCADE")),
    Column("resource_id", GUID, ForeignKey("service_principals.id", ondelete="CASCADE"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # Who consented last and when: a user's object id (no foreign key: the record outlives the
    # user), NULL when no signed-in person did (the CLI, the demo data, an app).
    Column("granted_by", GUID),
    Column("granted_at_us", BigInteger),
    Index("ix_permission_grants_client_id_resource_id", "client_id", "resource_id"),
    sqlite_with_rowid=False,
)

app_role_assignments = Table(
    "app_role_assignments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("principal_id", GUID, ForeignKey("service_principals.id", ondelete="CASCADE"), nullable=False),
    Column("resource_id", GUID, ForeignKey("service_principals.id", ondelete="CASCADE"), nullable=False),
    Column("app_role_id", GUID, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # As for permission_grants: the administrator who assigned it, and when.
    Column("granted_by", GUID),
    Column("granted_at_us", BigInteger),
    UniqueConstraint("principal_id", "resource_id", "app_role_id"),
    sqlite_with_rowid=False,
)

# Short-lived sign-in state. Codes and tokens are stored only as SHA-256 hashes.
authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("client_app_id", GUID, nullable=False),
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("nonce", Text),
    Column("code_challenge", String(128)),
    Column("code_challenge_method", String(8)),
    Column("auth_time_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("redeemed_us", BigInteger),
    sqlite_with_rowid=False,
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    # Every token rotated from the same sign-in: a reused one revokes them all.
    Column("family_id", GUID, nullable=False),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("client_app_id", GUID, nullable=False),
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("public_client", Boolean, nullable=False),
    Column("auth_time_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("used_us", BigInteger),
    Index("ix_refresh_tokens_family_id", "family_id"),
    sqlite_with_rowid=False,
)

device_codes = Table(
    "device_codes",
    metadata,
    Column("device_code_hash", String(64), primary_key=True),
    # SHA-256 of the code a person types, like every other credential here.
    Column("user_code", String(64), nullable=False, unique=True),
    # The tenant segment the flow started on: a GUID, 'common' or 'organizations'.
    Column("tenant_ref", String(64), nullable=False),
    Column("client_app_id", GUID, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("interval_s", Integer, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("last_poll_us", BigInteger),
    Column("tenant_id", GUID),
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE")),
    Column("auth_time_us", BigInteger),
    sqlite_with_rowid=False,
)

sign_in_sessions = Table(
    "sign_in_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("auth_time_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Failed sign-ins per account and per address, for throttling.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start_us", BigInteger, nullable=False),
    Column("locked_until_us", BigInteger),
    sqlite_with_rowid=False,
)


# ---- Change notifications: subscriptions and the outbox of notifications to deliver. ----

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("tenant_id", GUID, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", GUID, nullable=False),
    # The signed-in user of a delegated subscription (NULL for an app-only one, or once the user
    # is deleted: the worker then tells the subscriber the subscription was removed).
    Column("creator_id", GUID, ForeignKey("users.id", ondelete="SET NULL")),
    Column("delegated", Boolean, nullable=False),
    # A reauthorizationRequired lifecycle notification was queued for the current expiry.
    Column("reauthorization_queued", Boolean, nullable=False, server_default=false()),
    Column("resource", Text, nullable=False),
    # SHA-256 of the sorted user ids: finds a duplicate subscription in one indexed lookup.
    Column("users_key", String(64), nullable=False),
    Column("change_type", String(32), nullable=False),
    Column("notification_url", Text, nullable=False),
    Column("lifecycle_url", Text),
    Column("client_state", String(255)),
    Column("expires_us", BigInteger, nullable=False),
    Column("include_resource_data", Boolean, nullable=False),
    Column("encryption_certificate", Text),
    Column("encryption_certificate_id", String(128)),
    Column("latest_tls", String(8), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_subscriptions_tenant_id_app_id_users_key", "tenant_id", "app_id", "users_key"),
    sqlite_with_rowid=False,
)

# Which users each subscription watches: the write path finds a change's subscribers here.
subscription_users = Table(
    "subscription_users",
    metadata,
    Column("subscription_id", GUID, ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_subscription_users_user_id", "user_id"),
    sqlite_with_rowid=False,
)

# One row per notification to deliver, written in the transaction of the change it tells of.
notifications = Table(
    "notifications",
    metadata,
    Column("id", GUID, primary_key=True),
    Column("subscription_id", GUID, ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False),
    Column("url", Text, nullable=False),
    # A change notification: the user, the change's sequence number and the visible presence it
    # led to (JSON, for rich notifications). A lifecycle notification has none of them.
    Column("user_id", GUID, ForeignKey("users.id", ondelete="CASCADE")),
    Column("sequence", BigInteger),
    Column("visible", Text),
    # reauthorizationRequired or subscriptionRemoved, for a lifecycle notification.
    Column("lifecycle_event", String(32)),
    Column("created_us", BigInteger, nullable=False),
    # When to try next; a worker taking a notification moves it ahead (its lease).
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # pending, delivered or failed (gave up).
    Column("state", String(16), nullable=False),
    Column("finished_us", BigInteger),
    Index("ix_notifications_state_next_attempt_us", "state", "next_attempt_us"),
    sqlite_with_rowid=False,
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("notification_id", GUID, ForeignKey("notifications.id", ondelete="CASCADE"), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    # The HTTP status, or NULL when no answer came (timeout, refused connection).
    Column("status", Integer),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text),
    Index("ix_delivery_attempts_notification_id", "notification_id"),
)

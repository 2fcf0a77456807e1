"""The tables. Instants are stored as microseconds since the Unix epoch (UTC).

Tables keyed by a GUID are ``WITHOUT ROWID`` on SQLite, so a lookup by key is
one B-tree search instead of an index search plus a table search.

Integers compare and index the same on SQLite and PostgreSQL and cost nothing to
convert; the repositories turn them into aware datetimes at the edge.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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
    UniqueConstraint("tenant_id", "upn_key"),
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
    # Materialised state: the visible presence (JSON), its sequence number, and
    # the next instant it changes by itself (what the sweeper looks for).
    Column("visible", Text, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("changed_us", BigInteger, nullable=False),
    Column("next_change_us", BigInteger),
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
    Index("ix_presence_changes_tenant_id_id", "tenant_id", "id"),
)

"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_principal_name", sa.String(length=320), nullable=False),
        sa.Column("upn_key", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_users_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("tenant_id", "upn_key", name=op.f("uq_users_tenant_id_upn_key")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "mailbox_settings",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("auto_reply_status", sa.String(length=16), server_default="disabled", nullable=False),
        sa.Column("scheduled_start_us", sa.BigInteger(), nullable=True),
        sa.Column("scheduled_start_time_zone", sa.String(length=64), nullable=True),
        sa.Column("scheduled_end_us", sa.BigInteger(), nullable=True),
        sa.Column("scheduled_end_time_zone", sa.String(length=64), nullable=True),
        sa.Column("internal_reply_message", sa.Text(), nullable=True),
        sa.Column("external_reply_message", sa.Text(), nullable=True),
        sa.Column("external_audience", sa.String(length=16), server_default="all", nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_mailbox_settings_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_mailbox_settings")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "emulator_clock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("now_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emulator_clock")),
    )
    op.create_table(
        "presence_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("visible", sa.Text(), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_presence_changes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presence_changes")),
        sa.UniqueConstraint("user_id", "sequence", name=op.f("uq_presence_changes_user_id_sequence")),
    )
    with op.batch_alter_table("presence_changes", schema=None) as batch_op:
        batch_op.create_index("ix_presence_changes_tenant_id_id", ["tenant_id", "id"], unique=False)

    op.create_table(
        "presence_sessions",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("availability", sa.String(length=32), nullable=False),
        sa.Column("activity", sa.String(length=32), nullable=False),
        sa.Column("refreshed_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_presence_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "app_id", name=op.f("pk_presence_sessions")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "presences",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("preferred_availability", sa.String(length=32), nullable=True),
        sa.Column("preferred_activity", sa.String(length=32), nullable=True),
        sa.Column("preferred_expires_us", sa.BigInteger(), nullable=True),
        sa.Column("status_content", sa.Text(), nullable=True),
        sa.Column("status_content_type", sa.String(length=16), nullable=True),
        sa.Column("status_published_us", sa.BigInteger(), nullable=True),
        sa.Column("status_expires_us", sa.BigInteger(), nullable=True),
        sa.Column("status_expiry_time_zone", sa.String(length=64), nullable=True),
        sa.Column("manual_location_type", sa.String(length=16), nullable=True),
        sa.Column("manual_place_id", sa.String(length=256), nullable=True),
        sa.Column("automatic_location_type", sa.String(length=16), nullable=True),
        sa.Column("automatic_place_id", sa.String(length=256), nullable=True),
        sa.Column("visible", sa.Text(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("changed_us", sa.BigInteger(), nullable=False),
        sa.Column("next_change_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_presences_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_presences")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("presences", schema=None) as batch_op:
        batch_op.create_index("ix_presences_next_change_us", ["next_change_us"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("presences", schema=None) as batch_op:
        batch_op.drop_index("ix_presences_next_change_us")

    op.drop_table("presences")
    op.drop_table("presence_sessions")
    with op.batch_alter_table("presence_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_presence_changes_tenant_id_id")

    op.drop_table("presence_changes")
    op.drop_table("emulator_clock")
    op.drop_table("mailbox_settings")
    op.drop_table("users")
    op.drop_table("tenants")

"""who granted each permission, and when

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = ("permission_grants", "app_role_assignments")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("granted_by", sa.String(length=36), nullable=True))
            batch_op.add_column(sa.Column("granted_at_us", sa.BigInteger(), nullable=True))
        # Who granted the existing rows is not known; when is: they were granted when created.
        op.execute(f"UPDATE {table} SET granted_at_us = created_us")


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("granted_at_us")
            batch_op.drop_column("granted_by")

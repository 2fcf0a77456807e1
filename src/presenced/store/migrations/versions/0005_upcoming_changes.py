"""each presence's upcoming changes, decided when its facts are written, and a row version; no change-log
index by tenant

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for the rows already there: the writer works them out from the facts when it next
    # loads the user (presenced.store.rows.stored_from_columns).
    with op.batch_alter_table("presences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upcoming", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.BigInteger(), nullable=False, server_default="0"))
    # No query reads the change log by tenant and id; every change-log write kept it up to date.
    with op.batch_alter_table("presence_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_presence_changes_tenant_id_id")


def downgrade() -> None:
    with op.batch_alter_table("presence_changes", schema=None) as batch_op:
        batch_op.create_index("ix_presence_changes_tenant_id_id", ["tenant_id", "id"], unique=False)
    with op.batch_alter_table("presences", schema=None) as batch_op:
        batch_op.drop_column("version")
        batch_op.drop_column("upcoming")

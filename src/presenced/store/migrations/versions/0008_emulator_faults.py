"""the emulator's fault rules

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emulator_faults",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=True),
        sa.Column("fired", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emulator_faults")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("emulator_faults")

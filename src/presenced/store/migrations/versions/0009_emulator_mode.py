"""the emulator's mark on a database

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emulator_mode",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("since_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emulator_mode")),
    )


def downgrade() -> None:
    op.drop_table("emulator_mode")

"""the profile Graph lists of each user (given name, surname, mail) and profile photos

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, never a copy of the table: on SQLite, batch mode's copy drops the old users table,
# and that would cascade to every row that references a user.
_COLUMNS = (("given_name", 64), ("surname", 64), ("mail", 320))


def upgrade() -> None:
    for name, length in _COLUMNS:
        op.add_column("users", sa.Column(name, sa.String(length=length), nullable=True))
    op.create_table(
        "user_photos",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_photos_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_photos")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("user_photos")
    for name, _ in reversed(_COLUMNS):
        op.drop_column("users", name)

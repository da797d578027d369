"""How far `ayeto mirror` has copied each (source, user): the `updated.timestamp` watermark.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Code-point order on PostgreSQL, as SQLite's BINARY collation gives by default.
TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "mirror_state",
        sa.Column("user_id", TEXT, nullable=False),
        sa.Column("source", TEXT, nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "source", name="pk_mirror_state"),
    )


def downgrade() -> None:
    op.drop_table("mirror_state")

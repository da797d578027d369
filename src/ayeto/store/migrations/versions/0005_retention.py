"""When retention (`AYETO_RETENTION`) last ran, so that it runs once per period however many
servers apply it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Code-point order on PostgreSQL, as SQLite's BINARY collation gives by default.
TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("job", TEXT, nullable=False),
        sa.Column("ran_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job", name="pk_job_runs"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")

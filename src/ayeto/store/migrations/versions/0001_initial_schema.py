"""Initial schema: conversations, messages and API keys, every table owner-leading.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Code-point order on PostgreSQL, as SQLite's BINARY collation gives by default.
TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", TEXT, nullable=False),
        sa.Column("digest", TEXT, nullable=False),
        sa.Column("user_id", TEXT, nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("scopes", TEXT, nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("digest", name="uq_api_keys_digest"),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])

    op.create_table(
        "conversations",
        sa.Column("owner_id", TEXT, nullable=False),
        sa.Column("id", TEXT, nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("model", TEXT, nullable=False),
        sa.Column("img_gen_model", TEXT, nullable=False),
        sa.Column("summary", TEXT, nullable=False),
        sa.Column("organization_id", TEXT, nullable=True),
        sa.Column("assistant_id", TEXT, nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", TEXT, nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("accessed_by", TEXT, nullable=True),
        sa.Column("accessed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "id", name="pk_conversations"),
    )
    for columns in (
        ["owner_id", "updated_at", "id"],
        ["owner_id", "created_at", "id"],
        ["owner_id", "model", "updated_at", "id"],
        ["owner_id", "assistant_id", "updated_at", "id"],
        ["id", "owner_id"],
    ):
        op.create_index(f"ix_conversations_{'_'.join(columns)}", "conversations", columns)

    op.create_table(
        "messages",
        sa.Column("owner_id", TEXT, nullable=False),
        sa.Column("conversation_id", TEXT, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("id", TEXT, nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("role", TEXT, nullable=False),
        sa.Column("content", TEXT, nullable=True),
        sa.Column("reasoning_content", TEXT, nullable=True),
        sa.Column("model", TEXT, nullable=True),
        sa.Column("img_gen", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id", "conversation_id"],
            ["conversations.owner_id", "conversations.id"],
            name="fk_messages_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("owner_id", "conversation_id", "position", name="pk_messages"),
    )


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("conversations")
    op.drop_table("api_keys")

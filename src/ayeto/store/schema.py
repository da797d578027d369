"""The tables, in SQLAlchemy Core. Every table and index leads with the owner.

`owner_id` is the conversation's `created.user_id`: it is the partition key (and the distribution
column on a distributed engine), so every query names it first and none reads another owner's rows.
A conversation without a creator belongs to nobody: its `owner_id` is the empty string, which no
API key can carry, and the API shows it as `created.user_id = null`.

Strings compare by code point on every backend: SQLite's default BINARY collation does, and
PostgreSQL columns use the "C" collation.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

NOBODY = ""

# Identifiers are kept as canonical lowercase UUID text, so regex filters see exactly what the API
# shows and both backends sort them alike.
TEXT: TypeEngine[str] = Text().with_variant(Text(collation="C"), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

conversations = Table(
    "conversations",
    metadata,
    Column("owner_id", TEXT, nullable=False),
    Column("id", TEXT, nullable=False),
    Column("name", TEXT, nullable=False),
    Column("model", TEXT, nullable=False),
    Column("img_gen_model", TEXT, nullable=False),
    Column("summary", TEXT, nullable=False),
    Column("organization_id", TEXT),
    Column("assistant_id", TEXT),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_by", TEXT),
    Column("updated_at", BigInteger, nullable=False),
    Column("accessed_by", TEXT),
    Column("accessed_at", BigInteger, nullable=False),
    # Its messages exactly as the API answers them: a JSON array, each message's fields in the
    # response's order, in the messages' order. Written with the `messages` rows (a conversation
    # is only ever written whole), which filters and the search index read; responses embed this.
    Column("messages_json", Text, nullable=False),
    PrimaryKeyConstraint("owner_id", "id"),
    # The default order (newest first) and the common filters, each with `id` as the tie-break.
    Index(None, "owner_id", "updated_at", "id"),
    Index(None, "owner_id", "created_at", "id"),
    Index(None, "owner_id", "model", "updated_at", "id"),
    Index(None, "owner_id", "assistant_id", "updated_at", "id"),
    # To tell "someone else's" (403) from "unknown" (404), and to replace by id on import. The
    # owner is part of it so that a lookup by id and owner never reads another owner's row.
    Index(None, "id", "owner_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("owner_id", TEXT, nullable=False),
    Column("conversation_id", TEXT, nullable=False),
    # The message's place in its conversation: timestamp order, ties in the order given.
    Column("position", Integer, nullable=False),
    Column("id", TEXT, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("role", TEXT, nullable=False),
    Column("content", TEXT),
    Column("reasoning_content", TEXT),
    Column("model", TEXT),
    # The full `ImgGenMessage` as compact JSON, embedded in responses as it is.
    Column("img_gen", Text),
    PrimaryKeyConstraint("owner_id", "conversation_id", "position"),
    ForeignKeyConstraint(
        ["owner_id", "conversation_id"],
        ["conversations.owner_id", "conversations.id"],
        ondelete="CASCADE",
    ),
)

# The message columns a trigram index narrows `regex` filters on (`prefilter`), each with its
# SQLite FTS5 table (trigram tokenizer, external content: it indexes the `messages` rows by rowid,
# kept in step by triggers); on PostgreSQL a `pg_trgm` GIN index per column. Both are created by
# migration 0003, outside this metadata (see `migrations.include_object`).
SEARCHED = {"content": "message_search_content", "reasoning_content": "message_search_reasoning"}

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", TEXT, primary_key=True),
    Column("digest", TEXT, nullable=False, unique=True),
    Column("user_id", TEXT, nullable=False),
    Column("name", TEXT, nullable=False),
    # Space-separated, as OAuth writes scopes.
    Column("scopes", TEXT, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    # `limits` notation (`20/second;600/minute`); null means the server's default.
    Column("rate_limit", TEXT),
    Index(None, "user_id"),
)

# `ayeto mirror`: per user (the owner, first as everywhere) and source URL, the highest
# `updated.timestamp` copied so far; a run goes on from there (see `ayeto.mirror`).
mirror_state = Table(
    "mirror_state",
    metadata,
    Column("user_id", TEXT, nullable=False),
    Column("source", TEXT, nullable=False),
    Column("watermark", BigInteger, nullable=False),
    PrimaryKeyConstraint("user_id", "source"),
)

# Per periodic job (`ayeto.retention`), when it last ran (ms): it runs once per period across
# every process and host that would run it.
job_runs = Table(
    "job_runs",
    metadata,
    Column("job", TEXT, nullable=False),
    Column("ran_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("job"),
)

# The web view's sign-ins: the SHA-256 digest of the session token the browser holds in its cookie
# (never the token, never the API key), the key it signed in with, and when it ends. The key is
# checked again on every request, so revoking it ends its sessions at once.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("digest", TEXT, nullable=False),
    Column("key_id", TEXT, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("digest"),
    ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
    Index(None, "key_id"),
    # Sessions past their end are removed in one range delete.
    Index(None, "expires_at"),
)

__all__ = [
    "NOBODY",
    "SEARCHED",
    "api_keys",
    "conversations",
    "job_runs",
    "messages",
    "metadata",
    "mirror_state",
    "web_sessions",
]

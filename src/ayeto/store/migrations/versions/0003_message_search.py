"""A trigram index over message content and reasoning content, for `regex` filters.

SQLite: the FTS5 table `message_search` with the trigram tokenizer, its content the `messages`
rows (by rowid, which `VACUUM` keeps: every row's rowid is kept), kept in step by triggers in the
same transaction as every insert, update and delete (a cascade from a deleted conversation too).
PostgreSQL: the `pg_trgm` extension and a GIN index per column.

An existing database's messages are indexed here, in batches, with progress on stderr when there
are many.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sys
from collections.abc import Sequence

from alembic import op

from ayeto.store import migrations

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 50_000

_SQLITE = (
    "CREATE VIRTUAL TABLE message_search USING fts5("
    "content, reasoning_content, content='messages', content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO message_search(rowid, content, reasoning_content) "
    "VALUES (new.rowid, new.content, new.reasoning_content); END",
    "CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO message_search(message_search, rowid, content, reasoning_content) "
    "VALUES ('delete', old.rowid, old.content, old.reasoning_content); END",
    "CREATE TRIGGER message_search_update AFTER UPDATE ON messages BEGIN "
    "INSERT INTO message_search(message_search, rowid, content, reasoning_content) "
    "VALUES ('delete', old.rowid, old.content, old.reasoning_content); "
    "INSERT INTO message_search(rowid, content, reasoning_content) "
    "VALUES (new.rowid, new.content, new.reasoning_content); END",
)
_POSTGRES = (
    # A trusted extension since PostgreSQL 13: the database's owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_messages_content_trgm ON messages USING gin (content gin_trgm_ops)",
    "CREATE INDEX ix_messages_reasoning_content_trgm "
    "ON messages USING gin (reasoning_content gin_trgm_ops)",
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def upgrade() -> None:
    connection = op.get_bind()
    total = connection.exec_driver_sql("SELECT count(*) FROM messages").scalar_one()
    report = total >= migrations.REPORT_FROM
    if report:
        _say(f"indexing {total:,} messages for regex search (once, on this upgrade)")
    if connection.dialect.name != "sqlite":
        for statement in _POSTGRES:
            connection.exec_driver_sql(statement)
    else:
        for statement in _SQLITE:
            connection.exec_driver_sql(statement)
        last = connection.exec_driver_sql("SELECT max(rowid) FROM messages").scalar_one() or 0
        done = 0
        for start in range(1, last + 1, BATCH):
            done += connection.exec_driver_sql(
                "INSERT INTO message_search(rowid, content, reasoning_content) "
                "SELECT rowid, content, reasoning_content FROM messages "
                "WHERE rowid BETWEEN ? AND ?",
                (start, start + BATCH - 1),
            ).rowcount
            if report:
                _say(f"indexed {done:,} of {total:,} messages")
    if report:
        _say("message search index ready")


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql("DROP INDEX ix_messages_reasoning_content_trgm")
        connection.exec_driver_sql("DROP INDEX ix_messages_content_trgm")
        return
    for trigger in ("insert", "delete", "update"):
        connection.exec_driver_sql(f"DROP TRIGGER message_search_{trigger}")
    connection.exec_driver_sql("DROP TABLE message_search")

"""A trigram index over message content and reasoning content, for `regex` filters.

SQLite: an FTS5 table per column with the trigram tokenizer, its content the `messages` rows (by
rowid, which `VACUUM` keeps), kept in step in the same transaction as every write: new messages by
the store as it inserts them (`Dialect.indexing`: one statement per batch, where a trigger would
index row by row, far slower), deletes and updates by triggers (a cascade from a deleted
conversation too).
PostgreSQL: the `pg_trgm` and `btree_gin` extensions and a GIN index per column, owner first.

An existing database's messages are indexed here, in batches, with progress on stderr when there
are many.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from ayeto.store import migrations

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 50_000

# One FTS5 table per column: `detail=none` keeps only which rows hold each trigram (no positions,
# no column lists), a sixth of the size of a full index, and the store asks for every trigram of a
# literal rather than for the phrase (a superset: RE2 judges the candidates).
_TABLES = {"message_search_content": "content", "message_search_reasoning": "reasoning_content"}


def _sqlite() -> list[str]:
    statements = [
        f"CREATE VIRTUAL TABLE {table} USING fts5({column}, content='messages', "
        "content_rowid='rowid', tokenize='trigram', detail='none')"
        for table, column in _TABLES.items()
    ]
    add = "".join(
        f"INSERT INTO {table}(rowid, {column}) VALUES (new.rowid, new.{column}); "
        for table, column in _TABLES.items()
    )
    remove = "".join(
        f"INSERT INTO {table}({table}, rowid, {column}) "
        f"VALUES ('delete', old.rowid, old.{column}); "
        for table, column in _TABLES.items()
    )
    return [
        *statements,
        f"CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN {remove}END",
        f"CREATE TRIGGER message_search_update AFTER UPDATE ON messages BEGIN {remove}{add}END",
    ]


_POSTGRES = (
    # Both are trusted extensions (PostgreSQL 13 and later): the database's owner may create them.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # `btree_gin` lets a GIN index lead with the owner, as every index here does: a search reads
    # only the caller's entries, never another owner's rows.
    "CREATE EXTENSION IF NOT EXISTS btree_gin",
    "CREATE INDEX ix_messages_owner_id_content_trgm "
    "ON messages USING gin (owner_id, content gin_trgm_ops)",
    "CREATE INDEX ix_messages_owner_id_reasoning_content_trgm "
    "ON messages USING gin (owner_id, reasoning_content gin_trgm_ops)",
)


def upgrade() -> None:
    connection = op.get_bind()
    total = connection.exec_driver_sql("SELECT count(*) FROM messages").scalar_one()
    report = total >= migrations.REPORT_FROM
    if report:
        migrations.say(f"indexing {total:,} messages for regex search (once, on this upgrade)")
    if connection.dialect.name != "sqlite":
        for statement in _POSTGRES:
            connection.exec_driver_sql(statement)
    else:
        for statement in _sqlite():
            connection.exec_driver_sql(statement)
        last = connection.exec_driver_sql("SELECT max(rowid) FROM messages").scalar_one() or 0
        done = 0
        for start in range(1, last + 1, BATCH):
            for table, column in _TABLES.items():
                added = connection.exec_driver_sql(
                    f"INSERT INTO {table}(rowid, {column}) SELECT rowid, {column} FROM messages "
                    "WHERE rowid BETWEEN ? AND ?",
                    (start, start + BATCH - 1),
                ).rowcount
            done += added
            if report:
                migrations.say(f"indexed {done:,} of {total:,} messages")
    if report:
        migrations.say("message search index ready")


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql("DROP INDEX ix_messages_owner_id_reasoning_content_trgm")
        connection.exec_driver_sql("DROP INDEX ix_messages_owner_id_content_trgm")
        return
    for trigger in ("delete", "update"):
        connection.exec_driver_sql(f"DROP TRIGGER message_search_{trigger}")
    for table in _TABLES:
        connection.exec_driver_sql(f"DROP TABLE {table}")

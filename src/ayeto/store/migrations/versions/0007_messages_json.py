"""Each conversation's messages as the API answers them, in its row (`conversations.messages_json`):
reads embed them as they are, without reading the `messages` rows (still there for filters and the
search index).

An existing database's conversations get theirs here, rendered from their `messages` rows by the
store's own function, in batches, with progress on stderr when there are many. On PostgreSQL the
column is added nullable and made NOT NULL once filled. SQLite adds a NOT NULL column only with a
default (`'[]'`); making it NOT NULL without one would rebuild the table, and dropping the old
one would cascade to every message.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import itertools
import operator
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ayeto.store import migrations
from ayeto.store.sql import render_messages

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Conversations rendered per batch (about ten messages each).
BATCH = 1_000

_FIRST = sa.text("SELECT owner_id, id FROM conversations ORDER BY owner_id, id LIMIT :n")
_NEXT = sa.text(
    "SELECT owner_id, id FROM conversations WHERE (owner_id, id) > (:owner, :id) "
    "ORDER BY owner_id, id LIMIT :n"
)
# The messages of the conversations from the first of a batch to its last, in their order.
_MESSAGES = sa.text(
    "SELECT owner_id, conversation_id, id, timestamp, role, content, reasoning_content, model, "
    "img_gen FROM messages "
    "WHERE (owner_id, conversation_id) >= (:first_owner, :first_id) "
    "AND (owner_id, conversation_id) <= (:last_owner, :last_id) "
    "ORDER BY owner_id, conversation_id, position"
)
_SET = sa.text("UPDATE conversations SET messages_json = :rendered WHERE owner_id = :o AND id = :i")


def upgrade() -> None:
    connection = op.get_bind()
    postgres = connection.dialect.name != "sqlite"
    if postgres:
        connection.exec_driver_sql("ALTER TABLE conversations ADD COLUMN messages_json TEXT")
    else:
        connection.exec_driver_sql(
            "ALTER TABLE conversations ADD COLUMN messages_json TEXT NOT NULL DEFAULT '[]'"
        )
    total = connection.exec_driver_sql("SELECT count(*) FROM conversations").scalar_one()
    count = connection.exec_driver_sql("SELECT count(*) FROM messages").scalar_one()
    report = count >= migrations.REPORT_FROM
    if report:
        migrations.say(
            f"storing the messages of {total:,} conversations ({count:,} messages) as responses "
            "give them (once, on this upgrade)"
        )
    done, empty = 0, render_messages(())
    keys = connection.execute(_FIRST, {"n": BATCH}).all()
    while keys:
        (first_owner, first_id), (last_owner, last_id) = keys[0], keys[-1]
        rows = connection.execute(
            _MESSAGES,
            {
                "first_owner": first_owner,
                "first_id": first_id,
                "last_owner": last_owner,
                "last_id": last_id,
            },
        )
        threads = {
            key: render_messages(row[2:] for row in group)
            for key, group in itertools.groupby(rows, key=operator.itemgetter(0, 1))
        }
        connection.execute(
            _SET,
            [
                {"rendered": threads.get((owner, id_), empty), "o": owner, "i": id_}
                for owner, id_ in keys
            ],
        )
        done += len(keys)
        if report:
            migrations.say(f"stored the messages of {done:,} of {total:,} conversations")
        keys = connection.execute(_NEXT, {"owner": last_owner, "id": last_id, "n": BATCH}).all()
    if postgres:
        connection.exec_driver_sql(
            "ALTER TABLE conversations ALTER COLUMN messages_json SET NOT NULL"
        )
    if report:
        migrations.say("messages stored")


def downgrade() -> None:
    op.get_bind().exec_driver_sql("ALTER TABLE conversations DROP COLUMN messages_json")

"""Alembic migrations, applied when a store is opened to write; checked when opened to read.

Alembic is imported only when a migration is due: the revision a database has is read with one
query and compared with `HEAD`, so opening a current database (every server start) never loads
Alembic nor parses its scripts. `HEAD` is the newest script's revision; a test checks it against
the scripts, so a new migration cannot be forgotten here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine
    from sqlalchemy.engine import Connection

    from ayeto.store.dialects import Dialect

_HERE = Path(__file__).parent
# A migration that rewrites or indexes this many rows says on stderr what it is doing (a large
# database takes a while).
REPORT_FROM = 100_000


def say(message: str) -> None:
    """A line of a migration's progress, on stderr (see `REPORT_FROM`)."""
    print(message, file=sys.stderr, flush=True)


#: The revision of the newest script in `versions/`.
HEAD: Final = "0007"
#: Where Alembic keeps a database's revision.
VERSION_TABLE: Final = "alembic_version"


class SchemaNotCurrent(Exception):
    """The database lacks ayeto's current schema, and was opened not to change it.

    `revision` is the schema it has: None when it has none (or, for SQLite, no file at all).
    """

    def __init__(self, revision: str | None) -> None:
        found = "no ayeto schema" if revision is None else f"schema revision {revision!r}"
        super().__init__(f"{found}, not the current {head()!r}")
        self.revision = revision


def include_object(
    _object: object, name: str | None, kind: str, _reflected: bool, _compare_to: object
) -> bool:
    """Whether Alembic compares this object with the metadata: the search index (migration
    0003) is not part of it, being an FTS5 table with its shadow tables on SQLite and GIN
    indexes on PostgreSQL, which the metadata cannot declare for one backend only."""
    if kind == "table":
        return not (name or "").startswith("message_search")
    return not (kind == "index" and (name or "").endswith("_trgm"))


def config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return HEAD


def scripts_head() -> str | None:
    """The head revision as Alembic reads it from the scripts (what `HEAD` must say)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def revision(connection: Connection) -> str | None:
    """The schema revision the database has; None when it has no ayeto schema."""
    from sqlalchemy import inspect, text

    # Looked up first: a query on a missing table would abort a PostgreSQL transaction.
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    # One row, as ayeto's migrations form one line (Alembic's own reading refuses several).
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def is_current(connection: Connection) -> bool:
    return revision(connection) == head()


def upgrade(engine: Engine, dialect: Dialect) -> bool:
    """Create or upgrade the schema to the newest revision; a no-op when it is current.

    True when the database had no ayeto schema before: it was created now.
    """
    with engine.connect().execution_options(write=True) as connection, connection.begin():
        # Processes starting together queue here; all but the first find the work done.
        dialect.check(connection)
        dialect.lock_schema(connection)
        before = revision(connection)
        if before != head():
            from alembic import command

            command.upgrade(config(connection), "head")
    return before is None


def require_current(engine: Engine, dialect: Dialect) -> None:
    """Raise SchemaNotCurrent unless the schema is current, without writing anything."""
    url = engine.url
    # Connecting to an SQLite file that does not exist would create it.
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise SchemaNotCurrent(None)
    with engine.connect() as connection, connection.begin():
        dialect.check(connection)
        found = revision(connection)
    if found != head():
        raise SchemaNotCurrent(found)

"""Alembic migrations, applied when a store is opened to write; checked when opened to read.

Alembic is imported by the functions that use it: importing the store (and `ayeto --help`) does not
pay for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine
    from sqlalchemy.engine import Connection

    from ayeto.store.dialects import Dialect

_HERE = Path(__file__).parent
# A migration that rewrites or indexes this many rows says on stderr what it is doing (a large
# database takes a while).
REPORT_FROM = 100_000


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


def head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def revision(connection: Connection) -> str | None:
    """The schema revision the database has; None when it has no ayeto schema."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def is_current(connection: Connection) -> bool:
    return revision(connection) == head()


def upgrade(engine: Engine, dialect: Dialect) -> bool:
    """Create or upgrade the schema to the newest revision; a no-op when it is current.

    True when the database had no ayeto schema before: it was created now.
    """
    from alembic import command

    with engine.connect().execution_options(write=True) as connection, connection.begin():
        # Processes starting together queue here; all but the first find the work done.
        dialect.check(connection)
        dialect.lock_schema(connection)
        before = revision(connection)
        if before != head():
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

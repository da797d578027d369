"""Alembic migrations, applied automatically when a store is opened."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ayeto.store.dialects import Dialect

_HERE = Path(__file__).parent


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str | None:
    return ScriptDirectory.from_config(config()).get_current_head()


def is_current(connection: Connection) -> bool:
    return MigrationContext.configure(connection).get_current_revision() == head()


def upgrade(engine: Engine, dialect: Dialect) -> None:
    """Create or upgrade the schema to the newest revision; a no-op when it is current."""
    with engine.connect().execution_options(write=True) as connection, connection.begin():
        # Processes starting together queue here; all but the first find the work done.
        dialect.check(connection)
        dialect.lock_schema(connection)
        if not is_current(connection):
            command.upgrade(config(connection), "head")

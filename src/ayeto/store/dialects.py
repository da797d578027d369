"""Where SQLite and PostgreSQL differ: connection set-up, regex, and how nulls sort.

Everything else about the store is one implementation over SQLAlchemy Core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, func
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.sql.elements import ColumnElement

from ayeto.patterns import search

SQLITE_REGEXP = "ayeto_regexp"


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    # SQLite already sorts nulls lowest; PostgreSQL sorts them highest unless told.
    explicit_null_order: bool
    # An embedded database answers in microseconds: run calls on the event loop.
    inline: bool

    def regex(self, column: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        if self.name == "sqlite":
            return func.ayeto_regexp(pattern, column).is_(True)
        raise NotImplementedError(f"regex filters on {self.name}")


SQLITE = Dialect("sqlite", explicit_null_order=False, inline=True)


def create(url: str) -> tuple[Engine, Dialect]:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed), SQLITE
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}")


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(
        url.set(drivername="sqlite+pysqlite"),
        # Connections move between the event loop and worker threads (streamed responses, CLI).
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun explicitly below, not by the driver's implicit BEGIN.
        dbapi_connection.isolation_level = None
        for pragma in (
            "journal_mode = WAL",
            # Every acknowledged write is on disk before the answer leaves.
            "synchronous = FULL",
            "foreign_keys = ON",
            "busy_timeout = 10000",
        ):
            dbapi_connection.execute(f"PRAGMA {pragma}")
        dbapi_connection.create_function(SQLITE_REGEXP, 2, _regexp, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A writer takes the write lock up front, so it never fails half-way on a lock upgrade.
        write = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _regexp(pattern: str, text: str | None) -> bool:
    return search(pattern, text)

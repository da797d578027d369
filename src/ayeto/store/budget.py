"""A time budget for SQLite's reads, as PostgreSQL's `statement_timeout` gives it.

SQLite has no statement timeout, so one heavy `find` (a regex over every message) would run as
long as it likes. Its progress handler is called every few hundred virtual-machine instructions
while a statement runs; ours tells SQLite to stop once the statement has spent its budget, and
SQLite raises `OperationalError("interrupted")`, which the dialect answers as PostgreSQL's
cancelled statement (`errors.QUERY_TIMEOUT`).

The budget runs only while SQLite works: from each entry into it (`execute`, and each `fetch*`
of a streamed answer, as PostgreSQL times each `FETCH` of a server-side cursor) to its return.
Time a streamed answer spends waiting on its client is not counted. Only statements of read
transactions are budgeted: a write (an access stamp, a delete, an import, a migration) is never
cut short. The state is per connection, so reads on many threads each keep their own.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final

from sqlalchemy import Engine, event

# Virtual-machine instructions between two looks at the clock: a look costs a Python call and a
# `time.monotonic()`, some 100 ns, a small share of the microseconds these instructions take.
INSTRUCTIONS: Final = 1000


class _Clock:
    """When the statement now running on one connection must stop."""

    __slots__ = ("deadline", "seconds")

    def __init__(self) -> None:
        # No budget until a read statement sets one (connection set-up, writes).
        self.seconds = math.inf
        self.deadline = math.inf

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def stop(self) -> None:
        self.deadline = math.inf

    def spent(self) -> bool:
        """SQLite's progress handler: true (stop the statement) once past the deadline."""
        return time.monotonic() > self.deadline


class _Cursor(sqlite3.Cursor):
    """A cursor whose every call into SQLite runs on its connection's clock."""

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        clock = _clock(self)
        clock.start()
        try:
            return super().execute(sql, parameters)
        finally:
            clock.stop()

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> _Cursor:
        clock = _clock(self)
        clock.start()
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            clock.stop()

    def fetchone(self) -> Any:
        clock = _clock(self)
        clock.start()
        try:
            return super().fetchone()
        finally:
            clock.stop()

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        clock = _clock(self)
        clock.start()
        try:
            return super().fetchmany(size)
        finally:
            clock.stop()

    def fetchall(self) -> list[Any]:
        clock = _clock(self)
        clock.start()
        try:
            return super().fetchall()
        finally:
            clock.stop()


class _Connection(sqlite3.Connection):
    """An SQLite connection with a clock, whose cursors are `_Cursor`s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = _Clock()
        self.set_progress_handler(self.clock.spent, INSTRUCTIONS)

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


def _clock(cursor: sqlite3.Cursor) -> _Clock:
    connection = cursor.connection
    assert isinstance(connection, _Connection)
    return connection.clock


def install(engine: Engine, milliseconds: int) -> None:
    """Give each read statement of `engine` (an SQLite engine) `milliseconds` to run."""
    seconds = milliseconds / 1000

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, _args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        kwargs["factory"] = _Connection

    @event.listens_for(engine, "before_cursor_execute")
    def _budget(
        connection: Any,
        cursor: sqlite3.Cursor,
        _statement: str,
        _parameters: Any,
        _context: Any,
        _many: bool,
    ) -> None:
        # A read transaction's statements have the budget; a write's have none (`_Clock`).
        write = connection.get_execution_options().get("write", False)
        _clock(cursor).seconds = math.inf if write else seconds


__all__ = ["INSTRUCTIONS", "install"]

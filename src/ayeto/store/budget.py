"""A time budget for SQLite's reads, as PostgreSQL's `statement_timeout` gives it.

SQLite has no statement timeout, so one heavy `find` (a regex over every message) would run as
long as it likes. Its progress handler is called every `INSTRUCTIONS` virtual-machine
instructions while a statement runs; ours tells SQLite to stop once the statement has spent its
budget, and SQLite raises `OperationalError("interrupted")`, which the dialect answers as
PostgreSQL's cancelled statement (`errors.QUERY_TIMEOUT`).

The budget starts with each statement, and again with each batch of a streamed answer (as
PostgreSQL times each `FETCH` of a server-side cursor): a streamed answer that waits on its
client between batches is not cut short for it. Only statements of read transactions are
budgeted: a write (an access stamp, a delete, an import, a migration) is never cut short. The
state is per connection, so reads on many threads each keep their own.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

# Virtual-machine instructions between two looks at the clock: a look costs a Python call and a
# `time.monotonic()`, some 100 ns, a small share of the microseconds these instructions take.
INSTRUCTIONS: Final = 1000


class _Clock:
    """When the statement now running on one connection must stop."""

    __slots__ = ("cap", "deadline", "seconds")

    def __init__(self) -> None:
        # No budget until a read transaction sets one (connection set-up, writes).
        self.seconds = math.inf
        self.deadline = math.inf
        # A deadline no statement runs past, whatever its own budget (`until`).
        self.cap = math.inf

    def start(self) -> None:
        self.deadline = min(time.monotonic() + self.seconds, self.cap)

    def spent(self) -> bool:
        """SQLite's progress handler: true (stop the statement) once past the deadline."""
        return time.monotonic() > self.deadline


class _Cursor(sqlite3.Cursor):
    """A cursor whose statements, and each batch of a streamed answer, start the clock.

    The rows of an answer read at once (`fetchone`, `fetchall`) run on their statement's clock,
    as PostgreSQL times a whole statement; wrapping them would cost a Python call per row.
    """

    def __init__(self, connection: _Connection) -> None:
        super().__init__(connection)
        self._clock = connection.clock

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        self._clock.start()
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> _Cursor:
        self._clock.start()
        return super().executemany(sql, seq_of_parameters)

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        self._clock.start()
        return super().fetchmany(size)


class _Connection(sqlite3.Connection):
    """An SQLite connection with a clock, whose cursors are `_Cursor`s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = _Clock()
        self.set_progress_handler(self.clock.spent, INSTRUCTIONS)

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


def install(engine: Engine, milliseconds: int) -> None:
    """Give each read statement of `engine` (an SQLite engine) `milliseconds` to run."""
    each = milliseconds / 1000

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, _args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        kwargs["factory"] = _Connection

    # First among the engine's listeners: before the dialect's own issues BEGIN.
    @event.listens_for(engine, "begin", insert=True)
    def _budget(connection: Connection) -> None:
        # Once per transaction: a read's statements have the budget, a write's none (`_Clock`).
        dbapi_connection = connection.connection.dbapi_connection
        assert isinstance(dbapi_connection, _Connection)
        if connection.get_execution_options().get("write"):
            _unbounded(dbapi_connection)
        else:
            dbapi_connection.clock.seconds = each
            dbapi_connection.set_progress_handler(dbapi_connection.clock.spent, INSTRUCTIONS)


def _unbounded(dbapi_connection: _Connection) -> None:
    dbapi_connection.clock.seconds = math.inf
    # Nor is a write's progress watched: an import runs millions of instructions, and each look
    # at the clock would need the interpreter lock.
    dbapi_connection.set_progress_handler(None, INSTRUCTIONS)


def writing(connection: Connection) -> None:
    """The statements to come on `connection` are writes, outside a transaction (which sets
    this as it begins): none has a budget."""
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, _Connection):
        _unbounded(dbapi_connection)


def _clock(connection: Connection) -> _Clock | None:
    """The clock of `connection`'s statements; None where no budget was installed."""
    dbapi_connection = connection.connection.dbapi_connection
    return dbapi_connection.clock if isinstance(dbapi_connection, _Connection) else None


@contextmanager
def at_most(connection: Connection, milliseconds: int) -> Iterator[bool]:
    """Within it, each statement (and batch) of this read transaction has at most `milliseconds`;
    yields whether that is less than the budget it had (then it is what can run out)."""
    if (clock := _clock(connection)) is None:
        yield False
        return
    before = clock.seconds
    clock.seconds = min(before, milliseconds / 1000)
    try:
        yield clock.seconds < before
    finally:
        clock.seconds = before


def seconds(connection: Connection) -> float:
    """The budget of each statement of this read transaction (inf: none)."""
    clock = _clock(connection)
    return math.inf if clock is None else clock.seconds


@contextmanager
def until(connection: Connection, deadline: float) -> Iterator[None]:
    """Within it, no statement (or batch) of this read transaction runs past `deadline` (a
    `time.monotonic()` instant), however much of its own budget is left."""
    if (clock := _clock(connection)) is None:
        yield
        return
    clock.cap = deadline
    try:
        yield
    finally:
        clock.cap = math.inf


__all__ = ["INSTRUCTIONS", "at_most", "install", "seconds", "until", "writing"]

"""Where SQLite and PostgreSQL differ: connection set-up, regex, null order, errors, locking.

Everything else about the store is one implementation over SQLAlchemy Core (`ayeto.store.sql`).
"""

from __future__ import annotations

import fcntl
import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    Engine,
    LargeBinary,
    Select,
    cast,
    create_engine,
    event,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from ayeto.config import ConnectionOptions
from ayeto.errors import QUERY_TIMEOUT, BadRequest, QueryTimeout, Unavailable
from ayeto.patterns import search
from ayeto.pg_regex import to_postgres
from ayeto.prefilter import And, Required
from ayeto.store import budget
from ayeto.store.schema import SEARCHED

UNAVAILABLE = "the database is unavailable; try again shortly"
BUSY = "the database is busy; try again shortly"
TOO_COMPLEX = "the query is too complex"
# Compiled statements SQLAlchemy keeps per engine, one per statement shape (its default is 500).
# The parser bounds a `find` to 50 filters, whose shape compiles to some 400 KiB: this bounds the
# cache to tens of megabytes whatever shapes clients send, and still holds every fixed statement
# and the `find` shapes the store keeps (`sql._SHAPES`). SQLAlchemy prunes it back to this size
# once it holds half as many again.
STATEMENT_CACHE = 128
# Below this many candidates from the search index, a search reads just them (see `sql`).
FEW_CANDIDATES = 2000
# The trigrams asked for per literal: enough to be selective, few enough to stay cheap.
MAX_TRIGRAMS = 8


class Dialect:
    name: ClassVar[str]
    # SQLite sorts nulls lowest by itself; PostgreSQL sorts them highest unless told.
    explicit_null_order: ClassVar[bool]
    # Execution options that make a read transaction one consistent snapshot.
    snapshot: ClassVar[dict[str, str]] = {}
    # Execution options for a transaction of one statement.
    single: ClassVar[dict[str, str]] = {}
    # Whether a read of one statement is begun as a transaction (see `single` for its options).
    single_begins: ClassVar[bool] = True
    # Whether each statement costs a network round trip: then fewer, larger statements pay.
    round_trips: ClassVar[bool] = False
    # Whether the store asks the search index for a regex filter's candidates itself (`search`,
    # `candidates`). PostgreSQL's planner weighs its `pg_trgm` indexes against a scan on its own,
    # for the regex operator as it is: there the statement stays as it would be without them.
    narrows_search: ClassVar[bool] = False

    def regex(self, column: ColumnElement[Any], pattern: ColumnElement[str]) -> ColumnElement[bool]:
        """True where the regex bound to `pattern` (see `pattern`) is found in `column`."""
        raise NotImplementedError

    def pattern(self, pattern: str) -> str:
        """The value to bind for RE2 `pattern` (it is valid: see query.py) in `regex`."""
        return pattern

    @contextmanager
    def indexing(self, connection: Connection, count: int) -> Iterator[None]:
        """Around the insert of `count` messages: adds them to the search index where the
        database does not itself (PostgreSQL's GIN indexes are maintained by PostgreSQL)."""
        yield

    @contextmanager
    def planned_for_values(self, connection: Connection) -> Iterator[None]:
        """Around statements whose best plan depends on their values (how many rows a regex
        filter keeps): each is planned for its values, never run from a plan made once for any."""
        yield

    def few_candidates(self, connection: Connection, column: str, search: str) -> bool:
        """Whether the search index finds few enough messages for `search` (see `search`) that
        reading each of them beats reading the owner's conversations in the page's order."""
        raise NotImplementedError

    def search(self, column: str, literals: Required) -> str:
        """What to bind in `candidates` for messages whose `column` holds `literals`."""
        raise NotImplementedError

    def candidates(self, column: str, search: BindParameter[str]) -> ColumnElement[bool]:
        """True for the messages the search index finds for `search`: a superset of those the
        regex on `column` matches, found without reading the others."""
        raise NotImplementedError

    def not_indexed(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """`column`, in a form the planner does not look up by index (see `SQLite`)."""
        return column

    def engines(self, url: URL, options: ConnectionOptions) -> tuple[Engine, Engine]:
        """The engine reads run on, and the one writes run on (the same, where it can be)."""
        raise NotImplementedError

    def inline_engine(self, url: URL, options: ConnectionOptions) -> Engine | None:
        """The one connection of the reads made on the event loop (`Store.quickly`); None
        where every read waits on the network, so none is quick."""
        return None

    def lock_schema(self, connection: Connection) -> None:
        """Serialize schema migrations between processes that start at once."""

    def check(self, connection: Connection) -> None:
        """Refuse a database that could not give the answers the API promises."""

    @contextmanager
    def exclusive(self, engine: Engine, name: str) -> Iterator[bool]:
        """A lock named `name` on the database of `engine`, held by at most one process on any
        host while inside: True when this one holds it, False (at once) when another does."""
        raise NotImplementedError
        yield False  # pragma: no cover - a generator, as the context manager needs one

    def connection_limit(self, connection: Connection) -> int | None:
        """How many connections the server accepts from ordinary users; None: no limit."""
        return None

    def translate(self, error: Exception) -> Exception:
        """The API's error for a database failure; unexpected failures are returned unchanged."""
        if isinstance(error, PoolTimeout):
            return Unavailable(BUSY)
        if isinstance(error, OperationalError | InterfaceError) or (
            isinstance(error, DBAPIError) and error.connection_invalidated
        ):
            return Unavailable(UNAVAILABLE)
        return error


class SQLite(Dialect):
    name = "sqlite"
    explicit_null_order = False
    narrows_search = True
    # In autocommit (the driver's isolation level is None), SQLite reads a lone statement from
    # one snapshot: no BEGIN and COMMIT around it, which cost more than a key lookup.
    single_begins = False
    function = "ayeto_regexp"
    # How SQLite says a statement is beyond its compile-time limits: the statement's fault, not
    # the database's (sqlite3 raises them all as OperationalError).
    too_complex = (
        "Expression tree is too large",
        "too many SQL variables",
        "parser stack overflow",
        "LIKE or GLOB pattern too complex",
    )

    def translate(self, error: Exception) -> Exception:
        cause = str(error.orig) if isinstance(error, DBAPIError) else ""
        if cause == "interrupted":  # by the time budget, nothing else (see `budget`)
            return QueryTimeout(QUERY_TIMEOUT)
        if cause.startswith(self.too_complex):
            return BadRequest(f"{TOO_COMPLEX}: {cause}")
        return super().translate(error)

    def regex(self, column: ColumnElement[Any], pattern: ColumnElement[str]) -> ColumnElement[bool]:
        # The text as its UTF-8 bytes: see `patterns.search`.
        return func.ayeto_regexp(pattern, cast(column, LargeBinary)).is_(True)

    def search(self, column: str, literals: Required) -> str:
        return _fts_query(literals)

    def candidates(self, column: str, search: BindParameter[str]) -> ColumnElement[bool]:
        index = SEARCHED[column]
        found: Select[Any] = (
            select(literal_column("rowid"))
            .select_from(table(index))
            .where(literal_column(index).op("MATCH")(search))
        )
        return literal_column("messages.rowid").in_(found)

    @contextmanager
    def indexing(self, connection: Connection, count: int) -> Iterator[None]:
        # FTS5 writes out what it holds in memory at every statement's savepoint: a trigger
        # indexing each row of an `executemany` would write a segment per message (an import
        # six times slower). So new messages are indexed here, in one statement per table, and
        # triggers keep deletes and updates in step. New rows take rowids above the largest
        # (SQLite picks others only once that is 2**63 - 1), which the count checks.
        before = connection.exec_driver_sql("SELECT coalesce(max(rowid), 0) FROM messages")
        last = before.scalar_one()
        yield
        for column, index in SEARCHED.items():
            added = connection.exec_driver_sql(
                f"INSERT INTO {index}(rowid, {column}) "
                f"SELECT rowid, {column} FROM messages WHERE rowid > ?",
                (last,),
            )
            if added.rowcount != count:
                raise RuntimeError(f"indexed {added.rowcount} new messages, not {count}")

    def few_candidates(self, connection: Connection, column: str, search: str) -> bool:
        index = SEARCHED[column]
        counted = connection.exec_driver_sql(
            f"SELECT count(*) FROM (SELECT 1 FROM {index} WHERE {index} MATCH ? LIMIT ?)",
            (search, FEW_CANDIDATES),
        )
        return int(counted.scalar_one()) < FEW_CANDIDATES

    def not_indexed(self, column: ColumnElement[str]) -> ColumnElement[str]:
        # Without statistics SQLite guesses that the owner's index finds few messages, and
        # would read every message of the owner to test it against the candidates; `+column`
        # keeps that term out of index choice, so the candidates are read, each by its rowid.
        return literal_column(f"+{column}", type_=column.type)

    @contextmanager
    def exclusive(self, engine: Engine, name: str) -> Iterator[bool]:
        # A file beside the database: every process that opens it runs on this host. An
        # in-memory database has one process.
        database = engine.url.database
        if not database or database == ":memory:":
            yield True
            return
        path = Path(database).with_name(f"{Path(database).name}.{name}.lock")
        # Left in place afterwards: removing a lock file races with the next process to open it.
        with open(path, "a") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(held, fcntl.LOCK_UN)

    def engines(self, url: URL, options: ConnectionOptions) -> tuple[Engine, Engine]:
        """A pool of read connections, and the one connection every write of this process takes.

        WAL lets the readers run beside the writer, each in its own worker thread. Writes queue
        for the writer (in threads too, never on the event loop) instead of contending for
        SQLite's lock, one transaction at a time: the one place where they are serialized.
        """
        readers = self.engine(url, options.pool_size, options.max_overflow, options.pool_timeout)
        writer = self.engine(url, 1, 0, options.pool_timeout)
        for engine in (readers, writer):
            budget.install(engine, options.statement_timeout_ms)
        return readers, writer

    def inline_engine(self, url: URL, options: ConnectionOptions) -> Engine | None:
        if options.inline_read_ms <= 0:
            return None
        # Never a wait on the event loop: the database busy (as when a crashed writer's WAL is
        # being recovered) fails at once, and the read is made again in a worker thread.
        engine = self.engine(url, 1, 0, options.pool_timeout, busy_timeout_ms=0)
        budget.install(engine, options.statement_timeout_ms)
        return engine

    def engine(
        self,
        url: URL,
        pool_size: int,
        max_overflow: int,
        pool_timeout: float,
        *,
        busy_timeout_ms: int = 10_000,
    ) -> Engine:
        engine = create_engine(
            url.set(drivername="sqlite+pysqlite"),
            query_cache_size=STATEMENT_CACHE,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            # The connection used last comes first: its page and statement caches are warm, and
            # under light load a few connections serve every request.
            pool_use_lifo=True,
            # A connection serves whichever worker thread takes it from the pool.
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
                f"busy_timeout = {busy_timeout_ms}",
            ):
                dbapi_connection.execute(f"PRAGMA {pragma}")
            dbapi_connection.create_function(self.function, 2, search, deterministic=True)

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            # A writer takes the write lock up front, so it never fails half-way on an upgrade
            # from reader to writer; this also serializes concurrent migrations.
            write = connection.get_execution_options().get("write", False)
            statement = "BEGIN IMMEDIATE" if write else "BEGIN"
            # On the driver's connection: SQLAlchemy's execution of a statement cost more than
            # the rest of a `get`'s transaction (bench/RESULTS.md). Its errors are raised as
            # SQLAlchemy raises them, for `translate`.
            driver = connection.connection.dbapi_connection
            assert driver is not None
            try:
                driver.execute(statement)
            except sqlite3.Error as exc:
                raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc

        return engine


class PostgreSQL(Dialect):
    name = "postgresql"
    explicit_null_order = True
    # SQLite's read transactions are snapshots already (WAL); READ COMMITTED's are not.
    snapshot: ClassVar[dict[str, str]] = {"isolation_level": "REPEATABLE READ"}
    # No BEGIN and COMMIT: two round trips fewer.
    single: ClassVar[dict[str, str]] = {"isolation_level": "AUTOCOMMIT"}
    round_trips = True
    # Any constant will do, as long as it is the same in every process.
    migration_lock = 0x61796574

    def regex(self, column: ColumnElement[Any], pattern: ColumnElement[str]) -> ColumnElement[bool]:
        return column.op("~", is_comparison=True)(pattern)

    def pattern(self, pattern: str) -> str:
        return to_postgres(pattern)

    @contextmanager
    def planned_for_values(self, connection: Connection) -> Iterator[None]:
        # psycopg prepares a statement on the server once it has run 5 times, and PostgreSQL then
        # may plan it once for any values (a generic plan), blind to how many rows the pattern
        # keeps: a common word's page took 0.4-2.2 s that way at 100,000 conversations, against
        # 4 ms planned for the value, which reads the newest conversations and stops at the page's
        # end (bench/RESULTS.md). Unprepared, a statement is planned for its values each time
        # (about 1 ms).
        driver = connection.connection.dbapi_connection
        threshold = driver.prepare_threshold  # type: ignore[union-attr]
        driver.prepare_threshold = None  # type: ignore[union-attr]
        try:
            yield
        finally:
            driver.prepare_threshold = threshold  # type: ignore[union-attr]

    def lock_schema(self, connection: Connection) -> None:
        # The statement timeout bounds a request's query, not a migration: building an index
        # over a large database takes minutes, and the processes that start meanwhile wait at
        # the lock as long. For this transaction only.
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.migration_lock})

    @contextmanager
    def exclusive(self, engine: Engine, name: str) -> Iterator[bool]:
        # A session's advisory lock, outside any transaction: the work it guards runs in
        # transactions of its own, on other connections. A session that dies releases it.
        key = {"key": _lock_key(name)}
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            try:
                lock = text("SELECT pg_try_advisory_lock(:key)")
                held = bool(connection.execute(lock, key).scalar())
            except BaseException:
                # Whether the lock was taken is unknown: the session ends with the connection,
                # and a lock with it, instead of going back to the pool.
                connection.invalidate()
                raise
            try:
                yield held
            finally:
                if held:
                    try:
                        connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                    except BaseException:
                        connection.invalidate()
                        raise

    def translate(self, error: Exception) -> Exception:
        from psycopg.errors import (
            InvalidRegularExpression,
            ProgramLimitExceeded,
            QueryCanceled,
            StatementTooComplex,
        )

        cause = error.orig if isinstance(error, DBAPIError) else None
        if isinstance(cause, QueryCanceled):
            return QueryTimeout(QUERY_TIMEOUT)
        if isinstance(cause, InvalidRegularExpression):
            message = cause.diag.message_primary or str(cause)
            # Its matcher stopped by the statement timeout says so as a regex it cannot run.
            if message.endswith("operation cancelled"):
                return QueryTimeout(QUERY_TIMEOUT)
            # A valid translation PostgreSQL still cannot run, e.g. "too complex".
            return BadRequest(f"invalid regex: PostgreSQL cannot run it: {message}")
        if isinstance(cause, StatementTooComplex | ProgramLimitExceeded):
            # 54001 (e.g. "stack depth limit exceeded") and 54000: beyond the server's limits.
            return BadRequest(f"{TOO_COMPLEX}: {cause.diag.message_primary}")
        return super().translate(error)

    def check(self, connection: Connection) -> None:
        # Patterns and text are exchanged as Unicode code points: only UTF8 means the same.
        encoding = connection.exec_driver_sql("SHOW server_encoding").scalar_one()
        if encoding != "UTF8":
            raise RuntimeError(f"ayeto needs a database with encoding UTF8, not {encoding}")

    def connection_limit(self, connection: Connection) -> int | None:
        # `reserved_connections` (PostgreSQL 16) is null before it existed.
        limit = connection.exec_driver_sql(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true)::int, 0)"
        ).scalar_one()
        return int(limit)

    def engines(self, url: URL, options: ConnectionOptions) -> tuple[Engine, Engine]:
        # The server serializes concurrent writes itself (row locks); one pool serves both.
        engine = self.engine(url, options)
        return engine, engine

    def engine(self, url: URL, options: ConnectionOptions) -> Engine:
        return create_engine(
            url.set(drivername="postgresql+psycopg"),
            query_cache_size=STATEMENT_CACHE,
            pool_size=options.pool_size,
            max_overflow=options.max_overflow,
            pool_timeout=options.pool_timeout,
            # A connection that died with the server is noticed and replaced before use, so the
            # service recovers by itself when the database is back.
            pool_pre_ping=True,
            connect_args={
                "connect_timeout": options.connect_timeout,
                "application_name": "ayeto",
                "options": f"-c statement_timeout={options.statement_timeout_ms}",
                # A peer that vanished without closing the connection is given up on, not
                # waited for forever.
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 2,
                "keepalives_count": 3,
                "tcp_user_timeout": options.connect_timeout * 1000,
            },
        )


def _fts_query(literals: Required) -> str:
    """An FTS5 query for what holds `literals`: each literal as its trigrams, every one quoted
    (in which `"` is doubled and nothing else is special: `*`, `AND`, `NEAR` are text).

    The index keeps no positions (`detail=none`), so a literal is asked for as trigrams that
    cover it, not as a phrase: a superset of the texts holding it. Trigrams three apart, and the
    last, cover every character; the tokenizer folds case on both sides.
    """
    if isinstance(literals, str):
        starts = [*range(0, len(literals) - 3, 3), len(literals) - 3]
        trigrams = sorted({literals[i : i + 3] for i in starts[:MAX_TRIGRAMS]})
        quoted = ['"' + trigram.replace('"', '""') + '"' for trigram in trigrams]
        return quoted[0] if len(quoted) == 1 else "(" + " AND ".join(quoted) + ")"
    joined = " AND " if isinstance(literals, And) else " OR "
    # Sorted, so that one pattern always gives one query.
    return "(" + joined.join(sorted(_fts_query(part) for part in literals.parts)) + ")"


def _lock_key(name: str) -> int:
    """The advisory lock key for `name`: the same in every process, apart from `migration_lock`."""
    return int.from_bytes(hashlib.sha256(f"ayeto:{name}".encode()).digest()[:8], signed=True)


def create(
    url: str, options: ConnectionOptions | None = None
) -> tuple[Engine, Engine, Engine | None, Dialect]:
    """The engines for reads, for writes and for reads on the event loop (where there is one) of
    the database at `url`, and its dialect."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    dialect: Dialect
    if backend == "sqlite":
        dialect = SQLite()
    elif backend in ("postgresql", "postgres"):
        dialect = PostgreSQL()
    else:
        raise ValueError(
            f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}"
        )
    options = options or ConnectionOptions()
    readers, writer = dialect.engines(parsed, options)
    return readers, writer, dialect.inline_engine(parsed, options), dialect

"""The `Store` over SQLAlchemy Core, shared by every backend; see `dialects` for what differs.

Reads build response documents straight from the conversations' rows: each holds its messages as
the JSON the API answers (`messages_json`, written with the `messages` rows), which a response
embeds as it is. A response is serialized exactly once, by the API.
"""

from __future__ import annotations

import functools
import math
import operator
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from itertools import islice
from typing import Any, ParamSpec, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    Engine,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Dialect as SqlDialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import BindParameter, ColumnElement, UnaryExpression
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from ayeto.errors import (
    AyetoError,
    Forbidden,
    MatchesChanged,
    NotFound,
    QueryTimeout,
    ScanTimeout,
    Unavailable,
)
from ayeto.prefilter import required
from ayeto.query import Condition, Field, Op, Query, short
from ayeto.store import budget, checkpoints, migrations
from ayeto.store.base import ApiKey, Document, NotQuick, Queued, WebSession, messages_of
from ayeto.store.batching import GroupCommit, Together
from ayeto.store.dialects import Dialect, SQLite
from ayeto.store.scanner import Scanner
from ayeto.store.schema import (
    NOBODY,
    SEARCHED,
    api_keys,
    conversations,
    job_runs,
    messages,
    mirror_state,
    web_sessions,
)

_T = TypeVar("_T")
_P = ParamSpec("_P")

BATCH = 200
# A server-side cursor where the database has one, so a large answer is read batch by batch.
_STREAMING = {"stream_results": True, "max_row_buffer": BATCH}

_C = conversations.c
_M = messages.c
_S = mirror_state.c
_J = job_runs.c
# Conversations written per statement.
_CHUNK = 500
_CONVERSATION_COLUMNS = (
    _C.id,
    _C.name,
    _C.model,
    _C.img_gen_model,
    _C.summary,
    _C.organization_id,
    _C.assistant_id,
    _C.owner_id,
    _C.created_at,
    _C.updated_by,
    _C.updated_at,
    _C.accessed_by,
    _C.accessed_at,
    _C.messages_json,
)
# Where a conversation's row has its owner (its id is first).
_OWNER_AT = 7
# A message's fields as a response has them, in its order: what `render_messages` takes.
_MESSAGE_FIELDS = ("id", "timestamp", "role", "content", "reasoning_content", "model", "img_gen")
_FIELDS_OF_ROW = operator.itemgetter(*_MESSAGE_FIELDS)
_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.user_id,
    api_keys.c.name,
    api_keys.c.scopes,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.expires_at,
    api_keys.c.revoked_at,
    api_keys.c.rate_limit,
)

# Statements of a fixed shape are built once, their values bound at each execution: building a
# statement costs SQLAlchemy more than SQLite takes to run it, and a prebuilt one also keeps its
# cache key, so SQLAlchemy finds its compiled form at once.
_OWNER: BindParameter[str] = bindparam("owner")
_ID: BindParameter[str] = bindparam("conversation_id")
_NOW: BindParameter[int] = bindparam("now")
_KEY_BY_DIGEST = select(*_KEY_COLUMNS).where(api_keys.c.digest == bindparam("digest"))
_TOUCH_KEY = update(api_keys).where(api_keys.c.id == bindparam("key_id")).values(last_used_at=_NOW)
_STAMP = func.json_each(bindparam("stamps")).table_valued("value", name="stamp")
_GET = (
    update(conversations)
    .where(_C.owner_id == _OWNER, _C.id == _ID)
    .values(accessed_by=_OWNER, accessed_at=_NOW)
    .returning(*_CONVERSATION_COLUMNS)
)
# The stamps of many `get`s (SQLite's writer: `_Stamp.all`), given as one JSON array of
# `[owner, id, now]`, each (owner, id) once.
_STAMPED = select(
    *(
        func.json_extract(_STAMP.c.value, literal_column(f"'$[{i}]'")).label(name)
        for i, name in enumerate(("owner", "id", "now"))
    )
).cte("stamped")
_GET_MANY = (
    update(conversations)
    .where(_C.owner_id == _STAMPED.c.owner, _C.id == _STAMPED.c.id)
    .values(accessed_by=_STAMPED.c.owner, accessed_at=_STAMPED.c.now)
    .returning(*_CONVERSATION_COLUMNS)
)
_MODELS = select(_C.model).where(_C.owner_id == _OWNER).distinct().order_by(_C.model)
_W = web_sessions.c
_WEB_SESSION = (
    select(*_KEY_COLUMNS, _W.created_at, _W.expires_at)
    .join_from(web_sessions, api_keys, api_keys.c.id == _W.key_id)
    .where(_W.digest == bindparam("digest"), _W.expires_at > _NOW)
)
_DELETE = delete(conversations).where(_C.owner_id == _OWNER, _C.id == _ID)
_OWNER_OF = select(_C.owner_id).where(_C.id == _ID).limit(1)
_BY_IDS = select(*_CONVERSATION_COLUMNS).where(
    _C.owner_id == _OWNER, _C.id.in_(bindparam("ids", expanding=True))
)

# What a `find` statement's SQL depends on: per condition its field, operator, whether the value
# is null (`IS NULL` instead of a comparison) and whether the search index's candidates drive it
# (`_search`); the sort; whether there is a limit.
# Last, the `any_of` conditions (field, operator, whether the value is null).
_Shape = tuple[
    tuple[tuple[Field, Op, bool, bool], ...], Field, bool, bool, tuple[tuple[Field, Op, bool], ...]
]
# Distinct shapes are few in practice; the bound keeps arbitrary ones from growing it. Fewer than
# the engine's compiled statements (`dialects.STATEMENT_CACHE`), so that every shape kept here
# also finds its compiled form there.
_SHAPES = 64

_COMPARISONS: dict[Op, Callable[[Any, Any], ColumnElement[bool]]] = {
    Op.EQ: operator.eq,
    Op.LT: operator.lt,
    Op.GT: operator.gt,
    Op.LE: operator.le,
    Op.GE: operator.ge,
}


class SqlStore:
    """The store over `engine`, and `writer` for every write (by default the same engine)."""

    def __init__(
        self,
        engine: Engine,
        dialect: Dialect,
        writer: Engine | None = None,
        *,
        scan_timeout_ms: int | None = None,
        inline: Engine | None = None,
        inline_read_ms: int = 0,
    ) -> None:
        self.engine = engine
        self.writer = engine if writer is None else writer
        self.dialect = dialect
        # The one connection of `quickly`'s reads (SQLite), and how long they may take.
        self._inline = inline if inline_read_ms > 0 else None
        self._inline_seconds = inline_read_ms / 1000
        self._inline_lock = threading.Lock()
        # Its connection, kept checked out: taking it from the pool and giving it back for each
        # read would cost more than many of the reads.
        self._held: Connection | None = None
        # Per thread: whether it is inside `quickly`, and how far that goes (see `_Quick`).
        self._local = threading.local()
        # The budget of a statement that reads every message for a regex (`_scan`); None: the
        # statement timeout's alone.
        self.scan_timeout_ms = scan_timeout_ms
        # Held by the one read that scans every message of its owner for a regex (`_scan`), run
        # in the scanning process where another process can open the database.
        self._scanning = threading.Lock()
        # SQLite's database file (None in memory, and on PostgreSQL): the scanning process and
        # the checkpoint thread open it too.
        database = engine.url.database
        self._file = (
            database
            if isinstance(dialect, SQLite) and database and database != ":memory:"
            else None
        )
        self._scanner = (
            Scanner(self._file, dialect.function, SCANNER_BUSY_TIMEOUT_MS, budget.INSTRUCTIONS)
            if self._file is not None and isinstance(dialect, SQLite)
            else None
        )
        # Started by `serve`.
        self._checkpoints: checkpoints.Checkpoints | None = None
        self._page_of_shape = functools.lru_cache(maxsize=_SHAPES)(self._build_page)
        # SQLite's writes are serialized on one connection anyway: grouping them costs no
        # concurrency, and saves a flush per call. PostgreSQL commits many transactions at once
        # from its pool, so there each call keeps its own: measured with `get`, batching there
        # was no cheaper per call than one statement each (bench/RESULTS.md).
        self._batch = (
            GroupCommit(functools.partial(self._write, single=True), self._write_on)
            if dialect.name == "sqlite"
            else None
        )
        self._count_of_shape = functools.lru_cache(maxsize=_SHAPES)(self._build_count)
        # SQLite's statements as its driver runs them (`_rows`), compiled once each: the page
        # statements of as many shapes as are kept above, and the few of a fixed shape.
        self._driver_statement = (
            functools.lru_cache(maxsize=2 * _SHAPES + 8)(
                functools.partial(_DriverStatement, dialect=engine.dialect)
            )
            if dialect.name == "sqlite"
            else None
        )

    # -- calls on the event loop ------------------------------------------------------------------

    def quickly(self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        # SQLite answers most reads in well under a millisecond, and a worker thread costs more
        # than that: handing a call over and back, with the GIL passed each way, took 0.4 ms of
        # CPU per request, and a find page three times the CPU under load (bench/RESULTS.md). So
        # a read runs right here, on the one connection kept for it, until `_inline_seconds`
        # have passed; a read past that is stopped (the progress handler, as any budget) and made
        # again in a worker thread, where it cannot hold up other requests for longer.
        if self._inline is None or not self._inline_lock.acquire(blocking=False):
            raise NotQuick
        local = self._local
        local.quick = _Quick(
            deadline=time.monotonic() + self._inline_seconds,
            # Only a call that is itself the write may hand the write over and be done.
            queueable=getattr(function, "__self__", None) is self
            and getattr(function, "__name__", "") in _QUEUEABLE,
        )
        try:
            return function(*args, **kwargs)
        except (QueryTimeout, Unavailable) as exc:
            # Past the budget (QueryTimeout, ScanTimeout), or the database busy (no wait here):
            # the worker thread's attempt has the full budget and waits its turn.
            raise NotQuick from exc
        finally:
            local.quick = None
            self._inline_lock.release()

    # -- conversations ---------------------------------------------------------------------------

    def find(self, owner: str, query: Query) -> Iterator[list[Document]]:
        # A client may take its time reading a large answer: no transaction, and no connection,
        # may wait on it (they are few, and shared by every request). So the first read decides
        # the matches and their order, keeping only the ids after the first batch (small), and
        # each later batch is read in a short transaction of its own, released before it is
        # handed on. Yields come after each transaction ends, never inside one.
        if self._whole(query):
            # A page that fits in one batch, its messages in its rows: one statement, which
            # needs no transaction to be a snapshot (on PostgreSQL, one round trip).
            with self._read(single=True) as connection, self._planned(connection, query):
                shape, values = self._page(connection, owner, query)
                statement = self._page_of_shape(shape, True)
                rows = self._all_rows(connection, query, shape, statement, values)
            if rows:
                yield [_conversation(row) for row in rows]
            return
        with self._read() as connection, self._planned(connection, query):
            shape, values = self._page(connection, owner, query)
            statement = self._page_of_shape(shape, False)
            with self._scan(connection, query, shape) as scan:
                if scan is None:
                    with self._batches(connection, statement, values) as pages:
                        ids = [row[0] for page in pages for row in page]
                else:
                    ids = [row[0] for row in scan(statement, values)]
            first = self._conversations(connection, owner, ids[:BATCH])
        if first:
            yield first
        for start in range(BATCH, len(ids), BATCH):
            if batch := self._by_ids(owner, ids[start : start + BATCH]):
                yield batch

    def _by_ids(self, owner: str, ids: list[str]) -> list[Document]:
        """The owner's conversations with these ids, in this order; deleted ones are left out."""
        with self._read(single=True) as connection:
            return self._conversations(connection, owner, ids)

    def _conversations(self, connection: Connection, owner: str, ids: list[str]) -> list[Document]:
        """`_by_ids` on `connection`."""
        if not ids:
            return []
        rows = self._rows(connection, _BY_IDS, {"owner": owner, "ids": ids})
        found = {row[0]: row for row in rows}
        return [_conversation(found[id_]) for id_ in ids if id_ in found]

    def page_statement(self, owner: str, query: Query) -> Select[Any]:
        """The query behind a `find` page, values bound: its conversations whole where they fit
        in one batch, else their ids (each batch is then read by id)."""
        with self._read() as connection:
            shape, values = self._page(connection, owner, query)
        return self._page_of_shape(shape, self._whole(query)).params(values)

    @staticmethod
    def _whole(query: Query) -> bool:
        """Whether `find` reads the page of `query` whole, in one statement (one batch)."""
        return query.limit is not None and query.limit <= BATCH

    def count(self, owner: str, query: Query) -> int:
        with self._read(single=True) as connection:
            shape, values = self._page(connection, owner, query)
            statement = self._count_of_shape(shape)
            return int(self._all_rows(connection, query, shape, statement, values)[0][0])

    def models(self, owner: str) -> list[str]:
        with self._read(single=True) as connection:
            found = connection.execute(_MODELS, {"owner": owner})
            return list(found.scalars())

    def get(self, owner: str, conversation_id: str, now: int) -> Document:
        stamp = _Stamp(self, owner, conversation_id, now)
        if self._batch is None and self.dialect.round_trips:
            # One statement, committed as it ends (before the answer, as a transaction's commit
            # would): one round trip instead of three.
            with self._write(single=True) as connection:
                return stamp(connection)
        return self._small_write(stamp)

    def delete(self, owner: str, conversation_id: str) -> None:
        values = {"owner": owner, "conversation_id": conversation_id}

        def remove(connection: Connection) -> None:
            # Messages go with it: ON DELETE CASCADE, in the same transaction.
            if connection.execute(_DELETE, values).rowcount == 0:
                raise _missing(connection, conversation_id)

        self._small_write(remove)

    def delete_matching(
        self, owner: str | None, query: Query, *, dry_run: bool = False, expect: int | None = None
    ) -> list[str]:
        # Read and deleted in one write transaction, by the ids read: what is deleted is
        # exactly what is returned (and what `expect` was checked against), even when a
        # conversation starts matching meanwhile.
        with self._read() if dry_run else self._write() as connection:
            shape, values = self._page(connection, owner or NOBODY, query)
            where = self._where(shape, owned=owner is not None)
            statement = select(_C.owner_id, _C.id).where(*where).order_by(_C.id)
            rows = connection.execute(statement, values).all()
            if expect is not None and len(rows) != expect:
                raise MatchesChanged(len(rows), expect)
            if not dry_run:
                by_owner: dict[str, list[str]] = defaultdict(list)
                for row in rows:
                    by_owner[row.owner_id].append(row.id)
                for owner_id, ids in by_owner.items():
                    for start in range(0, len(ids), _CHUNK):
                        # Messages go with them: ON DELETE CASCADE.
                        connection.execute(
                            delete(conversations).where(
                                _C.owner_id == owner_id, _C.id.in_(ids[start : start + _CHUNK])
                            )
                        )
        return [row.id for row in rows]

    def upsert(self, documents: Iterable[Document]) -> int:
        count = 0
        with self._write() as connection:
            for chunk in _batched(documents, _CHUNK):
                _replace(connection, self.dialect, chunk)
                count += len(chunk)
        return count

    # -- mirror ----------------------------------------------------------------------------------

    def mirror_watermark(self, user: str, source: str) -> int | None:
        with self._read() as connection:
            return connection.execute(
                select(_S.watermark).where(_S.user_id == user, _S.source == source)
            ).scalar_one_or_none()

    def mirror_page(
        self, user: str, source: str, documents: list[Document], watermark: int
    ) -> tuple[int, int]:
        with self._write() as connection:
            ids = [document["id"] for document in documents]
            rows = connection.execute(_BY_IDS, {"owner": user, "ids": ids}).all()
            stored = {row[0]: orjson.dumps(_conversation(row)) for row in rows}
            changed = [d for d in documents if stored.get(d["id"]) != orjson.dumps(d)]
            for chunk in _batched(changed, _CHUNK):
                _replace(connection, self.dialect, chunk)
            where = (_S.user_id == user, _S.source == source)
            if (
                connection.execute(
                    update(mirror_state).where(*where).values(watermark=watermark)
                ).rowcount
                == 0
            ):
                connection.execute(
                    insert(mirror_state).values(user_id=user, source=source, watermark=watermark)
                )
        new = sum(1 for document in changed if document["id"] not in stored)
        return new, len(changed) - new

    def mirror_prune(self, user: str, keep: Collection[str]) -> int:
        with self._write() as connection:
            local = connection.execute(select(_C.id).where(_C.owner_id == user)).scalars()
            gone = [id_ for id_ in local if id_ not in keep]
            for start in range(0, len(gone), _CHUNK):
                chunk = gone[start : start + _CHUNK]
                connection.execute(
                    delete(conversations).where(_C.owner_id == user, _C.id.in_(chunk))
                )
        return len(gone)

    def export(self, owner: str | None = None) -> Iterator[Document]:
        statement = select(*_CONVERSATION_COLUMNS).order_by(_C.owner_id, _C.id)
        if owner is not None:
            statement = statement.where(_C.owner_id == owner)
        with self._read() as connection:
            result = connection.execute(statement, execution_options=_STREAMING)
            for page in result.partitions(BATCH):
                yield from map(_conversation, page)

    # -- periodic jobs ---------------------------------------------------------------------------

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        with self.dialect.exclusive(self.writer, name) as held:
            yield held

    def last_run(self, job: str) -> int | None:
        with self._read() as connection:
            return connection.execute(select(_J.ran_at).where(_J.job == job)).scalar_one_or_none()

    def record_run(self, job: str, at: int) -> None:
        with self._write() as connection:
            if (
                connection.execute(update(job_runs).where(_J.job == job).values(ran_at=at)).rowcount
                == 0
            ):
                connection.execute(insert(job_runs).values(job=job, ran_at=at))

    # -- API keys --------------------------------------------------------------------------------

    def add_key(self, key: ApiKey, digest: str) -> None:
        with self._write() as connection:
            connection.execute(
                insert(api_keys).values(
                    id=key.id,
                    digest=digest,
                    user_id=key.user_id,
                    name=key.name,
                    scopes=" ".join(key.scopes),
                    created_at=key.created_at,
                    last_used_at=key.last_used_at,
                    expires_at=key.expires_at,
                    revoked_at=key.revoked_at,
                    rate_limit=key.rate_limit,
                )
            )

    def key_by_digest(self, digest: str) -> ApiKey | None:
        if self._driver_statement is not None:
            row = self._sqlite_row(_KEY_BY_DIGEST, {"digest": digest})
        else:
            with self._read(single=True) as connection:
                row = connection.execute(_KEY_BY_DIGEST, {"digest": digest}).one_or_none()
        return None if row is None else _key_of_row(tuple(row))

    def _sqlite_row(self, statement: ExecutableReturnsRows, values: Mapping[str, Any]) -> Any:
        """The first row of a one-statement read, straight from a pooled SQLite connection.

        Every request looks its key up, and SQLAlchemy's execution and its transaction cost
        several times SQLite's own lookup. One SELECT needs no transaction around it: in
        autocommit, SQLite reads it from one snapshot. Within `quickly` it runs on `quickly`'s
        connection, without a deadline: it reads one row by a unique index.
        """
        assert self._driver_statement is not None
        sql, parameters = self._driver_statement(statement).bound(values)
        quick = self._quick() is not None
        try:
            pooled = None if quick else self.engine.raw_connection()
        except Exception as exc:
            raise self.dialect.translate(exc) from exc
        try:
            driver = (
                self._inline_connection().connection.driver_connection
                if pooled is None
                else pooled.driver_connection
            )
            with _Driver(driver, sql, parameters) as cursor:
                return cursor.fetchone()
        except DBAPIError as exc:
            raise self.dialect.translate(exc) from exc
        finally:
            if pooled is not None:
                pooled.close()

    def _rows(
        self, connection: Connection, statement: ExecutableReturnsRows, values: Mapping[str, Any]
    ) -> Sequence[Any]:
        """Every row of `statement`; on SQLite straight from its driver, as tuples (`_Driver`)."""
        if self._driver_statement is None:
            return connection.execute(statement, values).all()
        sql, parameters = self._driver_statement(statement).bound(values)
        with _Driver(connection.connection.driver_connection, sql, parameters) as cursor:
            return cursor.fetchall()

    @contextmanager
    def _batches(
        self, connection: Connection, statement: ExecutableReturnsRows, values: Mapping[str, Any]
    ) -> Iterator[Iterator[Sequence[Any]]]:
        """The rows of `statement` in batches of `BATCH`, each read as it is taken (from a
        server-side cursor where the database has one), within the block."""
        if self._driver_statement is None:
            result = connection.execute(statement, values, execution_options=_STREAMING)
            yield result.partitions(BATCH)
            return
        sql, parameters = self._driver_statement(statement).bound(values)
        with _Driver(connection.connection.driver_connection, sql, parameters) as cursor:
            # Each `fetchmany` starts the statement's clock again (`budget._Cursor`).
            yield iter(functools.partial(cursor.fetchmany, BATCH), [])

    def list_keys(self, user_id: str | None = None) -> list[ApiKey]:
        statement = select(*_KEY_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)
        if user_id is not None:
            statement = statement.where(api_keys.c.user_id == user_id)
        with self._read() as connection:
            return [_key(row) for row in connection.execute(statement)]

    def revoke_key(self, key_id: str | None, digest: str | None, now: int) -> ApiKey | None:
        which = api_keys.c.id == key_id if digest is None else api_keys.c.digest == digest
        with self._write() as connection:
            connection.execute(
                update(api_keys)
                .where(which, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = connection.execute(select(*_KEY_COLUMNS).where(which)).one_or_none()
        return None if row is None else _key(row)

    def touch_key(self, key_id: str, now: int) -> None:
        with self._write() as connection:
            connection.execute(_TOUCH_KEY, {"key_id": key_id, "now": now})

    # -- web sessions ----------------------------------------------------------------------------

    def add_web_session(self, digest: str, key_id: str, created_at: int, expires_at: int) -> None:
        with self._write() as connection:
            connection.execute(delete(web_sessions).where(_W.expires_at <= created_at))
            connection.execute(
                insert(web_sessions).values(
                    digest=digest, key_id=key_id, created_at=created_at, expires_at=expires_at
                )
            )

    def web_session(self, digest: str, now: int) -> WebSession | None:
        with self._read(single=True) as connection:
            row = connection.execute(_WEB_SESSION, {"digest": digest, "now": now}).one_or_none()
        if row is None:
            return None
        width = len(_KEY_COLUMNS)
        return WebSession(_key(row[:width]), created_at=row[width], expires_at=row[width + 1])

    def delete_web_session(self, digest: str) -> None:
        with self._write() as connection:
            connection.execute(delete(web_sessions).where(_W.digest == digest))

    # -- lifecycle -------------------------------------------------------------------------------

    def is_ready(self) -> bool:
        try:
            with self._read() as connection:
                return migrations.is_current(connection)
        except Exception:
            return False

    def connection_limit(self) -> int | None:
        with self._read(single=True) as connection:
            return self.dialect.connection_limit(connection)

    def serve(self, checkpoint_seconds: float = checkpoints.SECONDS) -> None:
        # A database in a file: its WAL is checkpointed apart (`checkpoints`).
        if self._file is not None and self._checkpoints is None:
            self._checkpoints = checkpoints.Checkpoints(self._file, self.writer, checkpoint_seconds)

    def close(self) -> None:
        if self._scanner is not None:
            self._scanner.close()
        if self._batch is not None:
            self._batch.close()
        if self._checkpoints is not None:
            self._checkpoints.close()
            self._checkpoints = None
        self.engine.dispose()
        self.writer.dispose()
        if self._inline is not None:
            with self._inline_lock:
                if self._held is not None:
                    self._held.close()
                    self._held = None
            self._inline.dispose()

    # -- helpers ---------------------------------------------------------------------------------

    def _inline_connection(self) -> Connection:
        """`quickly`'s connection (only ever used with `_inline_lock` held)."""
        if self._held is None or self._held.invalidated:
            assert self._inline is not None
            if self._held is not None:
                self._held.close()
            try:
                self._held = self._inline.connect()
            except Exception as exc:
                raise self.dialect.translate(exc) from exc
        return self._held

    def _quick(self) -> _Quick | None:
        quick: _Quick | None = getattr(self._local, "quick", None)
        return quick

    def _read(self, *, single: bool = False) -> _Transaction:
        # A snapshot: a page's ids and its conversations, read by two statements, agree. One
        # statement (`single`) is a snapshot by itself, and needs no transaction around it.
        quick = self._quick()
        if quick is None:
            return _Transaction(self.engine, self.dialect, write=False, single=single)
        return _Transaction(
            self._inline_connection(),
            self.dialect,
            write=False,
            single=single,
            deadline=quick.deadline,
        )

    def _write(self, *, single: bool = False) -> _Transaction:
        if self._quick() is not None:
            raise NotQuick
        return _Transaction(self.writer, self.dialect, write=True, single=single)

    def _write_on(self, connection: Connection) -> _Transaction:
        """A write transaction on `connection`, the writer's, checked out (`_write(single=True)`)
        and left so."""
        return _Transaction(connection, self.dialect, write=True)

    def _small_write(self, work: Callable[[Connection], _T]) -> _T:
        """`work` in a transaction of its own, or in a batch's (see `batching`).

        `work` raises the API's errors (NotFound, Forbidden) only when it has written nothing.
        """
        if (quick := self._quick()) is not None:
            if self._batch is None or not quick.queueable:
                raise NotQuick
            raise Queued(self._batch.queue(work))
        if self._batch is not None:
            return self._batch.run(work)
        with self._write() as connection:
            return work(connection)

    def _page(
        self, connection: Connection, owner: str, query: Query
    ) -> tuple[_Shape, dict[str, Any]]:
        """The shape of `query` (its statements are built once per shape), and its values."""
        searches = [self._search(connection, c) for c in query.conditions]
        shape: _Shape = (
            tuple(
                (c.field, c.op, c.value is None, search is not None)
                for c, search in zip(query.conditions, searches, strict=True)
            ),
            query.sort,
            query.descending,
            query.limit is not None,
            tuple((c.field, c.op, c.value is None) for c in query.any_of),
        )
        values: dict[str, Any] = {"owner": owner, "offset": query.offset}
        if query.limit is not None:
            values["limit"] = query.limit
        for index, condition in enumerate(query.conditions):
            self._bind(values, f"value_{index}", condition)
            if (search := searches[index]) is not None:
                values[f"search_{index}"] = search
        for index, condition in enumerate(query.any_of):
            self._bind(values, f"any_{index}", condition)
        return shape, values

    def _bind(self, values: dict[str, Any], name: str, condition: Condition) -> None:
        value = condition.value
        if isinstance(value, str) and condition.op is Op.REGEX:
            values[name] = self.dialect.pattern(value)
        elif value is not None:
            values[name] = value

    def _build_page(self, shape: _Shape, whole: bool) -> Select[Any]:
        """The page of `shape`: its conversations' rows if `whole`, else their ids."""
        sort, descending, limited = shape[1], shape[2], shape[3]
        statement = (
            select(*(_CONVERSATION_COLUMNS if whole else (_C.id,)))
            .where(*self._where(shape))
            .order_by(*self._order(conversations.c[sort.column], _C.id, descending=descending))
            # BIGINT, as PostgreSQL reads them: one statement takes any value, where SQLAlchemy
            # would type a literal INTEGER or BIGINT by its size.
            .offset(bindparam("offset", type_=BigInteger))
        )
        return statement.limit(bindparam("limit", type_=BigInteger)) if limited else statement

    def _where(self, shape: _Shape, *, owned: bool = True) -> list[ColumnElement[bool]]:
        """The conditions of `shape` on the conversations, values bound as `_page` names them:
        every statement that selects by a `Query` (`find`'s page, `delete_matching`) builds its
        WHERE here. Not `owned`: every owner's conversations, `owner` is not bound."""
        conditions, alternatives = shape[0], shape[4]
        clauses = [
            self._clause(
                field,
                op,
                None if null else f"value_{index}",
                f"search_{index}" if searched else None,
                owned=owned,
            )
            for index, (field, op, null, searched) in enumerate(conditions)
        ]
        if alternatives:
            # `Query.any_of`: at least one holds.
            clauses.append(
                or_(
                    *(
                        self._clause(field, op, None if null else f"any_{index}", owned=owned)
                        for index, (field, op, null) in enumerate(alternatives)
                    )
                )
            )
        return [_C.owner_id == _OWNER, *clauses] if owned else clauses

    def _build_count(self, shape: _Shape) -> Select[Any]:
        return select(func.count()).select_from(conversations).where(*self._where(shape))

    def _planned(self, connection: Connection, query: Query) -> AbstractContextManager[None]:
        """Where `query` has a regex filter, its statements are planned for their values."""
        if any(condition.op is Op.REGEX for condition in query.conditions):
            return self.dialect.planned_for_values(connection)
        return nullcontext()

    def _all_rows(
        self,
        connection: Connection,
        query: Query,
        shape: _Shape,
        statement: ExecutableReturnsRows,
        values: Mapping[str, Any],
    ) -> Sequence[Any]:
        """Every row of `statement`, the statement of `query`: from the search process where it
        reads every message for a regex (`_scan`), else here."""
        with self._scan(connection, query, shape) as scan:
            if scan is None:
                return self._rows(connection, statement, values)
            return scan(statement, values)

    @contextmanager
    def _scan(self, connection: Connection, query: Query, shape: _Shape) -> Iterator[_Scan | None]:
        """Around the statement of `query`: where a regex filter on messages reads every message
        of the owner (the search index could not narrow it), the statement has the scan budget,
        and running out of it is a `ScanTimeout` that says how to narrow the search.

        On SQLite such a statement runs in the scanning process (`scanner`), one at a time, and
        never in `quickly`: yields how to run it there (None: run it here, as any statement). A
        scan waits for the one running within its budget.
        """
        scanned = [
            index
            for index, (condition, (_field, op, null, searched)) in enumerate(
                zip(query.conditions, shape[0], strict=True)
            )
            if op is Op.REGEX and condition.field.on_message and not null and not searched
        ]
        if not scanned or not self.dialect.narrows_search:
            yield None
            return
        if self._quick() is not None:
            raise NotQuick
        index = scanned[0]
        pattern = str(query.conditions[index].value)

        def too_long() -> ScanTimeout:
            assert self.scan_timeout_ms is not None
            return ScanTimeout(_scanned_too_long(index, pattern, self.scan_timeout_ms))

        if self._scanner is not None:
            self._scanner.start()  # before the budget: the first scan starts the process
        wait = math.inf if self.scan_timeout_ms is None else self.scan_timeout_ms / 1000
        scan_deadline = time.monotonic() + wait
        if not self._scanning.acquire(timeout=-1 if wait == math.inf else wait):
            raise too_long()
        try:
            if self._scanner is None:
                with self._scanned_here(connection, scan_deadline, too_long):
                    yield None
                return
            # The statement's own budget, from now, bounds it too (`budget`).
            own = budget.seconds(connection)
            deadline = min(scan_deadline, time.monotonic() + own)
            yield functools.partial(
                self._scanned,
                self._scanner,
                deadline,
                too_long if deadline == scan_deadline else None,
            )
        finally:
            self._scanning.release()

    @contextmanager
    def _scanned_here(
        self, connection: Connection, deadline: float, too_long: Callable[[], ScanTimeout]
    ) -> Iterator[None]:
        """A scan on `connection` (a database no other process can open), within `deadline`."""
        if deadline == math.inf:
            yield
            return
        left = max(1, round((deadline - time.monotonic()) * 1000))
        with budget.at_most(connection, left) as tighter:
            try:
                yield
            except DBAPIError as exc:
                if not (tighter and isinstance(self.dialect.translate(exc), QueryTimeout)):
                    raise
                raise too_long() from exc

    def _scanned(
        self,
        scanner: Scanner,
        deadline: float,
        too_long: Callable[[], ScanTimeout] | None,
        statement: ExecutableReturnsRows,
        values: Mapping[str, Any],
    ) -> list[tuple[Any, ...]]:
        """The rows of `statement` from the scanning process, by `deadline`: past it a
        ScanTimeout (`too_long`, where the scan budget set it) or the statement timeout's."""
        assert self._driver_statement is not None
        sql, parameters = self._driver_statement(statement).bound(values)
        try:
            return scanner.rows(sql, parameters, deadline)
        except sqlite3.Error as exc:
            error = DBAPIError.instance(sql, parameters, exc, sqlite3.Error)
            if too_long is not None and isinstance(self.dialect.translate(error), QueryTimeout):
                raise too_long() from exc
            raise error from exc

    def _search(self, connection: Connection, condition: Condition) -> str | None:
        """The search index's query for `condition`'s candidates, where they are few.

        Few candidates are read one by one (`_clause`). Many, and the literal is common: the
        owner's conversations are read in the page's order, as without an index, and a page
        fills after a few of them (a common literal usually matches often); RE2 then judges
        every message read. Measured in bench/search.py. On PostgreSQL the planner makes that
        choice itself (`Dialect.narrows_search`).
        """
        column, value = condition.field.column, condition.value
        if not self.dialect.narrows_search or condition.op is not Op.REGEX:
            return None
        if not isinstance(value, str) or not condition.field.on_message or column not in SEARCHED:
            return None
        if (literals := required(value)) is None:
            return None
        search = self.dialect.search(column, literals)
        return search if self.dialect.few_candidates(connection, column, search) else None

    def _clause(
        self,
        field: Field,
        op: Op,
        name: str | None,
        search: str | None = None,
        *,
        owned: bool = True,
    ) -> ColumnElement[bool]:
        """The condition on `field`, its value bound as `name` (None: the value is null).

        `search` names the bound search-index query whose candidates drive a regex filter;
        `owned`: the candidates are the bound owner's only.
        """
        if not field.on_message:
            return self._compare(conversations.c[field.column], op, name)
        column = messages.c[field.column]
        judged = self._compare(column, op, name)
        if search is not None:
            # The owner's messages among the candidates, judged by the regex, give the
            # conversations: the same ones `exists` below finds by reading every message.
            # Not `owned`, every owner's candidates: an id is one conversation's, whoever owns
            # it (`upsert` replaces by id alone).
            mine = (self.dialect.not_indexed(_M.owner_id) == _OWNER,) if owned else ()
            matching = select(_M.conversation_id).where(
                self.dialect.candidates(field.column, bindparam(search)), *mine, judged
            )
            return _C.id.in_(matching)
        of_this_conversation = (_M.owner_id == _C.owner_id, _M.conversation_id == _C.id)
        if op is Op.NE:
            # A message filter matches when any message matches; `!=` when none is equal.
            equal = self._compare(column, Op.EQ, name)
            return ~exists().where(*of_this_conversation, equal)
        return exists().where(*of_this_conversation, judged)

    def _compare(self, column: ColumnElement[Any], op: Op, name: str | None) -> ColumnElement[bool]:
        if name is None:
            return column.is_(None) if op is Op.EQ else column.is_not(None)
        value = bindparam(name, type_=column.type)
        if op is Op.NE:
            return column.is_distinct_from(value)
        if op is Op.REGEX:
            return self.dialect.regex(column, value)
        return _COMPARISONS[op](column, value)

    def _order(self, *columns: ColumnElement[Any], descending: bool) -> list[UnaryExpression[Any]]:
        terms = []
        for column in columns:
            term = column.desc() if descending else column.asc()
            # Only where nulls can occur: PostgreSQL reads a NOT NULL column's index backwards
            # for `DESC`, but not for `DESC NULLS LAST`, which would sort every match instead.
            if self.dialect.explicit_null_order and getattr(column, "nullable", True):
                term = term.nulls_last() if descending else term.nulls_first()
            terms.append(term)
        return terms


class _Quick:
    """A call within `SqlStore.quickly`: when its reads must stop, and whether its write may be
    handed to the writer."""

    __slots__ = ("deadline", "queueable")

    def __init__(self, deadline: float, queueable: bool) -> None:
        self.deadline = deadline
        self.queueable = queueable


# The store's methods that are one small write and nothing after it: `quickly` may answer them
# with the write's own future.
_QUEUEABLE = frozenset({"get", "delete"})


class _Transaction:
    """A connection in one transaction: committed on success, rolled back on any exception.

    Database failures leave it as the API's errors (`Dialect.translate`): an unreachable
    database is a 503, a statement past its timeout a 400. With a `deadline` (SQLite's reads in
    `quickly`), no statement runs past it.
    """

    def __init__(
        self,
        engine: Engine | Connection,
        dialect: Dialect,
        *,
        write: bool,
        single: bool = False,
        deadline: float | None = None,
    ) -> None:
        # A Connection is one kept checked out (`SqlStore._held`, the writer's during a batch):
        # used, and left open.
        self._engine = engine
        self._dialect = dialect
        self._write = write
        self._single = single
        self._deadline = deadline
        self._connection: Connection | None = None
        self._capped: AbstractContextManager[None] | None = None

    def __enter__(self) -> Connection:
        engine = self._engine
        try:
            connection = engine if isinstance(engine, Connection) else engine.connect()
        except Exception as exc:
            raise self._dialect.translate(exc) from exc
        try:
            options = self._dialect.single if self._single else {}
            if self._write:
                connection = connection.execution_options(write=True, **options)
            else:
                connection = connection.execution_options(**(options or self._dialect.snapshot))
            if not self._single or self._dialect.single_begins:
                connection.begin()
            elif self._write:
                # A lone statement, committed as it ends (SQLite's autocommit).
                budget.writing(connection)
        except Exception as exc:
            # A connection that could not begin (the database locked past its wait) goes back
            # to its pool; one kept checked out stays with its keeper.
            if connection is not engine:
                connection.close()
            raise self._dialect.translate(exc) from exc
        self._connection = connection
        if self._deadline is not None:
            self._capped = budget.until(connection, self._deadline)
            self._capped.__enter__()
        return connection

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        connection = self._connection
        assert connection is not None
        if self._capped is not None:
            self._capped.__exit__(None, None, None)
        try:
            # A single read not begun (`Dialect.single_begins`) is in a transaction only if a
            # statement through SQLAlchemy began one.
            if connection.in_transaction():
                if error is None:
                    connection.commit()
                else:
                    connection.rollback()
        except Exception as exc:
            if error is None:
                raise self._dialect.translate(exc) from exc
            # The connection failed along with the work; the first error is the one to report.
        finally:
            if not isinstance(self._engine, Connection):
                connection.close()
        if (
            isinstance(error, Exception)
            and (translated := self._dialect.translate(error)) is not error
        ):
            raise translated from error


def _scanned_too_long(index: int, pattern: str, milliseconds: int) -> str:
    """The detail of a `ScanTimeout`: why the regex of filter `index` read every message, and
    what narrows it."""
    why = (
        "it has no literal of 3 or more characters for the search index to look up"
        if required(pattern) is None
        else "its literals are in too many messages for the search index to narrow it"
    )
    return (
        f"filters[{index}]: the regex {short(pattern)} reads every one of your messages ({why}) "
        f"and ran past {milliseconds} ms; add a literal that few messages hold (a rarer word, "
        "3 or more characters), or narrow the search with other filters"
    )


def _missing(connection: Connection, conversation_id: str) -> AyetoError:
    """Forbidden if the id is someone else's conversation, NotFound if it is nobody's."""
    taken = connection.execute(_OWNER_OF, {"conversation_id": conversation_id})
    if taken.first() is None:
        return NotFound(conversation_id)
    return Forbidden(f"conversation {conversation_id} belongs to another user")


class _Stamp(Together[Document]):
    """A `get`'s `accessed` stamp, which returns the conversation with it."""

    __slots__ = ("conversation_id", "now", "owner", "store")

    def __init__(self, store: SqlStore, owner: str, conversation_id: str, now: int) -> None:
        self.store = store
        self.owner = owner
        self.conversation_id = conversation_id
        self.now = now

    def __call__(self, connection: Connection) -> Document:
        # The stamp returns the conversation, its messages with it. At most one row:
        # (owner_id, id) is the key.
        values = {"owner": self.owner, "conversation_id": self.conversation_id, "now": self.now}
        rows = self.store._rows(connection, _GET, values)
        if not rows:
            raise _missing(connection, self.conversation_id)
        return _conversation(rows[0])

    @classmethod
    def all(cls, connection: Connection, calls: Sequence[_Stamp]) -> list[Document | AyetoError]:
        # One after another, the stamps of one conversation leave the last one's on its row, and
        # each answer has its own: so its row is stamped once, with the last.
        last = {(call.owner, call.conversation_id): call.now for call in calls}
        stamps = orjson.dumps([[owner, id_, now] for (owner, id_), now in last.items()]).decode()
        rows = calls[0].store._rows(connection, _GET_MANY, {"stamps": stamps})
        stamped = {(row[_OWNER_AT], row[0]): row for row in rows}
        answers: list[Document | AyetoError] = []
        for call in calls:
            row = stamped.get((call.owner, call.conversation_id))
            if row is None:
                answers.append(_missing(connection, call.conversation_id))
                continue
            document = _conversation(row)
            document["accessed"] = {"user_id": call.owner, "timestamp": call.now}
            answers.append(document)
        return answers


# A scan's statement run in the scanning process: its rows (`SqlStore._scan`).
_Scan = Callable[[ExecutableReturnsRows, Mapping[str, Any]], list[tuple[Any, ...]]]
# A scan waits for a write that holds the file for this long (SQLite's readers seldom wait).
SCANNER_BUSY_TIMEOUT_MS = 10_000


class _DriverStatement:
    """A statement compiled once for SQLite's driver (`_Driver`): its SQL, and its parameters
    from a dict of values, in their order (the driver's `?` placeholders).

    SQLAlchemy's execution of a statement, its result and row objects cost several times what
    SQLite takes to run the statements of a request. Only statements whose values and columns
    SQLAlchemy passes through unconverted (text, integers) are run so: the driver's rows are then
    the values SQLAlchemy's would hold. Values stay bound, those bound in the statement too. An
    expanding parameter (`IN` a list) has a placeholder per item, its SQL kept per length:
    measured faster than one JSON array read by `json_each`, the most for one item (`get`).
    """

    __slots__ = ("_bound", "_expanding", "_names", "_sql", "_sql_for")

    def __init__(self, statement: ExecutableReturnsRows, dialect: SqlDialect) -> None:
        compiled = statement.compile(dialect=dialect)
        binds = compiled.binds
        converted = [
            bind.key for bind in binds.values() if bind.type.bind_processor(dialect) is not None
        ] + [
            str(column)
            for column in statement.exported_columns
            if column.type.result_processor(dialect, None) is not None
        ]
        if dialect.paramstyle != "qmark" or compiled.literal_execute_params or converted:
            raise ValueError(f"not for SQLite's driver as it is: {converted or statement}")
        self._names = tuple(compiled.positiontup or ())
        # A value bound in the statement itself (not one of `values`'): bound as SQLAlchemy would.
        self._bound = {
            name: bind.effective_value for name, bind in binds.items() if not bind.required
        }
        self._expanding = frozenset(bind.key for bind in compiled.post_compile_params)
        self._sql = compiled.string
        self._sql_for = functools.lru_cache(maxsize=BATCH)(self._expand)

    def _expand(self, lengths: tuple[int, ...]) -> str:
        sql = self._sql
        for name, length in zip(
            (name for name in self._names if name in self._expanding), lengths, strict=True
        ):
            sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * length), 1)
        return sql

    def bound(self, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL and the driver's parameters for `values` (by the statement's names)."""
        if self._bound:
            values = {**self._bound, **values}
        if not self._expanding:
            return self._sql, [values[name] for name in self._names]
        parameters: list[Any] = []
        lengths = []
        for name in self._names:
            if name in self._expanding:
                items = values[name]
                parameters.extend(items)
                lengths.append(len(items))
            else:
                parameters.append(values[name])
        return self._sql_for(tuple(lengths)), parameters


class _Driver:
    """A cursor of SQLite's driver `connection` that has executed `sql`: budget's `_Cursor`, so
    the statement, and each `fetchmany`, start the clock. Within, the driver's errors are raised
    as SQLAlchemy raises them (`Dialect.translate` reads those); the cursor is closed after.

    A class, not a generator: `@contextmanager` costs 2 µs a statement.
    """

    __slots__ = ("_cursor", "_parameters", "_sql")

    def __init__(self, connection: Any, sql: str, parameters: Sequence[Any]) -> None:
        self._cursor: sqlite3.Cursor = connection.cursor()
        self._sql = sql
        self._parameters = parameters

    def __enter__(self) -> sqlite3.Cursor:
        try:
            return self._cursor.execute(self._sql, self._parameters)
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        self._cursor.close()
        if isinstance(error, sqlite3.Error):
            raise DBAPIError.instance(self._sql, self._parameters, error, sqlite3.Error) from error


def render_messages(rows: Iterable[Sequence[Any]]) -> str:
    """A conversation's messages as the API answers them (a JSON array, what `messages_json`
    holds), from their rows in their order: each row a message's fields (`_MESSAGE_FIELDS`),
    `img_gen` as its stored JSON."""
    return orjson.dumps([_message(row) for row in rows]).decode()


def _message(row: Sequence[Any]) -> Document:
    id_, timestamp, role, content, reasoning, model, img_gen = row
    return {
        "id": id_,
        "timestamp": timestamp,
        "role": role,
        "content": content,
        "reasoning_content": reasoning,
        "model": model,
        # Stored as the exact JSON the response carries; embedded without parsing.
        "img_gen": None if img_gen is None else orjson.Fragment(img_gen),
    }


def _conversation(row: Sequence[Any]) -> Document:
    (
        id_,
        name,
        model,
        img_gen_model,
        summary,
        organization_id,
        assistant_id,
        owner_id,
        created_at,
        updated_by,
        updated_at,
        accessed_by,
        accessed_at,
        messages_json,
    ) = row
    return {
        "id": id_,
        "name": name,
        "model": model,
        "img_gen_model": img_gen_model,
        "summary": summary,
        "organization_id": organization_id,
        "assistant_id": assistant_id,
        # Stored as the exact JSON the response carries; embedded without parsing.
        "messages": orjson.Fragment(messages_json),
        "created": {"user_id": owner_id or None, "timestamp": created_at},
        "updated": {"user_id": updated_by, "timestamp": updated_at},
        "accessed": {"user_id": accessed_by, "timestamp": accessed_at},
    }


def _replace(connection: Connection, dialect: Dialect, documents: list[Document]) -> None:
    """Insert or replace (by id) `documents`, with their messages."""
    # The last of several documents with one id wins, as it would one at a time.
    latest = {document["id"]: document for document in documents}
    threads = [(d, _message_rows(d)) for d in latest.values()]
    connection.execute(delete(conversations).where(_C.id.in_(list(latest))))
    _insert(connection, conversations, [_row(d, thread) for d, thread in threads])
    message_rows = [m for _d, thread in threads for m in thread]
    if message_rows:
        with dialect.indexing(connection, len(message_rows)):
            _insert(connection, messages, message_rows)


def _row(document: Document, thread: list[dict[str, Any]]) -> dict[str, Any]:
    """The conversation's row, `thread` its message rows (`_message_rows`)."""
    created, updated, accessed = document["created"], document["updated"], document["accessed"]
    return {
        "owner_id": created["user_id"] or NOBODY,
        "id": document["id"],
        "name": document["name"],
        "model": document["model"],
        "img_gen_model": document["img_gen_model"],
        "summary": document["summary"],
        "organization_id": document["organization_id"],
        "assistant_id": document["assistant_id"],
        "created_at": created["timestamp"],
        "updated_by": updated["user_id"],
        "updated_at": updated["timestamp"],
        "accessed_by": accessed["user_id"],
        "accessed_at": accessed["timestamp"],
        "messages_json": render_messages(map(_FIELDS_OF_ROW, thread)),
    }


def _message_rows(document: Document) -> list[dict[str, Any]]:
    owner = document["created"]["user_id"] or NOBODY
    # Timestamp order, ties in the order given (sorted() is stable).
    ordered = sorted(messages_of(document), key=operator.itemgetter("timestamp"))
    return [
        {
            "owner_id": owner,
            "conversation_id": document["id"],
            "position": position,
            "id": message["id"],
            "timestamp": message["timestamp"],
            "role": message["role"],
            "content": message["content"],
            "reasoning_content": message["reasoning_content"],
            "model": message["model"],
            "img_gen": None
            if message["img_gen"] is None
            else orjson.dumps(message["img_gen"]).decode(),
        }
        for position, message in enumerate(ordered)
    ]


def _insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (alike dicts of column values) into `table`, as one executemany."""
    if connection.dialect.paramstyle != "qmark":
        # PostgreSQL's driver: SQLAlchemy sends the rows as multi-row INSERTs ("insertmanyvalues").
        connection.execute(insert(table), rows)
        return
    # SQLite's: the rows go to the driver as tuples. SQLAlchemy's processing of each row's
    # parameters cost an import more than SQLite's own inserting them.
    names = list(rows[0])
    quote = connection.dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) "
        f"VALUES ({', '.join('?' * len(names))})"
    )
    connection.exec_driver_sql(statement, [tuple(row[name] for name in names) for row in rows])


def _batched(items: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _key(row: Any) -> ApiKey:
    """The key in a row of `_KEY_COLUMNS` (an SQLAlchemy row, or the driver's tuple)."""
    id_, user_id, name, scopes, created_at, last_used_at, expires_at, revoked_at, rate_limit = row
    return ApiKey(
        id=id_,
        user_id=user_id,
        name=name,
        scopes=tuple(scopes.split()),
        created_at=created_at,
        last_used_at=last_used_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
        rate_limit=rate_limit,
    )


# Every request reads its key's row, which changes seldom: the record of a row seen before is
# the one made then (it is immutable), not a new one each time.
_key_of_row = functools.lru_cache(maxsize=1024)(_key)

__all__ = ["SqlStore", "render_messages"]

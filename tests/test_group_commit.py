"""Concurrent `get`s and `delete`s share one transaction and one commit on SQLite (`batching`).

To make a batch certain rather than likely, the test holds SQLite's one writer connection while
the calls arrive, and lets it go once every call is waiting for it. On PostgreSQL each call keeps
its own transaction: the same calls give the same answers, with one commit per successful call.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from ayeto.api.services import Services
from ayeto.config import Settings
from ayeto.errors import Forbidden, NotFound, Unavailable
from ayeto.store import SqlStore, Store
from ayeto.store.dialects import UNAVAILABLE
from ayeto.store.sql import _Stamp
from tests.factories import ALICE, BOB, conversation, message, new_id

NOW = 1_800_000_000_000
Outcome = tuple[str, Any]


def plain(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def commits(store: SqlStore) -> list[int]:
    """A list that grows by one at each commit on the store's writer."""
    counted: list[int] = []
    event.listen(store.writer, "commit", lambda _connection: counted.append(1))
    return counted


@contextmanager
def all_at_once(store: SqlStore, calls: int) -> Iterator[None]:
    """On SQLite: the writer is held until `calls` calls wait for it, so they form one batch."""
    if store._batch is None:
        yield
        return
    held = store.writer.connect()
    try:
        yield
        waiting(store, calls)
    finally:
        held.close()


def waiting(store: SqlStore, calls: int) -> None:
    """Returns once `calls` calls wait for the writer of `store` (SQLite's)."""
    assert store._batch is not None
    deadline = time.monotonic() + 30
    while len(store._batch._waiting) < calls:
        assert time.monotonic() < deadline, "the calls did not all arrive"
        time.sleep(0.002)


def concurrently(store: SqlStore, calls: list[Callable[[], Any]]) -> list[Outcome]:
    with ThreadPoolExecutor(len(calls)) as pool:
        with all_at_once(store, len(calls)):
            futures = [pool.submit(call) for call in calls]
        return [outcome(future) for future in futures]


def outcome(future: Future[Any]) -> Outcome:
    try:
        return ("ok", plain(future.result(timeout=60)))
    except (NotFound, Forbidden, Unavailable) as exc:
        return (type(exc).__name__, exc.detail)


@pytest.fixture
def sql(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


def test_concurrent_gets_and_deletes_share_a_commit(sql: SqlStore) -> None:
    mine = [conversation(ALICE, messages=[message(content=f"m{i}")]) for i in range(8)]
    gone = [conversation(ALICE) for _ in range(3)]
    theirs = conversation(BOB)
    sql.upsert([*mine, *gone, theirs])
    unknown = new_id()
    counted = commits(sql)

    calls: list[Callable[[], Any]] = [
        *(lambda d=d, i=i: sql.get(ALICE, d["id"], NOW + i) for i, d in enumerate(mine)),
        *(lambda d=d: sql.delete(ALICE, d["id"]) for d in gone),
        lambda: sql.get(ALICE, theirs["id"], NOW),
        lambda: sql.get(ALICE, unknown, NOW),
        lambda: sql.delete(ALICE, unknown),
        lambda: sql.delete(ALICE, theirs["id"]),
    ]
    answers = concurrently(sql, calls)

    stamped = [
        d | {"accessed": {"user_id": ALICE, "timestamp": NOW + i}} for i, d in enumerate(mine)
    ]
    refused = f"conversation {theirs['id']} belongs to another user"
    assert answers == [
        *(("ok", d) for d in stamped),
        *(("ok", None) for _ in gone),
        ("Forbidden", refused),
        ("NotFound", f"not found, id: {unknown}"),
        ("NotFound", f"not found, id: {unknown}"),
        ("Forbidden", refused),
    ]
    # One commit for all 15 calls on SQLite; one per successful call on PostgreSQL.
    assert len(counted) == (1 if sql.dialect.name == "sqlite" else len(mine) + len(gone))
    # Stored, not only answered: the stamps, the deletes; the refused conversation untouched.
    assert plain(list(sql.export())) == sorted(
        [*stamped, theirs], key=lambda d: (d["created"]["user_id"], d["id"])
    )


def test_a_failed_commit_reaches_every_caller_of_its_batch(sql: SqlStore) -> None:
    documents = [conversation(ALICE) for _ in range(6)]
    sql.upsert(documents)

    def fail(connection: Any) -> None:
        # As a commit that fails on an I/O error does: the transaction is rolled back.
        connection.connection.driver_connection.rollback()
        raise OperationalError("COMMIT", None, sqlite3.OperationalError("disk I/O error"))

    def fail_statement(*_: Any) -> None:
        raise OperationalError("UPDATE", None, Exception("server closed the connection"))

    # On PostgreSQL a `get` is one statement, committed as it runs (no COMMIT of its own): there
    # the failure is its statement's, before anything is written.
    failing = (
        ("commit", fail) if sql._batch is not None else ("before_cursor_execute", fail_statement)
    )
    event.listen(sql.writer, *failing)
    calls: list[Callable[[], Any]] = [
        *(lambda d=d: sql.get(ALICE, d["id"], NOW) for d in documents[:4]),
        *(lambda d=d: sql.delete(ALICE, d["id"]) for d in documents[4:]),
    ]
    answers = concurrently(sql, calls)
    event.remove(sql.writer, *failing)

    assert answers == [("Unavailable", UNAVAILABLE)] * 6
    # Nothing of the batch was written, and the writer serves the next calls.
    assert plain(list(sql.export())) == sorted(documents, key=lambda d: d["id"])
    got = sql.get(ALICE, documents[0]["id"], NOW)
    assert plain(got)["accessed"] == {"user_id": ALICE, "timestamp": NOW}


def test_a_writer_that_cannot_be_had_fails_every_waiting_caller(sql_store: SqlStore) -> None:
    documents = [conversation(ALICE) for _ in range(3)]
    sql_store.upsert(documents)
    assert sql_store._batch is not None
    held = sql_store.writer.connect()  # longer than the pool's timeout
    try:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(sql_store.get, ALICE, d["id"], NOW) for d in documents]
            answers = [outcome(future) for future in futures]
    finally:
        held.close()
    assert answers == [("Unavailable", "the database is busy; try again shortly")] * 3
    assert plain(sql_store.get(ALICE, documents[0]["id"], NOW))["accessed"]["timestamp"] == NOW


@pytest.fixture
def sql_store(sqlite_url: str) -> Iterator[SqlStore]:
    from ayeto.config import ConnectionOptions
    from ayeto.store import open_store

    opened = open_store(sqlite_url, ConnectionOptions(pool_timeout=0.2))
    assert isinstance(opened, SqlStore)
    yield opened
    opened.close()


def test_callers_after_a_batch_lead_the_next(sql: SqlStore) -> None:
    """Many rounds of many threads: every call is answered, none is left waiting."""
    documents = [conversation(ALICE) for _ in range(16)]
    sql.upsert(documents)
    barrier = threading.Barrier(16)

    def reader(document: dict[str, Any]) -> int:
        barrier.wait()
        for round_ in range(25):
            sql.get(ALICE, document["id"], round_)
        return round_

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(reader, documents, timeout=120)) == [24] * 16
    assert {d["accessed"]["timestamp"] for d in sql.export()} == {24}


@contextmanager
def write_lock_held_elsewhere(store: SqlStore, sqlite_url: str) -> Iterator[None]:
    """Within it, another connection holds SQLite's write lock, as another process's write
    does, and the store's writer waits for no lock (10 s by default)."""
    with store.writer.connect() as writer:
        writer.exec_driver_sql("PRAGMA busy_timeout = 0")
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_write_lock_held_elsewhere_is_a_503_and_the_writer_goes_on(
    sql_store: SqlStore, sqlite_url: str
) -> None:
    documents = [conversation(ALICE) for _ in range(2)]
    sql_store.upsert(documents)
    with write_lock_held_elsewhere(sql_store, sqlite_url):
        with pytest.raises(Unavailable) as refused:
            sql_store.delete(ALICE, documents[0]["id"])
        assert refused.value.detail == UNAVAILABLE
    sql_store.delete(ALICE, documents[0]["id"])
    assert [d["id"] for d in sql_store.export()] == [documents[1]["id"]]


def in_order(store: SqlStore, calls: list[Callable[[], Any]]) -> list[Outcome]:
    """The calls one after another on PostgreSQL; on SQLite in one batch, in this order (each
    is waiting for the held writer before the next is made)."""
    if store._batch is None:
        return [outcome(_done(call)) for call in calls]
    with ThreadPoolExecutor(len(calls)) as pool:
        held = store.writer.connect()
        try:
            futures = []
            for count, call in enumerate(calls, start=1):
                futures.append(pool.submit(call))
                waiting(store, count)
        finally:
            held.close()
        return [outcome(future) for future in futures]


def _done(call: Callable[[], Any]) -> Future[Any]:
    future: Future[Any] = Future()
    try:
        future.set_result(call())
    except Exception as exc:
        future.set_exception(exc)
    return future


def test_gets_in_one_batch_answer_as_one_after_another_would(sql: SqlStore) -> None:
    first, second, gone = (conversation(ALICE, messages=[message()]) for _ in range(3))
    theirs = conversation(BOB)
    sql.upsert([first, second, gone, theirs])
    unknown = new_id()
    statements: list[str] = []
    if sql._batch is not None:
        # The writer's one connection, as the batch will have it: its statements are traced.
        with sql.writer.connect() as writer:
            driver = writer.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            driver.set_trace_callback(statements.append)

    answers = in_order(
        sql,
        [
            lambda: sql.get(ALICE, first["id"], NOW),
            lambda: sql.get(ALICE, first["id"], NOW + 1),
            lambda: sql.get(ALICE, second["id"], NOW + 2),
            lambda: sql.get(ALICE, gone["id"], NOW + 3),
            lambda: sql.delete(ALICE, gone["id"]),
            lambda: sql.get(ALICE, gone["id"], NOW + 4),
            lambda: sql.get(ALICE, theirs["id"], NOW + 5),
            lambda: sql.get(ALICE, unknown, NOW + 6),
            lambda: sql.get(ALICE, second["id"], NOW + 7),
        ],
    )

    def stamped(document: dict[str, Any], at: int) -> Outcome:
        return ("ok", plain(document) | {"accessed": {"user_id": ALICE, "timestamp": at}})

    assert answers == [
        stamped(first, NOW),
        stamped(first, NOW + 1),
        stamped(second, NOW + 2),
        stamped(gone, NOW + 3),
        ("ok", None),
        ("NotFound", f"not found, id: {gone['id']}"),
        ("Forbidden", f"conversation {theirs['id']} belongs to another user"),
        ("NotFound", f"not found, id: {unknown}"),
        stamped(second, NOW + 7),
    ]
    # Stored: each conversation with the stamp of the last get of it.
    assert plain(list(sql.export())) == sorted(
        [stamped(first, NOW + 1)[1], stamped(second, NOW + 7)[1], plain(theirs)],
        key=lambda d: (d["created"]["user_id"], d["id"]),
    )
    if sql._batch is not None:
        # One UPDATE for each run of gets between the delete: the four before it, the four after.
        updates = [s for s in statements if s.lstrip().startswith(("WITH", "UPDATE"))]
        assert len(updates) == 2, updates
        assert all("json_each" in update for update in updates)


def test_a_batch_queued_from_an_event_loop_wakes_it_once(sql_store: SqlStore) -> None:
    documents = [conversation(ALICE) for _ in range(5)]
    sql_store.upsert(documents)
    assert sql_store._batch is not None
    batch = sql_store._batch
    wakes: list[int] = []

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            wakes.append(1)
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
        with all_at_once(sql_store, len(documents)):
            futures = [
                batch.queue(_Stamp(sql_store, ALICE, d["id"], NOW + i))
                for i, d in enumerate(documents)
            ]
        return [plain(document) for document in await asyncio.gather(*futures)]

    answers = asyncio.run(main())
    assert answers == [
        plain(d) | {"accessed": {"user_id": ALICE, "timestamp": NOW + i}}
        for i, d in enumerate(documents)
    ]
    assert wakes == [1]


def test_a_cancelled_get_leaves_its_stamp_and_its_batch_to_the_others(
    sql_store: SqlStore,
) -> None:
    documents = [conversation(ALICE) for _ in range(2)]
    sql_store.upsert(documents)
    shared = Services.of(sql_store, Settings())

    async def main() -> tuple[bool, Any]:
        with all_at_once(sql_store, 2):
            cancelled, kept = (
                asyncio.create_task(shared.call(sql_store.get, ALICE, d["id"], NOW + i))
                for i, d in enumerate(documents)
            )
            await asyncio.sleep(0)  # both are handed to the writer, which is held
            cancelled.cancel()
            await asyncio.sleep(0)
        return cancelled.cancelled(), plain(await kept)

    assert asyncio.run(main()) == (
        True,
        plain(documents[1]) | {"accessed": {"user_id": ALICE, "timestamp": NOW + 1}},
    )
    # The cancelled caller's stamp was written with the batch all the same.
    assert {d["id"]: d["accessed"]["timestamp"] for d in sql_store.export()} == {
        documents[0]["id"]: NOW,
        documents[1]["id"]: NOW + 1,
    }


def test_stamps_with_the_write_lock_held_elsewhere_are_a_503_and_the_writer_goes_on(
    sql_store: SqlStore, sqlite_url: str
) -> None:
    # As the delete above, for a batch of stamps alone: one statement without a transaction.
    documents = [conversation(ALICE) for _ in range(2)]
    sql_store.upsert(documents)
    calls: list[Callable[[], Any]] = [
        functools.partial(sql_store.get, ALICE, d["id"], NOW) for d in documents
    ]
    with write_lock_held_elsewhere(sql_store, sqlite_url):
        assert in_order(sql_store, calls) == [("Unavailable", UNAVAILABLE)] * 2
    # Nothing was stamped, and the next stamps are.
    assert {d["accessed"]["timestamp"] for d in sql_store.export()} == {
        d["accessed"]["timestamp"] for d in documents
    }
    assert plain(sql_store.get(ALICE, documents[0]["id"], NOW + 1))["accessed"]["timestamp"] == (
        NOW + 1
    )

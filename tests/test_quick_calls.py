"""Store calls on the event loop (`Store.quickly`, through `Services.call`): SQLite's reads are
answered right there within a short budget, a read past it is made again in a worker thread with
the same answer, a write never happens on the loop (a `get`'s stamp goes to the writer thread and
is awaited), and PostgreSQL's calls all go to worker threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from ayeto.api.services import Services
from ayeto.auth import create_key, digest
from ayeto.config import ConnectionOptions, Settings
from ayeto.errors import NotFound
from ayeto.query import parse_query
from ayeto.store import Document, SqlStore, Store, open_store
from ayeto.store.base import NotQuick, Queued
from tests.factories import ALICE, BOB, conversation, message

NOW = 1_800_000_000_000
# Enough messages that reading them all takes SQLite far more than one progress-handler step
# (1,000 virtual-machine instructions): with no budget left, such a read is always stopped.
MANY = 300
# Found only in the last of them ("line 290" on), and without a literal the search index could
# look up: the read judges every message before it finds one.
LATE = r"29\d"


@pytest.fixture
def sql(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


def filled(store: SqlStore) -> list[str]:
    """ALICE's conversations (the newest first), one of them long; one of BOB's."""
    documents = [
        conversation(ALICE, name=f"chat {n}", updated={"user_id": ALICE, "timestamp": 1000 + n})
        for n in range(5)
    ]
    documents[0]["messages"] = [message(1000 + n, content=f"line {n}") for n in range(MANY)]
    store.upsert([*documents, conversation(BOB)])
    return [document["id"] for document in reversed(documents)]


def on_the_loop(shared: Services, function: Callable[..., Any], *args: Any) -> tuple[Any, bool]:
    """`shared.call(function, *args)` from an event loop: its answer, and whether the store's
    work ran on the loop's own thread."""
    threads: list[int] = []

    def traced(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return function(*args)

    async def request() -> tuple[Any, bool]:
        answer = await shared.call(traced, *args)
        return answer, threads[-1] == threading.get_ident()

    return asyncio.run(request())


def plain(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def found_ids(store: Store, body: dict[str, Any]) -> list[str]:
    return [d["id"] for batch in store.find(ALICE, parse_query(body)) for d in batch]


def named(store: SqlStore) -> list[str]:
    """MANY conversations of ALICE's more, named `name N`: a regex on names reads them all."""
    documents = [conversation(ALICE, name=f"name {n}") for n in range(MANY)]
    store.upsert(documents)
    return [document["id"] for document in documents]


def test_a_quick_read_is_answered_on_the_loop_and_a_slow_one_in_a_thread(sql: SqlStore) -> None:
    ids = named(sql)
    shared = Services.of(sql, Settings())
    body = {"filters": [["name", "regex", "^name 299$"]]}
    expected = found_ids(sql, body)
    assert expected == [ids[-1]]

    # The first call of a statement on the loop's connection compiles it, which may take the
    # whole budget; once compiled, SQLite answers at once. PostgreSQL's every call waits on the
    # network, so none is made on the loop.
    on_the_loop(shared, found_ids, sql, body)
    answer, inline = on_the_loop(shared, found_ids, sql, body)
    assert answer == expected
    assert inline is (sql.dialect.name == "sqlite")

    # No budget left: SQLite stops a long read at its first look at the clock, and the call is
    # made again in a worker thread, with the same answer and no error.
    sql._inline_seconds = 0.0
    answer, inline = on_the_loop(shared, found_ids, sql, body)
    assert (answer, inline) == (expected, False)


def test_a_read_past_the_budget_is_not_a_timeout(sql: SqlStore) -> None:
    ids = named(sql)
    sql._inline_seconds = 0.0
    body = {"filters": [["name", "regex", "^name 299$"]]}
    with pytest.raises(NotQuick):
        sql.quickly(found_ids, sql, body)
    # Made again where it has its whole budget.
    assert found_ids(sql, body) == [ids[-1]]


def test_a_search_the_index_narrows_is_answered_on_the_loop_and_a_scan_never_is(
    sql: SqlStore,
) -> None:
    ids = filled(sql)
    shared = Services.of(sql, Settings())
    # Its literal is looked up in the search index: a few messages to judge.
    body = {"filters": [["messages.content", "regex", "line 29"]]}
    # No literal: every message is read (a scan, made in the search process).
    scan = {"filters": [["messages.content", "regex", LATE]]}
    assert found_ids(sql, body) == found_ids(sql, scan) == [ids[-1]]

    on_the_loop(shared, found_ids, sql, body)  # compiles the statement (see above)
    assert on_the_loop(shared, found_ids, sql, body) == (
        [ids[-1]],
        sql.dialect.name == "sqlite",
    )
    # However much of the inline budget is left.
    sql._inline_seconds = 60.0
    assert on_the_loop(shared, found_ids, sql, scan) == ([ids[-1]], False)
    if sql.dialect.name == "sqlite":
        with pytest.raises(NotQuick):
            sql.quickly(found_ids, sql, scan)


def test_a_write_never_runs_on_the_loop(sql: SqlStore) -> None:
    filled(sql)
    plain_key, key = create_key(sql, ALICE)
    shared = Services.of(sql, Settings())

    def touch() -> None:
        sql.touch_key(key.id, NOW)

    assert on_the_loop(shared, touch) == (None, False)
    found = sql.key_by_digest(digest(plain_key))
    assert found is not None
    assert found.last_used_at == NOW


def test_a_get_hands_its_stamp_to_the_writer_and_answers_once_it_is_committed(
    sql: SqlStore,
) -> None:
    ids = filled(sql)
    shared = Services.of(sql, Settings())
    before = plain(sql.get(ALICE, ids[0], NOW - 1))

    if sql.dialect.name == "sqlite":

        async def queued() -> Document:
            with pytest.raises(Queued) as handed:
                sql.quickly(sql.get, ALICE, ids[0], NOW)
            # A future of this loop, set once the stamp is committed.
            return await asyncio.wait_for(handed.value.future, 30)

        assert plain(asyncio.run(queued()))["accessed"] == {"user_id": ALICE, "timestamp": NOW}

    answer = asyncio.run(shared.call(sql.get, ALICE, ids[0], NOW + 1))
    assert plain(answer) == {**before, "accessed": {"user_id": ALICE, "timestamp": NOW + 1}}
    # Committed once answered: another connection reads the stamp, without stamping again.
    again = open_store(sql.engine.url.render_as_string(hide_password=False))
    try:
        stamped = [d for batch in again.find(ALICE, parse_query({})) for d in batch]
    finally:
        again.close()
    assert {d["id"]: d["accessed"]["timestamp"] for d in stamped}[ids[0]] == NOW + 1
    with pytest.raises(NotFound):
        asyncio.run(shared.call(sql.get, ALICE, "00000000-0000-4000-8000-000000000000", NOW))


def test_only_a_call_that_is_itself_the_write_is_handed_over(sql: SqlStore) -> None:
    ids = filled(sql)

    def get_then_more() -> str:
        return str(sql.get(ALICE, ids[0], NOW)["id"])

    if sql.dialect.name == "sqlite":
        # Its answer is not the write's: it must run whole, in a worker thread.
        with pytest.raises(NotQuick):
            sql.quickly(get_then_more)
    shared = Services.of(sql, Settings())
    assert on_the_loop(shared, get_then_more) == (ids[0], False)


def test_another_thread_in_quick_waits_for_nothing(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    assert isinstance(store, SqlStore)
    try:
        filled(store)
        inner: list[str] = []

        def nested() -> None:
            # The quick connection is taken: a second caller, from any thread, is not quick.
            worker = threading.Thread(target=lambda: inner.append(attempt(store)))
            worker.start()
            worker.join()

        store.quickly(nested)
        assert inner == ["not quick"]
        assert attempt(store) == "answered"
    finally:
        store.close()


def attempt(store: SqlStore) -> str:
    try:
        store.quickly(store.models, ALICE)
    except NotQuick:
        return "not quick"
    return "answered"


@pytest.fixture
def no_inline(sqlite_url: str) -> Iterator[SqlStore]:
    store = open_store(sqlite_url, ConnectionOptions(inline_read_ms=0))
    assert isinstance(store, SqlStore)
    yield store
    store.close()


def test_an_inline_budget_of_zero_runs_every_call_in_a_thread(no_inline: SqlStore) -> None:
    filled(no_inline)
    shared = Services.of(no_inline, Settings())
    answer, inline = on_the_loop(shared, no_inline.models, ALICE)
    assert (answer, inline) == (["gpt-4o"], False)

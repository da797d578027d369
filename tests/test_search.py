"""Regex filters on messages through the search index: exact answers, and an index in step."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import pytest

from ayeto.config import ConnectionOptions
from ayeto.query import parse_query
from ayeto.store import SqlStore, Store, dialects, migrations, open_store
from ayeto.store.schema import SEARCHED
from tests.conftest import at_revision, empty_postgres
from tests.factories import ALICE, BOB, conversation, message

TEXTS = (
    "Hello World",
    "hello world, again",
    'She said "NEAR" AND left * OR',
    "\u212aelvin and ma\u017f\u017fe",
    "ΣΟΦΊΑ and σοφίας",
    "Straße",
    "line one\nline two",
    "ab",
    None,
)


def _dataset() -> list[dict[str, Any]]:
    """One conversation per text for ALICE (its content, and its reverse as reasoning), and the
    same texts for BOB, whose conversations no filter of ALICE's may return."""
    return [
        conversation(
            owner,
            id=f"{index:08x}-0000-4000-8000-{owner[:12]}",
            messages=[
                message(content="nil to see"),
                message(content=content, reasoning_content=content and content[::-1]),
            ],
        )
        for owner in (ALICE, BOB)
        for index, content in enumerate(TEXTS)
    ]


def _found(store: Store, field: str, pattern: str) -> list[int]:
    """The indexes in TEXTS of ALICE's conversations whose `field` matches `pattern`."""
    body = {"filters": [[field, "regex", pattern]], "sort_key": "id"}
    ids = [d["id"] for batch in store.find(ALICE, parse_query(body)) for d in batch]
    assert all(id_.endswith(ALICE[:12]) for id_ in ids)
    return [int(id_[:8], 16) for id_ in ids]


@pytest.fixture
def filled(store: Store) -> Store:
    store.upsert(_dataset())
    return store


@pytest.fixture(params=["few", "many"])
def candidates(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches read the index's candidates (few of them), or the conversations in order with
    every message judged (many: here, as soon as there is one)."""
    if request.param == "many":
        monkeypatch.setattr(dialects, "FEW_CANDIDATES", 1)


@pytest.mark.usefixtures("candidates")
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("hello", [1]),
        ("(?i)hello", [0, 1]),
        ("(?i)HELLO WORLD", [0, 1]),
        ("World|again", [0, 1]),
        ("wor.d", [1]),
        ("(?i)kelvin", [3]),  # the Kelvin sign
        ("(?i)masse", [3]),  # the long s
        ("kelvin", []),
        ("(?i)σοφία", [4]),  # the final sigma
        ("(?i)straSSe", []),  # ß does not fold to ss
        ("Straße", [5]),
        ('"NEAR"', [2]),
        ("AND left \\* OR", [2]),
        ("NEAR", [2]),
        ("one\\nline", [6]),
        ("(?m)^line two$", [6]),
        ("ab", [7]),  # too short for the index: a scan
        ("^ab$", [7]),
        ("\\pL{6}", [3, 4, 5]),  # no literal: a scan
        ("nil to", [0, 1, 2, 3, 4, 5, 6, 7, 8]),
        ("absent", []),
    ],
)
def test_message_content_regex(filled: Store, pattern: str, expected: list[int]) -> None:
    assert _found(filled, "messages.content", pattern) == expected


@pytest.mark.usefixtures("candidates")
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [("dlroW olleH", [0]), ('"RAEN"', [2]), ("(?i)NIVLEK", [3]), ("gnihton", [])],
)
def test_message_reasoning_regex(filled: Store, pattern: str, expected: list[int]) -> None:
    assert _found(filled, "messages.reasoning_content", pattern) == expected


def test_upsert_and_delete_keep_the_index_in_step(filled: Store) -> None:
    replaced = _dataset()[0]
    replaced["messages"] = [message(content="goodbye world")]
    filled.upsert([replaced])
    assert _found(filled, "messages.content", "Hello") == []
    assert _found(filled, "messages.content", "goodbye") == [0]
    assert _found(filled, "messages.content", "nil to") == [1, 2, 3, 4, 5, 6, 7, 8]
    filled.delete(ALICE, replaced["id"])
    assert _found(filled, "messages.content", "goodbye") == []
    assert _found(filled, "messages.content", "world") == [1]


def _sqlite_index_is_in_step(store: SqlStore) -> int:
    """The number of indexed rows, after FTS5 has checked each index against `messages`."""
    counts = set()
    with store.writer.begin() as connection:
        for index in SEARCHED.values():
            connection.exec_driver_sql(
                f"INSERT INTO {index}({index}, rank) VALUES ('integrity-check', 1)"
            )
            counted = connection.exec_driver_sql(f"SELECT count(*) FROM {index}_docsize")
            counts.add(counted.scalar_one())
    (count,) = counts
    return int(count)


def test_the_sqlite_index_holds_exactly_the_messages(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    assert isinstance(store, SqlStore)
    try:
        store.upsert(_dataset())
        assert _sqlite_index_is_in_step(store) == 36
        store.upsert(_dataset()[:3])  # replaced: their messages deleted and inserted again
        store.delete(ALICE, _dataset()[0]["id"])  # its messages deleted by the cascade
        assert _sqlite_index_is_in_step(store) == 34
    finally:
        store.close()
    # VACUUM keeps the rowids the index refers to.
    with closing(sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))) as connection:
        connection.execute("VACUUM")
    store = open_store(sqlite_url)
    assert isinstance(store, SqlStore)
    try:
        assert _sqlite_index_is_in_step(store) == 34
        assert _found(store, "messages.content", "hello") == [1]
    finally:
        store.close()


def test_a_sqlite_search_reads_the_index_not_every_message(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    assert isinstance(store, SqlStore)
    body = {"filters": [["messages.content", "regex", "(?i)hello"]]}
    compiled = store.page_statement(ALICE, parse_query(body)).compile(store.engine)
    assert compiled.positiontup is not None
    parameters = tuple(compiled.params[name] for name in compiled.positiontup)
    assert '("hel" AND "llo")' in parameters
    with store.engine.connect() as connection:
        explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters)
        plan = [row[3] for row in explained]
    store.close()
    assert "SCAN message_search_content VIRTUAL TABLE INDEX 0:M1" in plan, plan
    assert "SEARCH messages USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan


def test_a_database_of_revision_0002_gets_its_messages_indexed(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    # The store of revision 0002 wrote the same rows, without adding them to an index.
    with monkeypatch.context() as patch:
        patch.setattr(dialects.SQLite, "indexing", dialects.Dialect.indexing)
        at_revision(sqlite_url, "0002", _dataset())
    monkeypatch.setattr(migrations, "REPORT_FROM", 10)
    store = open_store(sqlite_url)
    assert isinstance(store, SqlStore)
    try:
        assert _sqlite_index_is_in_step(store) == 36
        assert _found(store, "messages.content", "(?i)hello") == [0, 1]
    finally:
        store.close()
    assert capsys.readouterr().err == (
        "indexing 36 messages for regex search (once, on this upgrade)\n"
        "indexed 36 of 36 messages\n"
        "message search index ready\n"
        "storing the messages of 18 conversations (36 messages) as responses give them (once, on "
        "this upgrade)\n"
        "stored the messages of 18 of 18 conversations\n"
        "messages stored\n"
    )


@pytest.mark.parametrize(
    ("body", "prepared"),
    [
        # psycopg prepares a statement it has run 5 times; PostgreSQL may then plan it once for
        # any values, blind to how many rows a regex keeps (`PostgreSQL.planned_for_values`).
        ({"filters": [["messages.content", "regex", "hello"]], "limit_to": 5}, 0),
        ({"filters": [["name", "regex", "(?i)sec"]], "limit_to": 5}, 0),
        # Without a regex the statement is prepared as usual: the count can tell the difference.
        ({"filters": [["model", "==", "gpt-4o"]], "limit_to": 5}, 1),
    ],
)
def test_postgresql_plans_a_regex_search_for_its_values(
    postgres_url: str, body: dict[str, Any], prepared: int
) -> None:
    store = open_store(empty_postgres(postgres_url), ConnectionOptions(pool_size=1, max_overflow=0))
    assert isinstance(store, SqlStore)
    try:
        store.upsert(_dataset())
        query = parse_query(body)
        for _ in range(10):
            list(store.find(ALICE, query))
        with store.engine.connect() as connection:
            statements = connection.exec_driver_sql(
                # The page's statement, the only one that reads `conversations`.
                "SELECT count(*) FROM pg_prepared_statements"
                " WHERE strpos(statement, 'FROM conversations') > 0"
            ).scalar_one()
    finally:
        store.close()
    assert statements == prepared

"""The query time budget (`AYETO_DB_STATEMENT_TIMEOUT_MS`): a read past it is a 400 on both
databases (PostgreSQL's `statement_timeout`, SQLite's progress handler), a write is never cut
short, and the connection serves the next request."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from ayeto import patterns
from ayeto.api import create_app
from ayeto.auth import create_key
from ayeto.config import ConnectionOptions, Settings
from ayeto.errors import QUERY_TIMEOUT, QueryTimeout, Unavailable
from ayeto.query import FIELDS, MAX_FILTERS, Condition, Op, Query
from ayeto.store import SqlStore, Store, dialects, open_store
from ayeto.store.sql import BATCH
from tests.factories import ALICE, conversation, message

FIND = "/api/v3/conversation/find"
GET = "/api/v3/conversation/get"
DELETE = "/api/v3/conversation/delete"
TINY_BUDGET_MS = 50
TIMED_OUT = {"detail": QUERY_TIMEOUT}

CONVERSATIONS = 200
# Text the patterns below match only at its end, so each of them searches all of it: some 500 MB
# of regex search in all, seconds of work on either database against a budget of 50 ms.
FILLER = "the quick brown fox jumps over the lazy dog " * 1100


def _patterns() -> list[str]:
    # A character class first: no literal prefix lets the engine skip ahead. No literal of three
    # characters either (`\s`, `[q-r]`): the search index cannot narrow them, so every message is
    # read, as a scan must be when there is no index to ask (see `prefilter`).
    return [f"(?i)[a-z]+ [0-9]+ [a-z]+\\s{n}[q-r]" for n in range(MAX_FILTERS)]


CONTENT = FILLER + "".join(f"word 1 word {n}q " for n in range(MAX_FILTERS))
HEAVY = {"filters": [["messages.content", "regex", pattern] for pattern in _patterns()]}
HEAVY_QUERY = Query(
    conditions=tuple(Condition(FIELDS["messages.content"], Op.REGEX, p) for p in _patterns())
)


def _documents() -> list[dict[str, object]]:
    return [
        conversation(ALICE, name=f"conversation {n}", messages=[message(content=CONTENT)])
        for n in range(CONVERSATIONS)
    ]


def _count(store: Store) -> int:
    """How many conversations ALICE has: the length of a page that starts near the end (its
    messages are read only for that page, so the check itself stays far within the budget)."""
    near_end = CONVERSATIONS - 5
    found = sum(len(batch) for batch in store.find(ALICE, Query(offset=near_end, limit=50)))
    return near_end + found


@contextmanager
def _loaded(url: str, options: ConnectionOptions) -> Iterator[Store]:
    """A store with `options` over the data the heavy query searches."""
    loader = open_store(url)
    loader.upsert(_documents())
    loader.close()
    opened = open_store(url, options)
    try:
        yield opened
    finally:
        opened.close()


@contextmanager
def _client(store: Store, url: str, options: ConnectionOptions) -> Iterator[TestClient]:
    """The API over `store` with `options`, as ALICE."""
    settings = replace(Settings(database_url=url), connection=options)
    key = create_key(store, ALICE, scopes=("ayeto.conversation",))[0]
    with TestClient(create_app(store, settings)) as client:
        client.headers["uni-api-key"] = key
        yield client


@pytest.fixture
def budgeted(database_url: str) -> Iterator[Store]:
    """A store whose statements have 50 ms, holding the data the heavy query searches."""
    with _loaded(database_url, ConnectionOptions(statement_timeout_ms=TINY_BUDGET_MS)) as opened:
        yield opened


def test_a_read_past_the_budget_is_a_query_timeout(budgeted: Store) -> None:
    with pytest.raises(QueryTimeout) as refused:
        list(budgeted.find(ALICE, HEAVY_QUERY))
    assert refused.value.detail == QUERY_TIMEOUT
    # The interrupted connection answers the next read.
    assert _count(budgeted) == CONVERSATIONS


def test_a_write_under_the_same_budget_succeeds(budgeted: Store) -> None:
    with pytest.raises(QueryTimeout):
        list(budgeted.find(ALICE, HEAVY_QUERY))
    assert budgeted.upsert([conversation(ALICE, messages=[message()]) for _ in range(10)]) == 10
    (first,) = (d for batch in budgeted.find(ALICE, Query(limit=1)) for d in batch)
    stamped = budgeted.get(ALICE, first["id"], 1_800_000_000_000)
    assert stamped["accessed"] == {"user_id": ALICE, "timestamp": 1_800_000_000_000}
    budgeted.delete(ALICE, first["id"])
    assert _count(budgeted) == CONVERSATIONS + 10 - 1


def test_reads_on_other_threads_keep_their_own_budget(budgeted: Store) -> None:
    """Each connection has its own clock: a heavy read timed out on one thread does not end,
    or lend its deadline to, the light reads that other threads make meanwhile."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        heavy = [pool.submit(lambda: list(budgeted.find(ALICE, HEAVY_QUERY))) for _ in range(2)]
        light = [pool.submit(_count, budgeted) for _ in range(20)]
        for future in heavy:
            with pytest.raises(QueryTimeout):
                future.result()
        assert [future.result() for future in light] == [CONVERSATIONS] * 20


def test_sqlite_never_cuts_a_write_short(sqlite_url: str) -> None:
    """With 1 ms a read would be cut short, and every write takes longer than that: the
    migrations, a chunk of 500 conversations, the cascade of a delete."""
    store = open_store(sqlite_url, ConnectionOptions(statement_timeout_ms=1))
    try:
        many = [
            conversation(ALICE, messages=[message(content=FILLER[:1000]) for _ in range(5)])
            for _ in range(2000)
        ]
        assert store.upsert(many) == 2000
        with pytest.raises(QueryTimeout):
            list(store.find(ALICE, HEAVY_QUERY))
        store.delete(ALICE, many[0]["id"])
        assert store.get(ALICE, many[1]["id"], 1_800_000_000_000)["id"] == many[1]["id"]
    finally:
        store.close()


def test_the_api_answers_a_read_past_the_budget_with_a_400(
    budgeted: Store, database_url: str
) -> None:
    options = ConnectionOptions(statement_timeout_ms=TINY_BUDGET_MS)
    with _client(budgeted, database_url, options) as client:
        refused = client.post(FIND, json=HEAVY)
        assert (refused.status_code, refused.json()) == (400, TIMED_OUT)
        found = client.post(FIND, json={"limit_to": 1})
        assert found.status_code == 200
        (first,) = found.json()
        got = client.post(GET, params={"entity_id": first["id"]})
        assert (got.status_code, got.json()["id"]) == (200, first["id"])
        deleted = client.post(DELETE, params={"entity_id": first["id"]})
        assert (deleted.status_code, deleted.json()) == (200, first["id"])


def test_sqlite_times_only_the_reads(sqlite_url: str) -> None:
    """Statements of read transactions have a deadline; those of writes have none."""
    store = open_store(sqlite_url, ConnectionOptions(statement_timeout_ms=TINY_BUDGET_MS))
    assert isinstance(store, SqlStore)
    try:
        for options, seconds in (({}, TINY_BUDGET_MS / 1000), ({"write": True}, math.inf)):
            with store.engine.connect().execution_options(**options) as connection:
                connection.exec_driver_sql("SELECT 1")
                raw = connection.connection.dbapi_connection
                assert isinstance(raw, sqlite3.Connection)
                assert raw.clock.seconds == seconds
                assert (raw.clock.deadline < math.inf) is (seconds < math.inf)
    finally:
        store.close()


def test_a_later_batch_past_the_budget_is_a_query_timeout(sqlite_url: str) -> None:
    """Each batch of a streamed answer has the budget (`budget`): the first batch is read within
    it, and the next, past it, is refused as a read past it at once is."""
    cheap = "".join(f"word 1 word {n}q " for n in range(MAX_FILTERS))
    # Newest first: a batch of conversations whose messages the patterns search in no time, then
    # the ones they search for seconds.
    store = open_store(sqlite_url, ConnectionOptions(statement_timeout_ms=TINY_BUDGET_MS))
    try:
        store.upsert(
            conversation(
                ALICE,
                updated={"user_id": ALICE, "timestamp": 2_000_000_000_000 - n},
                messages=[message(content=cheap if n < BATCH else CONTENT)],
            )
            for n in range(BATCH + CONVERSATIONS)
        )
        # Ten patterns: the first batch takes some 10 ms, the next some 200 (a hundred megabytes
        # of search).
        heavy = replace(HEAVY_QUERY, conditions=HEAVY_QUERY.conditions[:10])
        first = replace(heavy, limit=BATCH)
        assert sum(len(batch) for batch in store.find(ALICE, first)) == BATCH
        with pytest.raises(QueryTimeout) as refused:
            list(store.find(ALICE, heavy))
        assert refused.value.detail == QUERY_TIMEOUT
        # The interrupted connection answers the next read.
        assert store.count(ALICE, Query()) == BATCH + CONVERSATIONS
    finally:
        store.close()


# -- the scan budget (`AYETO_DB_SCAN_TIMEOUT_MS`, SQLite) ------------------------------------------

# Far less than any of the searches below takes; the statement timeout stays at its 5 s.
SCAN_BUDGET_MS = 1
# Its literal `word 1 word ` is in every message, but it never matches (`[a-z]+` cannot take the
# digit after it), so a search reads all of each message; under (?i) RE2 has no fast skip either.
WITH_LITERAL = "(?i)word 1 word [a-z]+ 7q"
HOW = "add a literal that few messages hold (a rarer word, 3 or more characters), or narrow the "
HOW += "search with other filters"


@pytest.fixture
def scan_budgeted(sqlite_url: str) -> Iterator[Store]:
    """A store whose scans have 1 ms, and its other statements the default 5 s."""
    with _loaded(sqlite_url, ConnectionOptions(scan_timeout_ms=SCAN_BUDGET_MS)) as opened:
        yield opened


@pytest.mark.parametrize(
    ("few_candidates", "filters", "detail"),
    [
        pytest.param(
            dialects.FEW_CANDIDATES,
            HEAVY["filters"],
            "filters[0]: the regex '(?i)[a-z]+ [0-9]+ [a-z]+\\\\s0[q-r]' reads every one of your "
            "messages (it has no literal of 3 or more characters for the search index to look "
            f"up) and ran past 1 ms; {HOW}",
            id="no literal",
        ),
        pytest.param(
            # Fewer than the 200 messages holding the literal: the index leaves it to a scan.
            CONVERSATIONS - 1,
            [["name", "!=", "x"], ["messages.content", "regex", WITH_LITERAL]],
            "filters[1]: the regex '(?i)word 1 word [a-z]+ 7q' reads every one of your messages "
            "(its literals are in too many messages for the search index to narrow it) and ran "
            f"past 1 ms; {HOW}",
            id="a literal in too many messages",
        ),
    ],
)
def test_a_scan_past_the_scan_budget_is_a_400_that_says_how_to_narrow_it(
    scan_budgeted: Store,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    few_candidates: int,
    filters: list[list[str]],
    detail: str,
) -> None:
    monkeypatch.setattr(dialects, "FEW_CANDIDATES", few_candidates)
    options = ConnectionOptions(scan_timeout_ms=SCAN_BUDGET_MS)
    with _client(scan_budgeted, sqlite_url, options) as client:
        refused = client.post(FIND, json={"filters": filters})
        assert (refused.status_code, refused.json()) == (400, {"detail": detail})
        # The connection answers the next read, which scans nothing.
        found = client.post(
            FIND, json={"limit_from": CONVERSATIONS - 5, "limit_to": CONVERSATIONS + 5}
        )
        assert (found.status_code, len(found.json())) == (200, 5)


def test_the_scan_budget_binds_only_searches_the_index_cannot_narrow(
    scan_budgeted: Store,
) -> None:
    """The same literal, in few enough messages for the index: its candidates are read under the
    statement timeout, however long RE2 takes over them, and the answer is whole."""
    query = Query(conditions=(Condition(FIELDS["messages.content"], Op.REGEX, WITH_LITERAL),))
    assert list(scan_budgeted.find(ALICE, query)) == []
    matching = replace(query, conditions=(replace(query.conditions[0], value="word 1 word 7q"),))
    assert sum(len(batch) for batch in scan_budgeted.find(ALICE, matching)) == CONVERSATIONS


def test_a_statement_timeout_below_the_scan_budget_is_the_one_reported(sqlite_url: str) -> None:
    options = ConnectionOptions(statement_timeout_ms=TINY_BUDGET_MS, scan_timeout_ms=60_000)
    with _loaded(sqlite_url, options) as store, pytest.raises(QueryTimeout) as refused:
        list(store.find(ALICE, HEAVY_QUERY))
    assert (type(refused.value), refused.value.detail) == (QueryTimeout, QUERY_TIMEOUT)


# No literal: every message is read, in the search process, one scan at a time (`SqlStore._scan`).
SCAN = Query(conditions=(Condition(FIELDS["messages.content"], Op.REGEX, "[0-9]q"),))


def test_a_scan_waits_for_the_one_running_within_its_budget(sqlite_url: str) -> None:
    options = ConnectionOptions(scan_timeout_ms=60_000)
    with _loaded(sqlite_url, options) as store, ThreadPoolExecutor(1) as pool:
        assert isinstance(store, SqlStore)
        alone = [d["name"] for batch in store.find(ALICE, SCAN) for d in batch]
        assert len(alone) == CONVERSATIONS
        with store._scanning:  # as another scan does while it runs
            waiting = pool.submit(lambda: [d["name"] for b in store.find(ALICE, SCAN) for d in b])
            with pytest.raises(TimeoutError):
                waiting.result(timeout=0.5)
            # Other reads go on meanwhile.
            assert _count(store) == CONVERSATIONS
        assert waiting.result(timeout=60) == alone


def test_a_scan_that_cannot_start_within_its_budget_is_a_400(scan_budgeted: Store) -> None:
    assert isinstance(scan_budgeted, SqlStore)
    with scan_budgeted._scanning, pytest.raises(QueryTimeout) as refused:
        list(scan_budgeted.find(ALICE, SCAN))
    assert refused.value.detail == (
        "filters[0]: the regex '[0-9]q' reads every one of your messages (it has no literal of "
        f"3 or more characters for the search index to look up) and ran past 1 ms; {HOW}"
    )


def test_a_scan_judges_its_messages_in_the_scanning_process(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The regex of a scan runs in the scanning process, never in this one; a search the index
    narrows judges its candidates here (so the count below would see a scan judged here)."""
    judged: list[str] = []

    def counted(pattern: str, text: str | bytes | None) -> bool:
        judged.append(pattern)
        return patterns.search(pattern, text)

    monkeypatch.setattr(dialects, "search", counted)
    with _loaded(sqlite_url, ConnectionOptions()) as store:
        assert isinstance(store, SqlStore)
        found = [d["name"] for batch in store.find(ALICE, SCAN) for d in batch]
        assert (len(found), judged) == (CONVERSATIONS, [])
        # The web view's totals too.
        assert (store.count(ALICE, SCAN), judged) == (CONVERSATIONS, [])
        narrowed = replace(SCAN, conditions=(replace(SCAN.conditions[0], value="word 1 word 7q"),))
        assert sum(len(batch) for batch in store.find(ALICE, narrowed)) == CONVERSATIONS
        assert judged == ["word 1 word 7q"] * CONVERSATIONS


def test_a_scanning_process_that_dies_mid_scan_is_a_503_then_replaced(sqlite_url: str) -> None:
    with _loaded(sqlite_url, ConnectionOptions()) as store, ThreadPoolExecutor(1) as pool:
        assert isinstance(store, SqlStore)
        assert sum(len(batch) for batch in store.find(ALICE, SCAN)) == CONVERSATIONS
        scanner = store._scanner
        assert scanner is not None
        assert scanner._process is not None
        pid = scanner._process.pid
        assert pid != os.getpid()
        # Below this process for the CPU.
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
        # Stopped, it cannot answer the scan handed to it; then it dies.
        os.kill(pid, signal.SIGSTOP)
        attempt = pool.submit(lambda: list(store.find(ALICE, SCAN)))
        deadline = time.monotonic() + 30
        while not scanner._lock.locked():
            assert time.monotonic() < deadline, "the scan never reached the scanning process"
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(Unavailable) as refused:
            attempt.result(timeout=30)
        assert refused.value.detail == "the search process stopped; try again shortly"
        # The next scan starts another.
        assert sum(len(batch) for batch in store.find(ALICE, SCAN)) == CONVERSATIONS
        assert scanner._process is not None
        assert scanner._process.pid != pid

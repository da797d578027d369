"""Requests that cost only themselves: a client that never reads its answer, a long search.

Real `ayeto serve` processes on both databases: what is under test is how the server shares its
event loop, its worker threads and its database connections between requests.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from sqlalchemy.engine import make_url

from ayeto.query import parse_query
from ayeto.store import SqlStore, Store
from tests.factories import ALICE, BOB, conversation, message
from tests.processes import Server, cli, new_key, serving

FIND = "/api/v3/conversation/find"
GET = "/api/v3/conversation/get"
# More than the default pool (10 connections and 10 more under load): before, each of these held
# one, in an open transaction, for as long as its client did not read.
SLOW_READERS = 25
# Several batches (of 200) of about 10 KB each: some 4.5 MB that a small socket buffer never
# takes in, so the server is left with most of each answer to write.
LARGE_ANSWER = 450
CONTENT = "All work and no play makes Jack a dull boy. " * 230
# Generous: the figure that matters is printed; this only turns a hung server into a failure.
PROMPTLY = 20.0


# -- the store holds nothing between the batches of an answer ------------------------------------


def checked_out(store: Store) -> int:
    """Connections the store has taken from its pools and not given back."""
    assert isinstance(store, SqlStore)
    return sum(engine.pool.checkedout() for engine in {store.engine, store.writer})  # type: ignore[attr-defined]


def stored_newest_first(store: Store) -> list[str]:
    """The ids of `LARGE_ANSWER` new conversations of ALICE's, in `find`'s default order."""
    documents = [
        conversation(ALICE, updated={"user_id": ALICE, "timestamp": n}) for n in range(LARGE_ANSWER)
    ]
    store.upsert(documents)
    return [document["id"] for document in reversed(documents)]


def test_between_batches_the_store_holds_no_connection(store: Store) -> None:
    newest_first = stored_newest_first(store)

    batches = store.find(ALICE, parse_query({}))
    first = next(batches)
    held = checked_out(store)
    # Deleted once the answer has begun: its batch, read later, leaves it out.
    store.delete(ALICE, newest_first[300])
    rest = [document["id"] for batch in batches for document in batch]

    assert (held, checked_out(store)) == (0, 0)
    assert [document["id"] for document in first] + rest == (
        newest_first[:300] + newest_first[301:]
    )


def test_a_batch_whose_conversations_are_all_deleted_is_skipped(store: Store) -> None:
    newest_first = stored_newest_first(store)

    batches = store.find(ALICE, parse_query({}))
    sizes = [len(next(batches))]
    for conversation_id in newest_first[200:400]:
        store.delete(ALICE, conversation_id)
    sizes += [len(batch) for batch in batches]

    assert sizes == [200, 50]


def test_writes_from_many_threads_all_land(store: Store) -> None:
    # The server calls the store from worker threads: on SQLite they all queue for one writer.
    documents = [conversation(ALICE) for _ in range(16)]
    store.upsert(documents)

    def touch_and_delete(index: int) -> str:
        for now in range(1, 11):
            store.get(ALICE, documents[index]["id"], index * 100 + now)
        if index % 2:
            store.delete(ALICE, documents[index]["id"])
        return str(documents[index]["id"])

    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(touch_and_delete, range(16)))

    left = [document for batch in store.find(ALICE, parse_query({})) for document in batch]
    assert done == [document["id"] for document in documents]
    assert sorted((d["id"], d["accessed"]["timestamp"]) for d in left) == sorted(
        (documents[index]["id"], index * 100 + 10) for index in range(0, 16, 2)
    )
    assert checked_out(store) == 0


# -- real servers ---------------------------------------------------------------------------------


def load(database_url: str, tmp_path: Path, documents: list[dict[str, object]]) -> None:
    source = tmp_path / "documents.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(document) for document in documents))
    cli("import", str(source), "--db", database_url)


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


@contextmanager
def never_reading(server: Server, key: str, count: int) -> Iterator[list[socket.socket]]:
    """`count` clients that each ask for `find {}` and never read a byte of the answer."""
    request = (
        f"POST {FIND} HTTP/1.1\r\nHost: ayeto\r\nuni-api-key: {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            client = stack.enter_context(socket.socket())
            # A small window: the kernel takes in a few KB for it, the server keeps the rest.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", port_of(server)))
            client.sendall(request)
            clients.append(client)
        yield clients


def answering(clients: list[socket.socket], seconds: float) -> int:
    """How many of `clients` have the start of an answer waiting, within `seconds` in all."""
    deadline = time.monotonic() + seconds
    started = 0
    for client in clients:
        client.settimeout(max(0.01, deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            started += client.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 200"
    return started


def idle_in_transaction(database_url: str) -> int:
    """The server's PostgreSQL connections that hold a transaction open while doing nothing."""
    url = make_url(database_url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            " AND application_name = 'ayeto' AND state LIKE 'idle in transaction%%'",
            (url.database,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def timed_get(http: httpx.Client, key: str, conversation_id: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = http.post(
        GET, params={"entity_id": conversation_id}, headers={"uni-api-key": key}, timeout=PROMPTLY
    )
    return response, time.perf_counter() - started


@pytest.mark.e2e
def test_clients_that_never_read_their_answer_cost_nobody_else(
    database_url: str, tmp_path: Path
) -> None:
    bobs = conversation(BOB, messages=[message(content="mine")])
    alices = [
        conversation(
            ALICE,
            updated={"user_id": ALICE, "timestamp": 1_000 + n},
            messages=[message(content=CONTENT)],
        )
        for n in range(LARGE_ANSWER)
    ]
    load(database_url, tmp_path, [*alices, bobs])
    alice, bob = new_key(database_url, ALICE), new_key(database_url, BOB)

    with serving(database_url) as server, httpx.Client(base_url=server.base_url) as http:
        with never_reading(server, alice, SLOW_READERS) as clients:
            started = answering(clients, PROMPTLY)
            response, seconds = timed_get(http, bob, bobs["id"])
            ready = http.get("/readyz", timeout=PROMPTLY)
            held = idle_in_transaction(database_url) if database_url.startswith("postgres") else 0
            print(f"\n{SLOW_READERS} never reading: another user's get {seconds * 1e3:.0f} ms")

            assert (started, response.status_code, response.json().get("id")) == (
                SLOW_READERS,
                200,
                bobs["id"],
            )
            assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
            # No database connection waits on a client's socket.
            assert held == 0

        # The slow readers gone, every answer is whole and nothing was left behind.
        whole = http.post(FIND, json={}, headers={"uni-api-key": alice}, timeout=PROMPTLY)
        after, _ = timed_get(http, bob, bobs["id"])
        assert (whole.status_code, len(whole.json()), after.status_code) == (200, LARGE_ANSWER, 200)
        assert [document["id"] for document in whole.json()] == [
            document["id"] for document in reversed(alices)
        ]


# Every conversation has `MESSAGES` messages and only its last one says "END": each of the
# `HEAVY_FILTERS` message filters reads them all before it matches, in every conversation. Seconds
# of work per search on SQLite, none of which may hold up the event loop.
HEAVY_CONVERSATIONS = 200
MESSAGES = 40
HEAVY_FILTERS = 40
HEAVY_CLIENTS = 4


def heavy_search() -> dict[str, object]:
    # `E.?ND`: no literal of three characters, so the search index cannot narrow it (prefilter).
    filters = [["messages.content", "regex", f"E.?ND|never {n}"] for n in range(HEAVY_FILTERS)]
    return {"filters": filters}


@pytest.mark.e2e
def test_a_slow_search_does_not_stall_another_users_get(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The searches must run to their end, however long 4 of them take side by side on a busy
    # machine: this is about stalls, not about the query time budgets (tests/test_query_budget.py).
    monkeypatch.setenv("AYETO_DB_STATEMENT_TIMEOUT_MS", "600000")
    monkeypatch.setenv("AYETO_DB_SCAN_TIMEOUT_MS", "600000")
    bobs = conversation(BOB, messages=[message(content="mine")])
    texts = [f"line {n}: nothing to see here, " * 8 for n in range(MESSAGES - 1)] + ["END"]
    alices = [
        conversation(
            ALICE,
            messages=[message(timestamp=1_000 + n, content=text) for n, text in enumerate(texts)],
        )
        for _ in range(HEAVY_CONVERSATIONS)
    ]
    load(sqlite_url, tmp_path, [*alices, bobs])
    alice, bob = new_key(sqlite_url, ALICE), new_key(sqlite_url, BOB)

    with (
        serving(sqlite_url) as server,
        httpx.Client(base_url=server.base_url) as http,
        ThreadPoolExecutor(HEAVY_CLIENTS) as pool,
    ):
        timed_get(http, bob, bobs["id"])  # connected and warm: what follows measures the wait only
        started = time.perf_counter()
        searches: list[Future[httpx.Response]] = [
            pool.submit(
                httpx.post,
                server.base_url + FIND,
                json=heavy_search(),
                headers={"uni-api-key": alice},
                timeout=300,
            )
            for _ in range(HEAVY_CLIENTS)
        ]
        # Time for the searches to reach the server first, so that the get is served while they run.
        time.sleep(0.5)
        response, seconds = timed_get(http, bob, bobs["id"])
        still_searching = sum(not search.done() for search in searches)
        answers = [search.result() for search in searches]
        print(
            f"\n{HEAVY_CLIENTS} heavy searches, {time.perf_counter() - started:.1f} s in all: "
            f"another user's get {seconds * 1e3:.0f} ms"
        )

    assert (response.status_code, response.json().get("id"), still_searching) == (
        200,
        bobs["id"],
        HEAVY_CLIENTS,
    )
    assert [(answer.status_code, len(answer.json())) for answer in answers] == [
        (200, HEAVY_CONVERSATIONS)
    ] * HEAVY_CLIENTS

"""A real `ayeto serve` on PostgreSQL when the database goes away, comes back, or is too slow.

The server reaches PostgreSQL through a TCP proxy (`tests.tcp_proxy`), so a test can cut the link as
a crash or a network failure would, and restore it. Data and keys are provisioned with the CLI,
straight to the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import empty_postgres
from tests.factories import ALICE, BOB, conversation, img_gen, message
from tests.processes import Server, cli, new_key, serving, stop
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

FIND = "/api/v3/conversation/find"
GET = "/api/v3/conversation/get"
DELETE = "/api/v3/conversation/delete"

UNAVAILABLE = {"detail": "the database is unavailable; try again shortly"}
NOT_READY = {"detail": "database unavailable or schema not current"}
TIMED_OUT = {"detail": "the query ran past the statement timeout; simplify its filters or regex"}
ALIVE = {"status": "ok"}
READY = {"status": "ready"}

# Every request gives up after this long, so a hung server fails the test instead of stalling it.
REQUEST_TIMEOUT = 15.0
# When the database refuses connections, the answer must not wait for the server's connect
# timeout (AYETO_DB_CONNECT_TIMEOUT, 5 s by default): nothing is there to wait for.
PROMPT = 5.0
RECOVERY_SECONDS = 15.0

BY_NAME = {"sort_key": "name", "sort_order": 0}
# A well-formed key that no database holds; only the database can tell that it is unknown.
UNKNOWN_KEY = "ayeto-" + "0" * 64


def _cid(n: int) -> str:
    return f"c0000000-0000-4000-8000-{n:012d}"


DOCUMENTS = [
    conversation(
        ALICE,
        id=_cid(n),
        name=f"conversation {n}",
        messages=[
            message(1_735_815_581_000 + n, id=f"a0000000-0000-4000-8000-{n:012d}"),
            message(
                1_735_815_582_000 + n,
                id=f"b0000000-0000-4000-8000-{n:012d}",
                role="assistant",
                model="gpt-4o",
                img_gen=img_gen() if n % 2 else None,
            ),
        ],
    )
    for n in range(1, 6)
] + [conversation(BOB, id=_cid(9), name="Bob's")]
ALICE_IDS = [_cid(n) for n in range(1, 6)]


@pytest.fixture
def key(postgres_url: str) -> str:
    """Alice's key, over a database holding `DOCUMENTS` and nothing else."""
    empty_postgres(postgres_url)
    data = b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in DOCUMENTS)
    cli("import", "-", "--db", postgres_url, stdin=data)
    return new_key(postgres_url, ALICE)


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    database = make_url(postgres_url)
    with TcpProxy(database.host or "127.0.0.1", database.port or 5432) as running:
        yield running


def _through(url: str, proxy: TcpProxy) -> str:
    """`url` with its host and port replaced by the proxy's."""
    proxied = make_url(url).set(host="127.0.0.1", port=proxy.port)
    return proxied.render_as_string(hide_password=False)


def _client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"uni-api-key": key}, timeout=REQUEST_TIMEOUT
    )


def _timed(client: httpx.Client, path: str, **options: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.post(path, **options)
    return response, time.monotonic() - started


def _report(what: str, seconds: float) -> None:
    """A measured time, in the test's output (`pytest -rP` shows it)."""
    print(f"{what}: {seconds:.3f}")


def _assert_unavailable(response: httpx.Response) -> None:
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert response.headers["retry-after"] == "1"


def _wait_for_recovery(client: httpx.Client) -> float:
    """Seconds until `find` answers 200 again, asking every 50 ms; fails after RECOVERY_SECONDS."""
    started = time.monotonic()
    while (status := client.post(FIND).status_code) != 200:
        assert status == 503
        assert time.monotonic() - started < RECOVERY_SECONDS, "the service did not recover"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_lost_database_is_a_prompt_503_and_the_service_recovers_by_itself(
    postgres_url: str, key: str, proxy: TcpProxy
) -> None:
    with serving(_through(postgres_url, proxy)) as server, _client(server, key) as client:
        # Up: reads answer, and a snapshot of the data is taken to compare with afterwards.
        got = client.post(GET, params={"entity_id": ALICE_IDS[0]})
        assert got.status_code == 200
        before = client.post(FIND, json=BY_NAME)
        assert before.status_code == 200
        assert [c["id"] for c in before.json()] == ALICE_IDS
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, READY)
        assert proxy.connections > 0

        proxy.cut()
        assert proxy.connections == 0
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("find", FIND, {"json": BY_NAME}),
            ("get", GET, {"params": {"entity_id": ALICE_IDS[0]}}),
            ("delete", DELETE, {"params": {"entity_id": ALICE_IDS[1]}}),
        ]
        for name, path, options in requests:
            response, seconds = _timed(client, path, **options)
            _assert_unavailable(response)
            assert seconds < PROMPT
            _report(f"seconds to a 503 on {name} once the database is cut", seconds)

        # Whether a well-formed key is valid only the database knows: "try again", not "invalid"
        # (a client told its key is invalid would stop using a good key). A key that is
        # malformed, or missing, is refused without asking the database.
        _assert_unavailable(client.post(FIND, headers={"uni-api-key": UNKNOWN_KEY}))
        malformed = client.post(FIND, headers={"uni-api-key": "ayeto-nothex"})
        assert (malformed.status_code, malformed.json()) == (401, {"detail": "API key is invalid"})
        missing = client.post(FIND, headers={"uni-api-key": ""})
        assert (missing.status_code, missing.json()) == (401, {"detail": "API key not provided"})

        not_ready = client.get("/readyz")
        assert (not_ready.status_code, not_ready.json()) == (503, NOT_READY)
        for probe in ("/livez", "/healthz"):
            alive = client.get(probe)
            assert (alive.status_code, alive.json()) == (200, ALIVE)

        proxy.restore()
        seconds = _wait_for_recovery(client)
        _report("seconds to recover once the database is back", seconds)

        # Nothing was lost, and the refused delete did not happen.
        after = client.post(FIND, json=BY_NAME)
        assert (after.status_code, after.content) == (200, before.content)
        again = client.post(GET, params={"entity_id": ALICE_IDS[0]})
        assert again.status_code == 200
        first, second = got.json(), again.json()
        assert second["accessed"]["user_id"] == ALICE
        assert second["accessed"]["timestamp"] >= first["accessed"]["timestamp"]
        assert second | {"accessed": None} == first | {"accessed": None}
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, READY)
        log = stop(server)
    assert "Traceback" not in log
    assert " ERROR " not in log


def test_a_request_in_flight_when_the_database_goes_away_is_a_503(
    postgres_url: str, key: str, proxy: TcpProxy
) -> None:
    with (
        serving(_through(postgres_url, proxy)) as server,
        _client(server, key) as client,
        psycopg.connect(postgres_url, autocommit=True) as watcher,
        psycopg.connect(postgres_url) as holder,
    ):
        assert client.post(FIND).status_code == 200
        # The server's query waits behind this lock until the link is cut under it.
        holder.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
        answers: list[httpx.Response] = []
        request = threading.Thread(target=lambda: answers.append(client.post(FIND)))
        request.start()
        try:
            _wait_for_lock_wait(watcher)
            started = time.monotonic()
            proxy.cut()
            request.join(REQUEST_TIMEOUT)
            seconds = time.monotonic() - started
        finally:
            holder.rollback()
            request.join()
        _report("seconds to a 503 on a query in flight when the database is cut", seconds)
        # A 400 would mean the statement timeout (5 s) ended the wait, not the lost connection.
        assert len(answers) == 1
        _assert_unavailable(answers[0])
        assert seconds < PROMPT

        proxy.restore()
        _report("seconds to recover once the database is back", _wait_for_recovery(client))
        found = client.post(FIND, json=BY_NAME)
        assert [c["id"] for c in found.json()] == ALICE_IDS
        log = stop(server)
    assert "Traceback" not in log


def _wait_for_lock_wait(watcher: psycopg.Connection[Any]) -> None:
    """Until a statement of the server waits for a lock in this database."""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while time.monotonic() < deadline:
        waiting = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'ayeto' AND wait_event_type = 'Lock'"
        ).fetchone()
        if waiting is not None and waiting[0] > 0:
            return
        time.sleep(0.01)
    raise AssertionError("the server's query never waited for the lock")


def test_postgresql_cancels_a_lock_wait_past_the_statement_timeout_as_57014(
    postgres_url: str,
) -> None:
    """What the 400 below rests on: a lock wait is ended by `statement_timeout` as QueryCanceled
    (57014, the code the server maps to 400), not by `lock_timeout` (55P03, which is not set)."""
    empty_postgres(postgres_url)
    with (
        psycopg.connect(postgres_url) as holder,
        psycopg.connect(postgres_url, options="-c statement_timeout=200") as waiter,
    ):
        holder.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
        try:
            with pytest.raises(psycopg.errors.QueryCanceled) as raised:
                waiter.execute("SELECT id FROM conversations")
        finally:
            holder.rollback()
    assert raised.value.sqlstate == "57014"
    assert str(raised.value) == "canceling statement due to statement timeout"


def test_a_statement_past_the_statement_timeout_is_a_400(
    postgres_url: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `serving` passes its environment on to the server.
    monkeypatch.setenv("AYETO_DB_STATEMENT_TIMEOUT_MS", "200")
    with (
        serving(postgres_url) as server,
        _client(server, key) as client,
        psycopg.connect(postgres_url) as holder,
    ):
        assert client.post(FIND).status_code == 200
        holder.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
        try:
            response, seconds = _timed(client, FIND, json=BY_NAME)
        finally:
            holder.rollback()
        _report("seconds to a 400 past a 200 ms statement timeout", seconds)
        assert (response.status_code, response.json()) == (400, TIMED_OUT)
        assert 0.2 <= seconds < PROMPT
        # The cancelled statement leaves its connection usable.
        found = client.post(FIND, json=BY_NAME)
        assert (found.status_code, [c["id"] for c in found.json()]) == (200, ALICE_IDS)

"""`ayeto serve --workers 2` on PostgreSQL under concurrent clients: exact answers, nothing lost.

Eight client threads read, page through and delete their own user's conversations at once. Each
conversation is read by exactly one thread and, if it is to go, deleted by that thread alone, so
every answer's status is known in advance. Every request travels on a connection of its own, and
the worker process holding the server's end of that connection is looked up in /proc: so the test
knows which worker answered each request.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ayeto.clock import now_ms
from tests.conftest import empty_postgres
from tests.factories import img_gen, message
from tests.processes import Server, cli, free_port, new_key, serving, stop

pytestmark = pytest.mark.e2e

FIND = "/api/v3/conversation/find"
GET = "/api/v3/conversation/get"
DELETE = "/api/v3/conversation/delete"

USERS = [f"{u:08x}-0000-4000-8000-00000000000{u}" for u in (1, 2, 3)]
PER_USER = 100
THREADS = 8
PAGE = 30
# Every so many of its conversations, a thread pages through all of its user's.
PAGE_THROUGH_EVERY = 8
REQUEST_TIMEOUT = 15.0
STARTUP_SECONDS = 30.0
BY_NAME = {"sort_key": "name", "sort_order": 0}


def _cid(user: int, n: int) -> str:
    return f"c{user:07x}-0000-4000-8000-{n:012d}"


def _document(user: int, n: int) -> dict[str, Any]:
    owner = USERS[user]
    return {
        "id": _cid(user, n),
        # Names run against ids, so that the name order is not the id order.
        "name": f"conversation {PER_USER - n:03d}",
        "model": "gpt-4o",
        "img_gen_model": "dall-e-3",
        "summary": "",
        "organization_id": None,
        "assistant_id": None,
        "messages": [
            message(1_735_815_581_000 + n, id=f"a{user:07x}-0000-4000-8000-{n:012d}"),
            message(
                1_735_815_582_000 + n,
                id=f"b{user:07x}-0000-4000-8000-{n:012d}",
                role="assistant",
                model="gpt-4o",
                img_gen=img_gen(prompt=f"picture {n}") if n % 2 else None,
            ),
        ],
        "created": {"user_id": owner, "timestamp": 1_735_815_580_000 + n},
        "updated": {"user_id": owner, "timestamp": 1_735_815_590_000 + n},
        "accessed": {"user_id": None, "timestamp": 0},
    }


DOCUMENTS = {user: [_document(user, n) for n in range(PER_USER)] for user in range(len(USERS))}
BY_ID = {d["id"]: d for documents in DOCUMENTS.values() for d in documents}


def _to_delete(n: int) -> bool:
    return n % 2 == 0


# -- which worker holds a connection (Linux /proc) ------------------------------------------------


def _workers(server: Server) -> set[int]:
    """The uvicorn worker processes: children of the server started by multiprocessing's spawn
    (the server's other child is multiprocessing's resource tracker)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # it ended while we looked
        # The parent's pid is the second field after the command name, which may hold spaces.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == server.process.pid and b"--multiprocessing-fork" in command:
            found.add(int(entry))
    return found


def _holder(server_port: int, client_port: int, workers: set[int]) -> int | None:
    """The worker holding the server's end of the TCP connection from `client_port`."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(address.split(":")[1], 16) for address in fields[1:3])
        if (local, remote) == (server_port, client_port):
            inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue  # closed while we looked
    return None


class Client:
    """Each request on a new connection, with the worker that answered it counted."""

    def __init__(self, server: Server, key: str, workers: set[int]) -> None:
        self._port = int(server.base_url.rsplit(":", 1)[1])
        self._workers = workers
        self._http = httpx.Client(
            base_url=server.base_url,
            headers={"uni-api-key": key},
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self.served_by: Counter[int | None] = Counter()

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.send("POST", path, **options)

    def send(self, method: str, path: str, **options: Any) -> httpx.Response:
        # Streamed, so that the connection is still open while its holder is looked up (reading
        # the whole body ends it, since it is not kept alive).
        with self._http.stream(method, path, **options) as response:
            _, client_port = response.extensions["network_stream"].get_extra_info("client_addr")
            self.served_by[_holder(self._port, client_port, self._workers)] += 1
            response.read()
        return response

    def close(self) -> None:
        self._http.close()


def _wait_until_both_workers_answer(server: Server, workers: set[int]) -> None:
    client = Client(server, "", workers)
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while set(client.served_by) != workers:
            assert time.monotonic() < deadline, f"not every worker answered: {client.served_by}"
            assert client.send("GET", "/livez").status_code == 200
    finally:
        client.close()


# -- the workload --------------------------------------------------------------------------------


@dataclass
class Outcome:
    deleted: set[str] = field(default_factory=set)
    served_by: Counter[int | None] = field(default_factory=Counter)


def _expected_get(document: dict[str, Any], answer: dict[str, Any], since: int) -> None:
    accessed = answer["accessed"]
    assert accessed["user_id"] == document["created"]["user_id"]
    assert since <= accessed["timestamp"] <= now_ms()
    assert answer | {"accessed": None} == document | {"accessed": None}


def _work(server: Server, key: str, workers: set[int], user: int, mine: list[int]) -> Outcome:
    """Read each of `mine`, delete those that are to go, and page through all now and then."""
    outcome = Outcome()
    client = Client(server, key, workers)
    initial = {d["id"] for d in DOCUMENTS[user]}
    try:
        for position, n in enumerate(mine):
            cid = _cid(user, n)
            since = now_ms()
            got = client.post(GET, params={"entity_id": cid})
            assert got.status_code == 200, got.text
            _expected_get(BY_ID[cid], got.json(), since)
            if _to_delete(n):
                deleted = client.post(DELETE, params={"entity_id": cid})
                assert (deleted.status_code, deleted.json()) == (200, cid)
                outcome.deleted.add(cid)
                # Gone at once, whichever worker answers: this is a new connection.
                gone = client.post(GET, params={"entity_id": cid})
                assert (gone.status_code, gone.json()) == (404, {"detail": f"not found, id: {cid}"})
            if position % PAGE_THROUGH_EVERY == 0:
                _page_through(client, initial, outcome.deleted)
    finally:
        client.close()
    outcome.served_by = client.served_by
    return outcome


def _page_through(client: Client, initial: set[str], deleted: set[str]) -> None:
    """Page through while others delete: pages may shift, but each is sorted, of this user, and
    holds nothing this thread has already deleted."""
    start = 0
    for _ in range(PER_USER // PAGE + 2):  # the set only shrinks, so this many pages suffice
        page = client.post(FIND, json=BY_NAME | {"limit_from": start, "limit_to": start + PAGE})
        assert page.status_code == 200, page.text
        ids = [c["id"] for c in page.json()]
        names = [c["name"] for c in page.json()]
        assert set(ids) <= initial - deleted
        assert len(set(ids)) == len(ids)
        assert names == sorted(names)
        if len(ids) < PAGE:
            return
        start += PAGE
    raise AssertionError("paging did not come to an end")


def _assignments() -> list[tuple[int, list[int]]]:
    """(user, conversation numbers) per thread: each user's conversations dealt out among the
    threads that work for that user."""
    users = [thread % len(USERS) for thread in range(THREADS)]
    assignments = []
    for thread, user in enumerate(users):
        helpers = [t for t, u in enumerate(users) if u == user]
        rank = helpers.index(thread)
        assignments.append((user, list(range(rank, PER_USER, len(helpers)))))
    return assignments


def _find_all(server: Server, key: str, page: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    with httpx.Client(base_url=server.base_url, headers={"uni-api-key": key}) as client:
        while True:
            body = BY_NAME | {"limit_from": len(found), "limit_to": len(found) + page}
            response = client.post(FIND, json=body, timeout=REQUEST_TIMEOUT)
            assert response.status_code == 200, response.text
            found += response.json()
            if len(response.json()) < page:
                return found


def test_two_workers_serve_concurrent_clients_exactly(postgres_url: str) -> None:
    empty_postgres(postgres_url)
    data = b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in BY_ID.values())
    assert cli("import", "-", "--db", postgres_url, stdin=data).stderr.endswith(
        f"imported {len(BY_ID)} conversation(s)\n"
    )
    keys = [new_key(postgres_url, user) for user in USERS]

    with serving(postgres_url, "--workers", "2") as server:
        workers = _workers(server)
        assert len(workers) == 2
        _wait_until_both_workers_answer(server, workers)

        started = time.monotonic()
        with ThreadPoolExecutor(THREADS) as pool:
            futures = [
                pool.submit(_work, server, keys[user], workers, user, mine)
                for user, mine in _assignments()
            ]
            outcomes = [future.result() for future in futures]
        print(f"seconds for the concurrent run: {time.monotonic() - started:.3f}")

        served_by = sum((outcome.served_by for outcome in outcomes), Counter[int | None]())
        print(f"requests per worker: {dict(served_by)}")
        # Every request was answered by one of the two workers, and each answered some.
        assert set(served_by) == workers

        deleted = [cid for outcome in outcomes for cid in outcome.deleted]
        assert (
            len(deleted)
            == len(set(deleted))
            == sum(_to_delete(n) for n in range(PER_USER)) * len(USERS)
        )
        remaining: dict[int, list[dict[str, Any]]] = {}
        for user, key in enumerate(keys):
            expected = sorted(
                (d for d in DOCUMENTS[user] if d["id"] not in deleted),
                key=lambda d: (d["name"], d["id"]),
            )
            found = _find_all(server, key, page=7)
            assert [c["id"] for c in found] == [d["id"] for d in expected]
            for answer in found:  # each was read once, by its owner
                _expected_get(BY_ID[answer["id"]], answer, since=0)
            remaining[user] = found
        log = stop(server)

    exported = [
        orjson.loads(line) for line in cli("export", "--db", postgres_url).stdout.splitlines()
    ]
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for document in exported:
        by_owner.setdefault(document["created"]["user_id"], []).append(document)
    assert by_owner == {
        USERS[user]: sorted(found, key=lambda d: d["id"]) for user, found in remaining.items()
    }

    started_lines = [line for line in log.splitlines() if "Started server process" in line]
    assert {int(line.rsplit("[", 1)[1].rstrip("]")) for line in started_lines} == workers
    assert "Traceback" not in log


def _connection_limit(postgres_url: str) -> int:
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true)::int, 0)"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_serve_refuses_workers_whose_pools_could_exceed_max_connections(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = _connection_limit(postgres_url)
    monkeypatch.setenv("AYETO_DB_POOL_SIZE", "6")
    monkeypatch.setenv("AYETO_DB_MAX_OVERFLOW", "4")
    workers = limit // 10 + 1  # one worker more than fits
    port = str(free_port())

    result = cli(
        "serve", "--db", postgres_url, "--port", port, "--workers", str(workers), check=False
    )

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        f"error: {workers} workers with up to 10 connections each (AYETO_DB_POOL_SIZE 6 + "
        f"AYETO_DB_MAX_OVERFLOW 4) need {workers * 10}, more than the {limit} the database "
        "accepts (max_connections less its reserved ones); lower --workers or the pool sizes\n",
    )

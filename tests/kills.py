"""Kill a real `ayeto serve` with SIGKILL while clients delete and get, and check what survived.

Used by tests/test_crashes.py (a few dozen kills) and bench/crashes.py (hundreds). Each round
starts the server, lets client threads delete and get one user's conversations, kills the server
once a seeded number of answers has come back, checks the database file (SQLite), starts the server
again and checks that every answer the clients got is still true: an acknowledged delete is gone
(`get` is 404), and an acknowledged `get` left its `accessed` stamp, at least as recent as the
answered one, unless an unacknowledged delete of the same conversation may have committed.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy.engine import make_url

from ayeto.auth import create_key
from ayeto.store import open_store
from tests.factories import conversation, message
from tests.processes import Restartable

BASE = "/api/v3/conversation"
USER = "44444444-4444-4444-8444-444444444444"
# Every client thread backs off this long after the server went away, before trying again.
RETRY_SECONDS = 0.01


@dataclass
class Acknowledged:
    """What the clients were told, over every round so far."""

    deleted: set[str] = field(default_factory=set)
    # Deletes sent but not answered 200 (the server died first): they may or may not have committed.
    maybe_deleted: set[str] = field(default_factory=set)
    accessed: dict[str, int] = field(default_factory=dict)
    answers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, entity_id: str, response: httpx.Response | None) -> None:
        with self.lock:
            if response is None or response.status_code != 200:
                if endpoint == "delete":
                    self.maybe_deleted.add(entity_id)
                return
            self.answers += 1
            if endpoint == "delete":
                self.deleted.add(entity_id)
            else:
                stamp = response.json()["accessed"]["timestamp"]
                self.accessed[entity_id] = max(stamp, self.accessed.get(entity_id, 0))


@dataclass(frozen=True)
class Figures:
    kills: int
    acknowledged_deletes: int
    acknowledged_gets: int
    lost: int


def seed(database_url: str, conversations: int, rng: random.Random) -> tuple[str, list[str]]:
    """`conversations` of USER's, with messages; returns a key of USER's and their ids."""
    store = open_store(database_url)
    try:
        documents = [
            conversation(
                USER,
                id=f"{rng.getrandbits(32):08x}-0000-4000-8000-{n:012x}",
                messages=[message(1_735_815_581_000 + i) for i in range(3)],
            )
            for n in range(conversations)
        ]
        store.upsert(documents)
        key = create_key(store, USER, scopes=("ayeto.conversation",))[0]
    finally:
        store.close()
    return key, [d["id"] for d in documents]


class Clients:
    """Threads that delete and get at random until stopped; every answer goes to `acknowledged`."""

    def __init__(
        self, server: Restartable, key: str, ids: list[str], acknowledged: Acknowledged
    ) -> None:
        self.server, self.key, self.ids, self.acknowledged = server, key, ids, acknowledged
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, count: int, rng: random.Random) -> None:
        self.stopping.clear()
        # Each thread has its own conversations: two concurrent gets of one conversation may
        # commit their stamps in either order, which says nothing about durability.
        self.threads = [
            threading.Thread(
                target=self._run,
                args=(self.ids[n::count], random.Random(rng.random())),
                daemon=True,
            )
            for n in range(count)
        ]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a client thread did not stop"

    def _run(self, ids: list[str], rng: random.Random) -> None:
        headers = {"uni-api-key": self.key}
        with httpx.Client(base_url=self.server.base_url, headers=headers, timeout=10) as http:
            while not self.stopping.is_set():
                endpoint = "delete" if rng.random() < 0.25 else "get"
                entity_id = rng.choice(ids)
                try:
                    response: httpx.Response | None = http.post(
                        f"{BASE}/{endpoint}", params={"entity_id": entity_id}
                    )
                except httpx.TransportError:
                    response = None
                    time.sleep(RETRY_SECONDS)
                self.acknowledged.record(endpoint, entity_id, response)


def integrity(database_url: str) -> str:
    """SQLite's own verdict on the database file, read without ayeto."""
    path = make_url(database_url).database
    assert path is not None
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def lost(server: Restartable, key: str, acknowledged: Acknowledged, recent: set[str]) -> list[str]:
    """Acknowledged answers the restarted server contradicts, each as a line saying which.

    Deletes acknowledged in this round (`recent`) are read back one by one with `get` (404); all
    others, and every `accessed` stamp, from one `find` of everything, which records no access.
    """
    problems = []
    with httpx.Client(base_url=server.base_url, headers={"uni-api-key": key}, timeout=30) as http:
        for entity_id in sorted(recent):
            response = http.post(f"{BASE}/get", params={"entity_id": entity_id})
            if response.status_code != 404:
                problems.append(f"deleted {entity_id} answers {response.status_code}")
        response = http.post(f"{BASE}/find", json={})
        assert response.status_code == 200, response.text
        stored = {d["id"]: d["accessed"] for d in response.json()}
    for entity_id in sorted(acknowledged.deleted & stored.keys()):
        problems.append(f"deleted {entity_id} is still there")
    for entity_id, stamp in sorted(acknowledged.accessed.items()):
        if entity_id in acknowledged.deleted or entity_id in acknowledged.maybe_deleted:
            continue
        seen = stored.get(entity_id)
        if seen is None or seen["user_id"] != USER or seen["timestamp"] < stamp:
            problems.append(f"{entity_id} was read at {stamp}, now holds {seen}")
    return problems


def crash_rounds(
    server: Restartable,
    key: str,
    ids: list[str],
    kills: int,
    rng: random.Random,
    *,
    clients: int = 4,
    answers_per_round: int = 40,
) -> Figures:
    """Kill the (started) server `kills` times under load; every loss found is an AssertionError.

    The server is killed once a seeded number of answers, up to `answers_per_round`, has come back
    in the round, plus a seeded fraction of a client's round trip: mid-request, mid-commit, or
    between requests.
    """
    acknowledged = Acknowledged()
    threads = Clients(server, key, ids, acknowledged)
    sqlite = server.database_url.startswith("sqlite")
    for _ in range(kills):
        deleted_before = set(acknowledged.deleted)
        target = acknowledged.answers + rng.randint(1, answers_per_round)
        threads.start(clients, rng)
        deadline = time.monotonic() + 60
        while acknowledged.answers < target and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.01))
        server.kill()
        threads.stop()
        assert acknowledged.answers >= target, "the clients got no answers for a minute"
        if sqlite:
            assert integrity(server.database_url) == "ok"
        server.start()
        problems = lost(server, key, acknowledged, acknowledged.deleted - deleted_before)
        assert problems == [], "\n".join(problems)
    return Figures(kills, len(acknowledged.deleted), len(acknowledged.accessed), lost=0)

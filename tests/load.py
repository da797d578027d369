"""Concurrent clients mixing find, get and delete against a real `ayeto serve`, for a bounded time.

Used by tests/test_load.py (short) and bench/load.py (50 clients, 30 s). Several users share the
server; a client now and then asks for another user's conversation (403) or one already deleted
(404). Every answer's status is counted per endpoint, every failure to get an answer at all is a
connection error, latencies are kept, and the server's resident memory is sampled every second.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ayeto.auth import create_key
from ayeto.store import open_store
from tests.factories import conversation, message
from tests.processes import Server

BASE = "/api/v3/conversation"
USERS = tuple(f"5555555{n}-5555-4555-8555-55555555555{n}" for n in range(5))
# What each endpoint may answer under this load: anything else (a 5xx above all) is a defect.
EXPECTED = {"find": {200}, "get": {200, 403, 404}, "delete": {200, 403, 404}}
HOT = 10
# Less than the server's keep-alive timeout (uvicorn's default, 5 s).
KEEPALIVE_SECONDS = 2
FIND_BODIES: tuple[dict[str, Any], ...] = (
    {},
    {"limit_to": 20},
    {"filters": [["model", "==", "gpt-4o"]], "sort_key": "name", "limit_to": 10},
    {"filters": [["messages.content", "regex", "(?i)python"]], "limit_from": 5, "limit_to": 25},
    {"filters": [["created.timestamp", ">", 1_735_815_580_100]], "sort_order": 0},
)


@dataclass
class Figures:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    connection_errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # bytes, one sample a second
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    def unexpected(self) -> dict[tuple[str, int], int]:
        return {(e, s): n for (e, s), n in self.statuses.items() if s not in EXPECTED[e]}

    def percentile(self, percent: int) -> float:
        """Latency in milliseconds below which `percent` % of the answers came."""
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return 1000 * cuts[percent - 1]

    def rss_drift(self, warmup: int = 5, window: int = 10) -> float | None:
        """Mean RSS of the last `window` samples over that of the first `window` after `warmup`;
        None for a run too short to have both."""
        if len(self.rss) < warmup + 2 * window:
            return None
        first = self.rss[warmup : warmup + window]
        last = self.rss[-window:]
        return statistics.fmean(last) / statistics.fmean(first)


@dataclass(frozen=True)
class User:
    key: str
    ids: list[str]


def seed(database_url: str, per_user: int, rng: random.Random) -> list[User]:
    """`per_user` conversations for each of USERS, and a key for each."""
    store = open_store(database_url)
    users = []
    try:
        for user in USERS:
            documents = [
                conversation(
                    user,
                    name=rng.choice(("Python functions", "Trip plan", "Résumé", "")),
                    model=rng.choice(("gpt-4o", "gpt-4o-mini", "claude")),
                    created={"user_id": user, "timestamp": 1_735_815_580_000 + n},
                    messages=[
                        message(1_735_815_581_000 + i, content=rng.choice(("Python?", "hi", None)))
                        for i in range(rng.randint(0, 6))
                    ],
                )
                for n in range(per_user)
            ]
            store.upsert(documents)
            key = create_key(store, user, scopes=("ayeto.conversation",))[0]
            users.append(User(key, [d["id"] for d in documents]))
    finally:
        store.close()
    return users


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def _client(
    http: httpx.AsyncClient,
    user: User,
    others: list[str],
    deadline: float,
    rng: random.Random,
    figures: Figures,
) -> None:
    headers, own = {"uni-api-key": user.key}, user.ids
    while time.monotonic() < deadline:
        roll = rng.random()
        body, params = None, None
        if roll < 0.4:
            endpoint, body = "find", rng.choice(FIND_BODIES)
        else:
            endpoint = "delete" if roll < 0.5 else "get"
            # One in ten is someone else's conversation (403); half of one's own are among a few
            # often asked for, so that deleted ones come up again (404).
            pool = rng.choice((own, own[:HOT]))
            params = {"entity_id": rng.choice(others if rng.random() < 0.1 else pool)}
        started = time.monotonic()
        try:
            response = await http.post(
                f"{BASE}/{endpoint}", headers=headers, json=body, params=params
            )
        except httpx.TransportError as exc:
            figures.connection_errors[type(exc).__name__] += 1
            continue
        figures.latencies.append(time.monotonic() - started)
        figures.statuses[endpoint, response.status_code] += 1


async def _sample(pid: int, deadline: float, figures: Figures) -> None:
    while time.monotonic() < deadline:
        figures.rss.append(rss_bytes(pid))
        await asyncio.sleep(1)


async def _load(
    server: Server, users: list[User], clients: int, seconds: float, rng: random.Random
) -> Figures:
    figures = Figures()
    # httpx keeps an idle connection 5 s, exactly as long as uvicorn does: a request sent on one
    # just as the server closes it fails without an answer. Clients must drop theirs first.
    limits = httpx.Limits(max_connections=clients, keepalive_expiry=KEEPALIVE_SECONDS)
    started = time.monotonic()
    deadline = started + seconds
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as http:
        tasks = []
        for n in range(clients):
            user = users[n % len(users)]
            others = [i for other in users if other is not user for i in other.ids]
            client_rng = random.Random(rng.random())
            tasks.append(_client(http, user, others, deadline, client_rng, figures))
        await asyncio.gather(_sample(server.process.pid, deadline, figures), *tasks)
    figures.seconds = time.monotonic() - started
    return figures


def run_load(
    server: Server, users: list[User], *, clients: int, seconds: float, rng: random.Random
) -> Figures:
    """`clients` concurrent clients of `users` for `seconds` against `server`."""
    return asyncio.run(_load(server, users, clients, seconds, rng))

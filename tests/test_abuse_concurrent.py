"""While one client abuses a real `ayeto serve`, another user's `get` still answers.

Each case floods the server from 127.0.0.1 (1,000+ invalid keys, thousands of filters, many regex
filters) while a victim thread gets one of its own conversations over and over. Every abusive
request gets an answer the API defines (never a 5xx), and every one of the victim's gets is a 200
with its conversation. The latency of the victim's gets is printed per case (run with -s); the
figures are in bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from ayeto.auth import create_key
from ayeto.query import MAX_FILTERS, MAX_PATTERNS_TOTAL
from ayeto.store import open_store
from tests.factories import ALICE, BOB, conversation, message
from tests.processes import Server, serving

BASE = "/api/v3/conversation"
INVALID = (401, "API key is invalid")
# A request of the flood given up on before it was answered.
STILL_WAITING = (0, "still waiting")
# The attacker's searchable data: enough rows that a regex filter costs real work per request.
ATTACKER_CONVERSATIONS = 1000
WORDS = ("alpha", "Python", "budget", "réseau", "1234", "lighthouse", "dusk", "zebra")

Answer = tuple[int, str]
# The headers and `find` body of one abusive request.
Abuse = tuple[dict[str, str], Any]


class Victim:
    """A thread that gets one conversation with a valid key until stopped, timing every answer."""

    def __init__(self, server: Server, key: str, conversation_id: str) -> None:
        self.url = f"{server.base_url}{BASE}/get"
        self.headers = {"uni-api-key": key}
        self.conversation_id = conversation_id
        self.answers: Counter[Answer] = Counter()
        self.latencies: list[float] = []
        self.stopping = threading.Event()
        self.first_answer = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=120) as http:
            while not self.stopping.is_set():
                started = time.monotonic()
                response = http.post(self.url, params={"entity_id": self.conversation_id})
                self.latencies.append(time.monotonic() - started)
                answer = response.json()
                # The conversation's id, or what went wrong.
                self.answers[response.status_code, answer.get("id", answer.get("detail"))] += 1
                self.first_answer.set()
                time.sleep(0.02)

    def report(self, case: str, latencies: list[float]) -> str:
        milliseconds = sorted(1000 * s for s in latencies)
        return (
            f"abuse: {case}: victim get p50 {statistics.median(milliseconds):.1f} ms, "
            f"max {milliseconds[-1]:.1f} ms over {len(milliseconds)} gets"
        )


def seed(database_url: str) -> tuple[str, str, str]:
    """A key of BOB's (the abuser, with data to search), ALICE's key and one of her ids."""
    store = open_store(database_url)
    try:
        mine = conversation(ALICE, messages=[message()])
        store.upsert(
            [
                mine,
                *(
                    conversation(
                        BOB,
                        name=f"{WORDS[n % 8]} {n}",
                        messages=[
                            message(1_735_815_581_000 + i, content=" ".join(WORDS[i:] * 8))
                            for i in range(3)
                        ],
                    )
                    for n in range(ATTACKER_CONVERSATIONS)
                ),
            ]
        )
        abuser = create_key(store, BOB, scopes=("ayeto.conversation",))[0]
        victim = create_key(store, ALICE, scopes=("ayeto.conversation",))[0]
    finally:
        store.close()
    return abuser, victim, mine["id"]


# Real servers under load from a few keys: no rate limit refuses them (`conftest.load_env`).
pytestmark = pytest.mark.usefixtures("load_env")


@pytest.fixture
def seeded(database_url: str) -> tuple[str, str, str, str]:
    return (database_url, *seed(database_url))


async def _flood(
    base_url: str, requests: list[Abuse], concurrency: int, seconds: float | None
) -> Counter[Answer]:
    """Send every (headers, find body) at once, `concurrency` at a time; count (status, detail).

    With `seconds`, what is not answered by then is given up on and counted as `STILL_WAITING`.
    """
    answers: Counter[Answer] = Counter()
    gate = asyncio.Semaphore(concurrency)
    # A new connection per request, as a flood of guesses arrives; and no request may meet a
    # kept-alive connection just as the server closes it for being idle.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=0)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=300) as http:

        async def send(headers: dict[str, str], body: Any) -> None:
            async with gate:
                try:
                    response = await http.post(f"{BASE}/find", headers=headers, json=body)
                except httpx.TransportError as exc:
                    answers[0, repr(exc)] += 1
                    return
            detail = response.json()["detail"] if response.status_code != 200 else ""
            answers[response.status_code, detail] += 1

        tasks = [asyncio.create_task(send(headers, body)) for headers, body in requests]
        _, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        answers[STILL_WAITING] += len(pending)
    return answers


def under_attack(
    seeded: tuple[str, str, str, str],
    case: str,
    requests: list[Abuse],
    concurrency: int,
    seconds: float | None = None,
) -> Counter[Answer]:
    """The answers to `requests`, sent while the victim gets; the victim's answers are checked."""
    database_url, _, victim_key, victim_id = seeded
    with serving(database_url) as server:
        victim = Victim(server, victim_key, victim_id)
        victim.thread.start()
        try:
            victim.first_answer.wait(timeout=30)
            before = len(victim.latencies)
            answers = asyncio.run(_flood(server.base_url, requests, concurrency, seconds))
            during = len(victim.latencies) - before
        finally:
            victim.stopping.set()
            victim.thread.join(timeout=150)
    assert set(victim.answers) == {(200, victim_id)}
    # The victim's gets were answered while the flood went on, not only before or after it.
    assert during >= 1
    during_flood = victim.latencies[before : before + during]
    print("\n" + victim.report(f"{database_url.split(':', 1)[0]}: {case}", during_flood))
    return answers


def abuser(seeded: tuple[str, str, str, str]) -> dict[str, str]:
    return {"uni-api-key": seeded[1]}


@pytest.mark.e2e
def test_invalid_keys_do_not_hold_up_a_valid_key(seeded: tuple[str, str, str, str]) -> None:
    count = 1200
    flood: list[Abuse] = [
        ({"uni-api-key": "ayeto-" + secrets.token_hex(32)}, {}) for _ in range(count)
    ]
    answers = under_attack(
        seeded, f"{count:,} invalid keys, 200 at a time, for 10 s", flood, 200, seconds=10
    )
    # Every answer is the 401. One address's failures wait in one line, 10 free and then up to
    # 2 s each, so most of the flood is still waiting when it is given up on: an attacker gets
    # no more answers for opening more connections.
    assert set(answers) == {INVALID, STILL_WAITING}
    assert 10 <= answers[INVALID] <= 20
    assert sum(answers.values()) == count


@pytest.mark.e2e
def test_thousands_of_filters_do_not_hold_up_a_valid_key(
    seeded: tuple[str, str, str, str],
) -> None:
    sizes = [MAX_FILTERS + 1, 1_000, 5_000, 20_000] * 10
    flood: list[Abuse] = [
        (abuser(seeded), {"filters": [["messages.content", "!=", f"w{i}"] for i in range(n)]})
        for n in sizes
    ]
    answers = under_attack(seeded, "40 finds of 51 to 20,000 filters, 8 at a time", flood, 8)
    assert answers == Counter(
        {(400, f"filters: at most {MAX_FILTERS} filters, got {n}"): 10 for n in set(sizes)}
    )


@pytest.mark.e2e
def test_many_regex_filters_do_not_hold_up_a_valid_key(
    seeded: tuple[str, str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As many regex filters and as much pattern text as a request may carry, each pattern a
    # search every message of every conversation must run; and as many again past the bound.
    # They run to their end (within the statement timeout): this is about the victim, not the
    # scan budget that would cut them short on a busy machine (tests/test_query_budget.py).
    monkeypatch.setenv("AYETO_DB_SCAN_TIMEOUT_MS", "600000")
    length = MAX_PATTERNS_TOTAL // MAX_FILTERS
    heaviest = [
        ["messages.content", "regex", f"(?i)({WORDS[i % 8]}|zz[0-9]+)\\s+\\w+".ljust(length, ".")]
        for i in range(MAX_FILTERS)
    ]
    too_much = [[*f[:2], f[2] + "x"] for f in heaviest]
    flood: list[Abuse] = [(abuser(seeded), {"filters": heaviest})] * 6 + [
        (abuser(seeded), {"filters": too_much})
    ] * 20
    answers = under_attack(
        seeded,
        f"{MAX_FILTERS} regex filters of {length} characters, 6 + 20 over the bound",
        flood,
        4,
    )
    over = (
        400,
        f"filters: regex patterns may total at most {MAX_PATTERNS_TOTAL} characters, "
        f"got {MAX_PATTERNS_TOTAL + MAX_FILTERS}",
    )
    assert answers == Counter({over: 20, (200, ""): 6})

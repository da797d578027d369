"""Per-key rate limits: the 429, the RateLimit fields, per-key limits, shared counts in Redis, and
what a real server does with several workers, without Redis, and when Redis goes away."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator

import httpx
import pytest
from limits.storage import MemoryStorage
from starlette.testclient import TestClient

from ayeto.api import create_app
from ayeto.auth import create_key
from ayeto.config import Settings
from ayeto.ratelimit import SWEEP_SECONDS, RateLimiter, SharedStorage, parse_limits
from ayeto.store import Store
from tests.factories import ALICE, BOB
from tests.processes import free_port, new_key, redis_server, serving

FIND = "/api/v3/conversation/find"
GET = "/api/v3/conversation/get"
INVALID_KEY = {"uni-api-key": "ayeto-" + "0" * 64}


def auth(key: str) -> dict[str, str]:
    return {"uni-api-key": key}


@pytest.fixture
def limited(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    # The limits' in-memory windows read `time.time()`: stopped, a window's seconds left are
    # exactly its length however slowly the machine runs the requests (60, never 59).
    stopped = time.time()
    monkeypatch.setattr(time, "time", lambda: stopped)
    with TestClient(create_app(store, Settings(rate_limit="3/minute"))) as client:
        yield client


# -- the notation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "windows"),
    [
        ("600/minute", [(600, 60)]),
        (" 20/second; 600/minute ", [(20, 1), (600, 60)]),
        ("50/2second", [(50, 2)]),
        ("1 per hour", [(1, 3600)]),
    ],
)
def test_limits_are_read_in_the_notation_of_the_limits_library(
    text: str, windows: list[tuple[int, int]]
) -> None:
    assert [(item.amount, item.get_expiry()) for item in parse_limits(text)] == windows


@pytest.mark.parametrize("text", ["", "600", "600/fortnight", "fast", "0/minute", "5/second;x"])
def test_a_limit_that_is_not_the_notation_or_admits_nothing_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_limits(text)


def test_settings_name_the_variable_of_a_bad_limit_or_redis_url() -> None:
    from ayeto.config import InvalidSetting

    with pytest.raises(InvalidSetting) as bad_limit:
        Settings.from_env({"AYETO_RATE_LIMIT": "600/fortnight"})
    with pytest.raises(InvalidSetting) as bad_redis:
        Settings.from_env({"AYETO_REDIS_URL": "localhost:6379"})
    assert str(bad_limit.value) == (
        "AYETO_RATE_LIMIT takes limits such as 600/minute, or several separated by ';' as "
        "20/second;600/minute, not '600/fortnight'"
    )
    assert str(bad_redis.value) == (
        "AYETO_REDIS_URL takes a URL such as redis://127.0.0.1:6379/0 (or rediss://, "
        "redis+unix://), not 'localhost:6379'"
    )
    settings = Settings.from_env(
        {
            "AYETO_RATE_LIMIT": " 20/second;600/minute",
            "AYETO_REDIS_URL": "async+redis://cache:6379/2",
        }
    )
    assert (settings.rate_limit, settings.redis_url) == (
        "20/second;600/minute",
        "redis://cache:6379/2",
    )
    assert (Settings.from_env({}).rate_limit, Settings.from_env({}).redis_url) == (
        "600/minute",
        None,
    )


# -- in the API ----------------------------------------------------------------------------------


def test_over_the_limit_is_429_with_retry_after_and_the_rate_limit_fields(
    store: Store, limited: TestClient
) -> None:
    key = create_key(store, ALICE)[0]
    answers = [limited.post(FIND, headers=auth(key), json={}) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert {answer.headers["RateLimit-Policy"] for answer in answers} == {'"3-per-60s";q=3;w=60'}
    assert [answer.headers["RateLimit"] for answer in answers] == [
        '"3-per-60s";r=2;t=60',
        '"3-per-60s";r=1;t=60',
        '"3-per-60s";r=0;t=60',
        '"3-per-60s";r=0;t=60',
    ]
    refused = answers[-1]
    assert refused.json() == {"detail": "rate limit exceeded: 3 per 1 minute; retry in 60 s"}
    assert refused.headers["Retry-After"] == "60"
    assert "Retry-After" not in answers[0].headers


def test_every_answer_after_auth_carries_the_fields_and_a_401_none(
    store: Store, limited: TestClient
) -> None:
    key = create_key(store, ALICE)[0]
    unknown = limited.post(GET, headers=auth(key), params={"entity_id": str(uuid.uuid4())})
    malformed = limited.post(GET, headers=auth(key), params={"entity_id": "x"})
    anonymous = limited.post(FIND, json={})
    invalid = limited.post(FIND, headers=INVALID_KEY, json={})
    assert [(a.status_code, a.headers.get("RateLimit")) for a in (unknown, malformed)] == [
        (404, '"3-per-60s";r=2;t=60'),
        (400, '"3-per-60s";r=1;t=60'),
    ]
    for answer in (anonymous, invalid):
        assert answer.status_code == 401
        assert "RateLimit" not in answer.headers
        assert "RateLimit-Policy" not in answer.headers


def test_each_key_has_its_own_budget(store: Store, limited: TestClient) -> None:
    spent, other = create_key(store, ALICE)[0], create_key(store, ALICE)[0]
    statuses = [limited.post(FIND, headers=auth(spent), json={}).status_code for _ in range(4)]
    fresh = limited.post(FIND, headers=auth(other), json={})
    assert statuses == [200, 200, 200, 429]
    assert (fresh.status_code, fresh.headers["RateLimit"]) == (200, '"3-per-60s";r=2;t=60')


def test_a_key_with_its_own_limit_is_held_to_it(store: Store, limited: TestClient) -> None:
    key = create_key(store, BOB, rate_limit="1/hour;100/day")[0]
    first = limited.post(FIND, headers=auth(key), json={})
    second = limited.post(FIND, headers=auth(key), json={})
    assert first.headers["RateLimit-Policy"] == (
        '"1-per-3600s";q=1;w=3600, "100-per-86400s";q=100;w=86400'
    )
    assert first.headers["RateLimit"] == '"1-per-3600s";r=0;t=3600, "100-per-86400s";r=99;t=86400'
    assert (second.status_code, second.json()) == (
        429,
        {"detail": "rate limit exceeded: 1 per 1 hour; retry in 3600 s"},
    )
    # The refused request spent nothing of the day's budget.
    assert second.headers["RateLimit"] == '"1-per-3600s";r=0;t=3600, "100-per-86400s";r=99;t=86400'


def test_two_servers_on_one_redis_share_a_key_s_budget(store: Store, redis_url: str) -> None:
    # Two applications stand for two workers (or hosts); the key is new, so its count is too.
    key = create_key(store, ALICE)[0]
    settings = Settings(rate_limit="3/minute", redis_url=redis_url)
    with (
        TestClient(create_app(store, settings)) as one,
        TestClient(create_app(store, settings)) as other,
    ):
        statuses = [
            client.post(FIND, headers=auth(key), json={}).status_code
            for client in (one, other, one, other)
        ]
    assert statuses == [200, 200, 200, 429]


def test_without_redis_the_limits_count_in_the_process_and_say_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nothing listens there
    nowhere = f"redis://127.0.0.1:{port}/0"

    async def scenario() -> list[bool]:
        limiter = RateLimiter("2/minute", SharedStorage(nowhere))
        try:
            return [(await limiter.hit("k")).allowed for _ in range(3)]
        finally:
            limiter.storage.close()

    with caplog.at_level(logging.ERROR, logger="ayeto.ratelimit"):
        assert asyncio.run(scenario()) == [True, True, False]
    assert [record.getMessage() for record in caplog.records] == [
        f"Redis unreachable at {nowhere} ([Errno 111] Connect call failed ('127.0.0.1', "
        f"{port})): rate limits count per process until it answers"
    ]


# -- real servers ----------------------------------------------------------------------------------


async def hammer(
    base_url: str, key: str, clients: int, seconds: float, pause: float = 0
) -> Counter[int]:
    """`clients` connections sending `find` with `key` for `seconds`, each as soon as answered
    (or `pause` seconds later)."""
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        deadline = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < deadline:
                statuses[(await http.post(FIND, headers=auth(key), json={})).status_code] += 1
                await asyncio.sleep(pause)

        await asyncio.gather(*(client() for _ in range(clients)))
    return statuses


async def both(
    one: Coroutine[None, None, Counter[int]], other: Coroutine[None, None, Counter[int]]
) -> tuple[Counter[int], Counter[int]]:
    return await asyncio.gather(one, other)


@pytest.mark.e2e
def test_four_workers_with_redis_admit_one_budget_per_key(postgres_url: str) -> None:
    # 60 per 3 s is 20 a second: 8 clients on 4 workers ask many times that on two cores.
    key, other = new_key(postgres_url, ALICE), new_key(postgres_url, BOB)
    with (
        redis_server() as redis,
        serving(
            postgres_url, "--workers", "4", "--rate-limit", "60/3second", "--redis-url", redis.url
        ) as server,
    ):
        # Every worker up and connected first, so none starts late into the window.
        asyncio.run(hammer(server.base_url, new_key(postgres_url, BOB), clients=8, seconds=0.5))
        # For less than the 3 s window: the first requests admitted must not have left it before
        # the last are sent, or their places are taken again.
        statuses, unaffected = asyncio.run(
            both(hammer(server.base_url, key, 8, 2.5), hammer(server.base_url, other, 1, 2.5, 0.2))
        )
    ratio = statuses[200] / 60
    print(f"4 workers, Redis: admitted {statuses[200]} of {statuses.total()}, {ratio:.3f}")
    assert set(statuses) == {200, 429}
    assert 0.95 <= ratio <= 1.05
    # The second key, asking 5 times a second meanwhile, was never refused.
    assert set(unaffected) == {200}


@pytest.mark.e2e
def test_one_worker_without_redis_enforces_its_limit_exactly(sqlite_url: str) -> None:
    key = new_key(sqlite_url, ALICE)
    with serving(sqlite_url, "--rate-limit", "40/minute") as server:
        statuses = asyncio.run(hammer(server.base_url, key, clients=8, seconds=2.0))
    print(f"1 worker, in process: admitted {statuses[200]} of {sum(statuses.values())} (limit 40)")
    assert statuses[200] == 40
    assert set(statuses) == {200, 429}


@pytest.mark.e2e
def test_the_limits_fail_open_while_redis_is_down_and_share_again_when_it_is_back(
    sqlite_url: str,
) -> None:
    key = new_key(sqlite_url, ALICE)
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def load(base_url: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while not stop.is_set():
                statuses[http.post(FIND, headers=auth(key), json={}).status_code] += 1

    with (
        redis_server() as redis,
        serving(sqlite_url, "--rate-limit", "100000/minute", "--redis-url", redis.url) as server,
    ):
        worker = threading.Thread(target=load, args=(server.base_url,))
        worker.start()
        try:
            wait_for(lambda: statuses[200] >= 50)
            redis.stop()
            down = statuses.total()
            wait_for(lambda: "Redis unreachable" in server.output())
            wait_for(lambda: statuses.total() >= down + 50)
            redis.start()
            wait_for(lambda: "Redis answers again" in server.output())
            back = statuses.total()
            wait_for(lambda: statuses.total() >= back + 50)
        finally:
            stop.set()
            worker.join()
        shared = redis_keys(redis.port)
        output = server.output()
    print(f"through a Redis outage: {dict(statuses)}")
    assert set(statuses) == {200}
    assert output.count("Redis unreachable") == 1
    assert output.count("Redis answers again") == 1
    assert "Traceback" not in output
    # The requests after the restart were counted in Redis again.
    assert shared > 0


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def redis_keys(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(b"DBSIZE\r\n")
        answer = connection.recv(64)
    assert answer.startswith(b":"), answer
    return int(answer[1:].strip())


@pytest.mark.e2e
def test_concurrent_invalid_keys_from_one_client_get_no_more_guesses(sqlite_url: str) -> None:
    # 50 connections at once once got 32 answers a second. Now a client's failures wait in one
    # line: 10 free ones, then 0.05 s, 0.1 s, ... 2 s each; the rest are still waiting.
    async def guess(base_url: str) -> Counter[int]:
        statuses: Counter[int] = Counter()
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:

            async def client() -> None:
                while True:
                    response = await http.post(FIND, headers=INVALID_KEY, json={})
                    statuses[response.status_code] += 1

            clients = [asyncio.create_task(client()) for _ in range(50)]
            await asyncio.sleep(4.0)
            # What is still in line is not answered within the 4 s: it is not counted.
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
        return statuses

    with serving(sqlite_url) as server:
        statuses = asyncio.run(guess(server.base_url))
    print(f"50 concurrent invalid-key clients for 4 s: {dict(statuses)}")
    # 10 free, then delays summing to 3.15 s for the next 6: at most 17 within the 4 s.
    assert 10 <= statuses[401] <= 17
    assert set(statuses) == {401}


# -- the process's memory counts -----------------------------------------------------------------


def test_the_memory_counts_are_swept_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    sweeps: list[float] = []
    # The library's own hook, which the storage overrides: were it renamed, the override would
    # silently stop working, and this would fail.
    library = vars(MemoryStorage)["_MemoryStorage__schedule_expiry"]

    def counted(self: MemoryStorage) -> None:
        sweeps.append(time.monotonic())
        library(self)

    monkeypatch.setattr(MemoryStorage, "_MemoryStorage__schedule_expiry", counted)
    storage = SharedStorage()
    limiter = RateLimiter("5/second", storage)

    async def scenario() -> None:
        verdicts = [await limiter.hit("a") for _ in range(100)]
        assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 95
        assert len(sweeps) == 1
        # Expired entries still go, at the next sweep a second later.
        await asyncio.sleep(1.1)
        storage.memory.swept_at -= SWEEP_SECONDS
        assert (await limiter.hit("b")).allowed
        assert len(sweeps) == 2
        storage.memory.timer.join(5)
        # The library leaves a key whose entries all expired with an empty list.
        entries = {key: len(kept) for key, kept in storage.memory.events.items()}
        assert entries == {"LIMITER/key/a/5/1/second": 0, "LIMITER/key/b/5/1/second": 1}

    asyncio.run(scenario())

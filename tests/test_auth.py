"""API keys: their format and storage, resolving a key to a principal, and slowing down guessers."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from ayeto.api import create_app
from ayeto.auth import (
    INVALID,
    NOT_PROVIDED,
    TOUCH_INTERVAL_MS,
    FailureThrottle,
    Principal,
    Scope,
    authenticate,
    create_key,
    digest,
)
from ayeto.clock import now_ms
from ayeto.errors import Unauthorized
from ayeto.ratelimit import SharedStorage
from ayeto.store import ApiKey, SqlStore, Store
from ayeto.store.schema import api_keys
from tests.factories import ALICE, BOB

NOW = 1_760_000_000_000
FIND = "/api/v3/conversation/find"
KEY_FORMAT = re.compile(r"ayeto-[0-9a-f]{64}")


def stored(store: Store, key: str) -> ApiKey:
    record = store.key_by_digest(digest(key))
    assert record is not None
    return record


# -- format and storage ----------------------------------------------------------------------------


def test_keys_are_prefixed_lowercase_hex_and_never_repeat(store: Store) -> None:
    keys = [create_key(store, ALICE)[0] for _ in range(20)]
    for key in keys:
        assert KEY_FORMAT.fullmatch(key), key
        assert len(key) == 70
    assert len(set(keys)) == 20
    # 256 random bits: no two keys share even their first 16 hex digits.
    assert len({key[6:22] for key in keys}) == 20


def test_only_the_sha256_digest_is_stored(store: Store) -> None:
    assert isinstance(store, SqlStore)
    before = now_ms()
    key, record = create_key(
        store, ALICE, scopes=("ayeto.conversation", "*"), name="laptop", expires_at=NOW
    )
    after = now_ms()
    assert before <= record.created_at <= after
    assert record == ApiKey(
        id=record.id,
        user_id=ALICE,
        name="laptop",
        scopes=("ayeto.conversation", "*"),
        created_at=record.created_at,
        last_used_at=None,
        expires_at=NOW,
        revoked_at=None,
    )
    with store.engine.connect() as connection:
        [row] = connection.execute(select(api_keys)).mappings().all()
    assert dict(row) == {
        "id": record.id,
        "digest": hashlib.sha256(key.encode()).hexdigest(),
        "user_id": ALICE,
        "name": "laptop",
        "scopes": "ayeto.conversation *",
        "created_at": record.created_at,
        "last_used_at": None,
        "expires_at": NOW,
        "revoked_at": None,
        "rate_limit": None,
    }
    secret = key.removeprefix("ayeto-")
    assert not [column for column, value in row.items() if secret in str(value)]
    assert store.list_keys() == [record]


# -- authenticate ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, ""])
def test_no_key_is_not_provided(store: Store, header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        authenticate(store, header, NOW)
    assert caught.value.detail == NOT_PROVIDED == "API key not provided"


KeyMaker = Callable[[Store], str]


def _key(
    *, scopes: tuple[str, ...] = (Scope.CONVERSATION,), expires_at: int | None = None
) -> KeyMaker:
    def make(store: Store) -> str:
        return create_key(store, ALICE, scopes=scopes, expires_at=expires_at)[0]

    return make


def _revoked(store: Store) -> str:
    key, record = create_key(store, ALICE)
    store.revoke_key(record.id, None, NOW - 1)
    return key


def _altered(change: Callable[[str], str]) -> KeyMaker:
    def make(store: Store) -> str:
        return change(create_key(store, ALICE)[0])

    return make


INVALID_KEYS: dict[str, KeyMaker] = {
    "unknown": _altered(lambda _: "ayeto-" + "0" * 64),
    "one digit short": _altered(lambda key: key[:-1]),
    "one digit more": _altered(lambda key: key + "0"),
    "uppercase hex": _altered(lambda key: "ayeto-" + key[6:].upper()),
    "uppercase prefix": _altered(lambda key: "AYETO-" + key[6:]),
    "no prefix": _altered(lambda key: key[6:]),
    "trailing newline": _altered(lambda key: key + "\n"),
    "leading space": _altered(lambda key: " " + key),
    "bearer": _altered(lambda key: "Bearer " + key),
    "revoked": _revoked,
    "expired just now": _key(expires_at=NOW),
    "expired": _key(expires_at=NOW - 1),
    "no scope": _key(scopes=()),
    "other scope": _key(scopes=("ayeto.images",)),
    "scope differing in case": _key(scopes=("Ayeto.Conversation",)),
}


@pytest.mark.parametrize("make_key", list(INVALID_KEYS.values()), ids=list(INVALID_KEYS))
def test_invalid_key(store: Store, make_key: KeyMaker) -> None:
    key = make_key(store)
    with pytest.raises(Unauthorized) as caught:
        authenticate(store, key, NOW)
    assert caught.value.detail == INVALID == "API key is invalid"
    # A refused key is not recorded as used.
    assert [record.last_used_at for record in store.list_keys()] == [None]


VALID_KEYS: dict[str, tuple[tuple[str, ...], int | None]] = {
    "conversation scope": (("ayeto.conversation",), None),
    "wildcard scope": (("*",), None),
    "among other scopes": (("ayeto.images", "ayeto.conversation"), None),
    "expires a millisecond later": (("ayeto.conversation",), NOW + 1),
}


@pytest.mark.parametrize(("scopes", "expires_at"), list(VALID_KEYS.values()), ids=list(VALID_KEYS))
def test_valid_key_is_its_users_principal(
    store: Store, scopes: tuple[str, ...], expires_at: int | None
) -> None:
    create_key(store, BOB)
    key, record = create_key(store, ALICE, scopes=scopes, expires_at=expires_at)
    assert authenticate(store, key, NOW) == Principal(user_id=ALICE, key_id=record.id)


def test_last_used_is_refreshed_at_most_once_per_interval(store: Store) -> None:
    key, record = create_key(store, ALICE)
    assert stored(store, key).last_used_at is None
    steps = [
        (NOW, NOW),
        (NOW + 1, NOW),
        (NOW + TOUCH_INTERVAL_MS - 1, NOW),
        (NOW + TOUCH_INTERVAL_MS, NOW + TOUCH_INTERVAL_MS),
        (NOW + 2 * TOUCH_INTERVAL_MS - 1, NOW + TOUCH_INTERVAL_MS),
        (NOW + 5 * TOUCH_INTERVAL_MS, NOW + 5 * TOUCH_INTERVAL_MS),
    ]
    for now, last_used in steps:
        assert authenticate(store, key, now) == Principal(user_id=ALICE, key_id=record.id)
        assert stored(store, key).last_used_at == last_used, now
    assert TOUCH_INTERVAL_MS == 60_000


# -- the invalid-key throttle ----------------------------------------------------------------------


def test_free_failures_then_doubling_delays_up_to_the_cap() -> None:
    throttle = FailureThrottle(free=3, base_delay=0.125, max_delay=1.0)
    delays = [throttle.delay(n) for n in range(1, 10)]
    assert delays == [0.0, 0.0, 0.0, 0.125, 0.25, 0.5, 1.0, 1.0, 1.0]


def test_default_throttle() -> None:
    throttle = FailureThrottle()
    assert [throttle.delay(n) for n in range(1, 19)] == [0.0] * 10 + [
        0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0,
    ]  # fmt: skip


def test_the_delay_stays_at_the_cap_however_many_failures() -> None:
    # 0.05 * 2 ** (n - 11) once overflowed a float at the 1,035th failure in a window.
    throttle = FailureThrottle()
    counts = (1, 10, 11, 12, 16, 17, 1_034, 1_035, 10**6, 10**18)
    assert [throttle.delay(n) for n in counts] == [
        0.0, 0.0, 0.05, 0.1, 1.6, 2.0, 2.0, 2.0, 2.0, 2.0,
    ]  # fmt: skip


async def recorded(throttle: FailureThrottle, client: str, times: int) -> list[float]:
    return [await throttle.record_failure(client) for _ in range(times)]


def test_clients_are_counted_apart() -> None:
    async def scenario() -> tuple[list[float], list[float]]:
        throttle = FailureThrottle(free=1, base_delay=0.125)
        first = await recorded(throttle, "198.51.100.1", 3)
        return first, await recorded(throttle, "198.51.100.2", 2)

    assert asyncio.run(scenario()) == ([0.0, 0.125, 0.25], [0.0, 0.125])


def test_the_count_starts_over_after_the_window() -> None:
    async def scenario() -> tuple[list[float], list[float]]:
        throttle = FailureThrottle(free=1, window_seconds=1, base_delay=0.125)
        before = await recorded(throttle, "a", 3)
        await asyncio.sleep(1.2)
        return before, await recorded(throttle, "a", 2)

    assert asyncio.run(scenario()) == ([0.0, 0.125, 0.25], [0.0, 0.125])


def test_the_counts_are_shared_through_redis(redis_url: str) -> None:
    # Two throttles stand for two workers (or hosts): the failures at one count at the other.
    client = f"198.51.100.{uuid.uuid4().int % 250}-{uuid.uuid4().hex}"

    async def scenario() -> list[float]:
        one = FailureThrottle(SharedStorage(redis_url), free=2, base_delay=0.125)
        other = FailureThrottle(SharedStorage(redis_url), free=2, base_delay=0.125)
        try:
            return [
                await one.record_failure(client),
                await other.record_failure(client),
                await one.record_failure(client),
                await other.record_failure(client),
            ]
        finally:
            one.storage.close()
            other.storage.close()

    assert asyncio.run(scenario()) == [0.0, 0.0, 0.125, 0.25]


def test_concurrent_failures_of_a_client_wait_in_line_one_at_a_time() -> None:
    async def scenario() -> tuple[int, list[str]]:
        throttle = FailureThrottle(free=0, base_delay=0.5, max_delay=0.5)
        active = peak = 0
        order: list[str] = []
        release = asyncio.Event()

        async def sleep(_: float) -> None:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await release.wait()
            active -= 1

        async def fail(client: str, label: str) -> None:
            await throttle.failed(client)
            order.append(label)

        throttle.sleep = sleep
        waiting = [asyncio.create_task(fail("a", f"a{n}")) for n in range(12)]
        other = asyncio.create_task(fail("b", "b0"))
        await asyncio.sleep(0.05)
        # One sleeper per client: "a"'s first and "b"'s; the other eleven of "a" wait behind.
        before = peak
        release.set()
        await asyncio.gather(*waiting, other)
        return before, order

    peak, order = asyncio.run(scenario())
    # However many failures a client has at once, one at a time sleeps; none is refused, and
    # another client's line is its own.
    assert peak == 2
    assert sorted(order) == sorted([f"a{n}" for n in range(12)] + ["b0"])


# -- the throttle in the API -----------------------------------------------------------------------


class RecordingThrottle(FailureThrottle):
    """The throttle, keeping every failure it was told of and the delay it answered."""

    def __init__(self, *, free: int, base_delay: float, max_delay: float) -> None:
        super().__init__(free=free, base_delay=base_delay, max_delay=max_delay)
        self.seen: list[tuple[str, float]] = []

    async def record_failure(self, client: str) -> float:
        delay = await super().record_failure(client)
        self.seen.append((client, delay))
        return delay


DELAY = 0.3


@dataclass
class Throttled:
    client: TestClient
    throttle: RecordingThrottle
    slept: list[float]  # every wait the server made before answering, in order

    def ask(self, headers: dict[str, str], status: int) -> None:
        response = self.client.post(FIND, headers=headers, json={})
        assert response.status_code == status, response.text


@pytest.fixture
def throttled(store: Store) -> Iterator[Throttled]:
    """The API with a small throttle; the waits it makes are recorded instead of slept."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    app = create_app(store)
    throttle = RecordingThrottle(free=2, base_delay=DELAY, max_delay=DELAY)
    throttle.sleep = sleep
    app.state.services.throttle = throttle
    with TestClient(app) as client:
        yield Throttled(client, throttle, slept)


def test_repeated_invalid_keys_are_delayed_and_valid_ones_are_not(
    store: Store, throttled: Throttled
) -> None:
    valid = {"uni-api-key": create_key(store, ALICE)[0]}
    invalid = {"uni-api-key": "ayeto-" + "0" * 64}
    throttled.ask(valid, 200)
    throttled.ask(invalid, 401)
    throttled.ask(invalid, 401)
    throttled.ask(invalid, 401)
    throttled.ask(valid, 200)
    throttled.ask({}, 401)

    # Failures are counted per client address; a valid or a missing key is not a failure.
    assert throttled.throttle.seen == [
        ("testclient", 0.0),
        ("testclient", 0.0),
        ("testclient", DELAY),
    ]
    assert throttled.slept == [DELAY]


def test_a_missing_key_is_never_delayed(throttled: Throttled) -> None:
    for _ in range(5):
        throttled.ask({}, 401)
        throttled.ask({"uni-api-key": ""}, 401)
    assert throttled.throttle.seen == []
    assert throttled.slept == []


class PastAThousand(FailureThrottle):
    """Counts every failure as the 1,035th of its window."""

    async def record_failure(self, client: str) -> float:
        return self.delay(1_035)


def test_a_client_past_a_thousand_failures_is_still_answered_401(store: Store) -> None:
    app = create_app(store)
    # The default doubling with a short cap, so the delayed answer comes quickly.
    app.state.services.throttle = PastAThousand(max_delay=0.01)
    # The server's own answer is wanted, 500 or not.
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(FIND, headers={"uni-api-key": "ayeto-" + "0" * 64}, json={})
    assert (response.status_code, response.json()) == (401, {"detail": INVALID})

"""Per-key rate limits (the spec's "Default limits") and the storage they share.

Limits are written in the notation of the `limits` library: `600/minute`, or several separated by
`;` (`20/second;600/minute`): a request must fit every one. Each key is counted on its own.

The counts live in one `limits` storage: in the process by default, or in Redis when
`AYETO_REDIS_URL` is set, so that every worker and every host spends one budget per key. The
invalid-key throttle (`ayeto.auth.FailureThrottle`) keeps its counts in the same storage.

When Redis cannot be reached the limits fail open to the process: each worker counts in its own
memory (so a key gets at most the limit per worker, not an unlimited one), an error line is logged
once per outage, and Redis is tried again after `RETRY_SECONDS`; nothing answers 5xx for it.

The answer's header fields follow draft-ietf-httpapi-ratelimit-headers-11 (May 2026):
`RateLimit-Policy: "600-per-60s";q=600;w=60` states a limit, `RateLimit: "600-per-60s";r=599;t=60`
what is left of it and within how many seconds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, TypeVar

from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.storage.redis.coredis import CoredisBridge
from limits.errors import StorageError
from limits.storage import MemoryStorage

from ayeto.errors import RateLimited
from ayeto.metrics import Metrics

log = logging.getLogger("ayeto.ratelimit")

DEFAULT_RATE_LIMIT: Final = "600/minute"
# Seconds between attempts to reach Redis again after it failed.
RETRY_SECONDS: Final = 1.0
# Seconds a Redis command may take before the limits fall back to the process.
REDIS_TIMEOUT_SECONDS: Final = 0.5
# Seconds between two sweeps of the expired entries of the process's memory counts.
SWEEP_SECONDS: Final = 1.0

T = TypeVar("T")


def parse_limits(text: str) -> tuple[RateLimitItem, ...]:
    """The limits `text` writes; ValueError unless it is the notation and each admits one."""
    items = _parsed(text.strip())
    for item in items:
        if item.amount < 1 or item.get_expiry() < 1:
            raise ValueError(f"a limit admits at least 1 request per window, not {item}")
    return items


@lru_cache(maxsize=256)
def _parsed(text: str) -> tuple[RateLimitItem, ...]:
    # Parsed once per distinct text: every request names its key's limit.
    return tuple(parse_many(text))


# Keys whose storage keys a `_Limits` keeps; past that it starts again.
_KEYS_KEPT: Final = 4096


@dataclass(frozen=True, slots=True)
class _Limit:
    """One limit, with what every count against it reads."""

    item: RateLimitItem
    amount: int
    expiry: int
    # Its name in the answer's fields: `600-per-60s`.
    name: str


class _Limits:
    """The limits of one text, with what is the same for every request under them: their
    `RateLimit-Policy` field, and each key's storage keys."""

    __slots__ = ("_keys", "limits", "policy")

    def __init__(self, items: tuple[RateLimitItem, ...]) -> None:
        self.limits = tuple(
            _Limit(item, item.amount, item.get_expiry(), f"{item.amount}-per-{item.get_expiry()}s")
            for item in items
        )
        self.policy = ", ".join(f'"{x.name}";q={x.amount};w={x.expiry}' for x in self.limits)
        self._keys: dict[str, tuple[str, ...]] = {}

    def keys(self, key_id: str) -> tuple[str, ...]:
        """Where the windows of `key_id` are counted: the library's keys (`key_for`), made once."""
        keys = self._keys.get(key_id)
        if keys is None:
            if len(self._keys) >= _KEYS_KEPT:
                self._keys.clear()
            keys = self._keys[key_id] = tuple(x.item.key_for("key", key_id) for x in self.limits)
        return keys


@lru_cache(maxsize=256)
def _limits(text: str) -> _Limits:
    return _Limits(parse_limits(text))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a request's key has left: the answer's header fields, and whether it may go on."""

    allowed: bool
    headers: dict[str, str]
    # Set when refused: the limit that was exceeded, and the whole seconds until it admits one more.
    exceeded: RateLimitItem | None = None
    retry_after: int = 0

    def error(self) -> RateLimited:
        assert self.exceeded is not None
        return RateLimited(
            f"rate limit exceeded: {self.exceeded}; retry in {self.retry_after} s",
            self.retry_after,
        )


class SweptMemoryStorage(MemoryStorage):
    """`limits`' memory storage, with its expired entries swept at most once a second.

    The library starts a sweep, in a new timer thread, with every count whenever the last one
    has ended: under load, a thread every hundredth of a second, each taking every key's lock in
    turn. Its asynchronous storage did the same with a worker thread, which cost a third of a
    `find`'s CPU time with `limit_to: 0` (bench/RESULTS.md). A count never depends on the sweep
    (a moving window reads the entries' times, a counter its expiry); the sweep only frees
    memory, and a second's more entries cost little.
    """

    def __init__(self) -> None:
        super().__init__()
        self.swept_at = -math.inf

    # The library's hook, private to it (`limits.storage.MemoryStorage.__schedule_expiry`): the
    # one place a sweep starts. tests/test_ratelimit.py fails if it is renamed.
    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802
        now = time.monotonic()
        if now - self.swept_at < SWEEP_SECONDS:
            return
        self.swept_at = now
        super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


class SharedStorage:
    """The `limits` storage every counter uses: Redis when configured, else the process's memory.

    Redis failing falls back to memory for `RETRY_SECONDS` at a time (see the module docstring).
    """

    def __init__(self, redis_url: str | None = None, metrics: Metrics | None = None) -> None:
        self.redis_url = redis_url
        self.metrics = metrics or Metrics()
        self.memory = SweptMemoryStorage()
        self._redis = None
        if redis_url is not None:
            self._redis = RedisStorage(
                # The async client of `limits` (coredis) for a URL `ayeto.config.redis_url` checked.
                "async+" + redis_url,
                wrap_exceptions=True,
                key_prefix="ayeto",
                stream_timeout=REDIS_TIMEOUT_SECONDS,
                connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        # Until when Redis is left alone after a failure, and whether the outage was logged.
        self._down_until = 0.0
        self._down = False

    def close(self) -> None:
        """Drops the connections to Redis; called when the server stops."""
        # `limits` has no close of its own; the pool of its Redis client (coredis) has.
        if self._redis is not None and isinstance(self._redis.bridge, CoredisBridge):
            self._redis.bridge.storage.connection_pool.disconnect()

    async def run(
        self,
        operation: Callable[[RedisStorage], Awaitable[T]],
        in_memory: Callable[[MemoryStorage], T],
    ) -> T:
        """`operation` on Redis while it answers, else `in_memory`, the same operation in the
        library's synchronous API, on the process's memory.

        Counting in memory waits for nothing: a coroutine for each of its steps cost twice as
        much as the count (bench/RESULTS.md).
        """
        if self._redis is None or time.monotonic() < self._down_until:
            return in_memory(self.memory)
        try:
            result = await operation(self._redis)
        # The client's own errors arrive wrapped; a socket or a timeout may fail before it.
        except (StorageError, OSError, TimeoutError) as exc:
            self._down_until = time.monotonic() + RETRY_SECONDS
            self.metrics.redis_failed()
            if not self._down:
                self._down = True
                log.error(
                    "Redis unreachable at %s (%s): rate limits count per process until it answers",
                    self.redis_url,
                    " ".join(str(exc).split()) or type(exc).__name__,
                )
            return in_memory(self.memory)
        if self._down:
            self._down = False
            log.warning("Redis answers again: rate limits are shared again")
        return result


class RateLimiter:
    """Counts each request against its key's limits (a moving window per limit).

    A moving window, not a sliding-window counter: it counts every request of the last window
    exactly (the counter estimates from the previous window, and can admit more than the limit),
    at the cost of one timestamp per admitted request, so at most the limit's amount per active
    key.

    The window's two steps, counting a request and reading what is left, are those of the
    library's strategy (`limits.strategies.MovingWindowRateLimiter`: `hit`, `get_window_stats`),
    made on its storage directly: the strategy makes each limit's key anew on every call, a
    tenth of the time a count took.
    """

    def __init__(self, default: str, storage: SharedStorage) -> None:
        self.default = _limits(default)
        self.storage = storage

    async def hit(self, key_id: str, own: str | None = None) -> Verdict:
        """Count one request of `key_id` against its own limits, or the default ones."""
        limits = self.default if own is None else _limits(own)
        return await self.storage.run(
            lambda redis: _hit_redis(redis, limits, key_id),
            lambda memory: _hit_memory(memory, limits, key_id),
        )


# Limits are hit in order and the first one exceeded stops the count: a refused request spends
# nothing of it, only of the limits before it.


def _hit_memory(memory: MemoryStorage, limits: _Limits, key_id: str) -> Verdict:
    keys = limits.keys(key_id)
    exceeded = None
    for limit, key in zip(limits.limits, keys, strict=True):
        if not memory.acquire_entry(key, limit.amount, limit.expiry):
            exceeded = limit
            break
    windows = [
        memory.get_moving_window(key, limit.amount, limit.expiry)
        for limit, key in zip(limits.limits, keys, strict=True)
    ]
    return _verdict(limits, exceeded, windows)


async def _hit_redis(redis: RedisStorage, limits: _Limits, key_id: str) -> Verdict:
    keys = limits.keys(key_id)
    exceeded = None
    for limit, key in zip(limits.limits, keys, strict=True):
        if not await redis.acquire_entry(key, limit.amount, limit.expiry):
            exceeded = limit
            break
    windows = [
        await redis.get_moving_window(key, limit.amount, limit.expiry)
        for limit, key in zip(limits.limits, keys, strict=True)
    ]
    return _verdict(limits, exceeded, windows)


def _verdict(
    limits: _Limits, exceeded: _Limit | None, windows: Sequence[tuple[float, int]]
) -> Verdict:
    """The verdict on a request that `exceeded` a limit (None: it fits every one), from each
    window's start and count (`windows`, in the order of the limits)."""
    now = time.time()
    states = []
    retry_after = 0
    for limit, (start, count) in zip(limits.limits, windows, strict=True):
        wait = max(0, math.ceil(start + limit.expiry - now))
        states.append(f'"{limit.name}";r={max(0, limit.amount - count)};t={wait}')
        if limit is exceeded:
            retry_after = max(1, wait)
    headers = {"RateLimit-Policy": limits.policy, "RateLimit": ", ".join(states)}
    if exceeded is None:
        return Verdict(True, headers)
    return Verdict(False, headers, exceeded.item, retry_after)

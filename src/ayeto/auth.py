"""API keys: their format, how they are stored, and resolving a request's key to a principal.

A key is `ayeto-` + 64 lowercase hex characters from a CSPRNG. Only its SHA-256 digest is stored;
the plain key is shown once, when it is created.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from ayeto.clock import now_ms
from ayeto.errors import Unauthorized
from ayeto.store import ApiKey, Store

if TYPE_CHECKING:
    # The rate limits (and the `limits` library) load only where requests are served.
    from ayeto.ratelimit import SharedStorage

KEY_PREFIX: Final = "ayeto-"
_KEY_FORMAT: Final = re.compile(r"ayeto-[0-9a-f]{64}")

# The spec's wording. Every way a key can be wrong gets the same text, so probing learns nothing.
NOT_PROVIDED: Final = "API key not provided"
INVALID: Final = "API key is invalid"

# `last_used_at` is advisory: refreshing it at most once a minute keeps reads free of writes.
TOUCH_INTERVAL_MS: Final = 60_000


class Scope(StrEnum):
    CONVERSATION = "ayeto.conversation"
    ALL = "*"


CONVERSATION_SCOPES: Final = frozenset({Scope.CONVERSATION, Scope.ALL})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user the key belongs to, and the key's own rate limit if it has one."""

    user_id: str
    key_id: str
    rate_limit: str | None = None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    store: Store,
    user_id: str,
    *,
    scopes: tuple[str, ...] = (Scope.CONVERSATION,),
    name: str = "",
    expires_at: int | None = None,
    rate_limit: str | None = None,
) -> tuple[str, ApiKey]:
    """Create and store a new key; returns the plain key (never stored) and its record."""
    plain = KEY_PREFIX + secrets.token_hex(32)
    record = ApiKey(
        id=str(uuid.uuid4()),
        user_id=user_id,
        name=name,
        scopes=scopes,
        created_at=now_ms(),
        expires_at=expires_at,
        rate_limit=rate_limit,
    )
    store.add_key(record, digest(plain))
    return plain, record


def authenticate(store: Store, header: str | None, now: int) -> Principal:
    """The principal of a `uni-api-key` header value; Unauthorized if it does not grant access."""
    return principal_of(store, key_record(store, header), now)


def key_record(store: Store, header: str | None) -> ApiKey | None:
    """The stored record of a `uni-api-key` header value (None: no such key); Unauthorized if
    there is no value, or it cannot be a key."""
    if not header:
        raise Unauthorized(NOT_PROVIDED)
    if not _KEY_FORMAT.fullmatch(header):
        raise Unauthorized(INVALID)
    return store.key_by_digest(digest(header))


def principal_of(store: Store, key: ApiKey | None, now: int) -> Principal:
    """The principal of a stored `key` (as looked up by a key or a web session); Unauthorized
    if it does not grant access at `now`."""
    if (
        key is None
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
        or CONVERSATION_SCOPES.isdisjoint(key.scopes)
    ):
        raise Unauthorized(INVALID)
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_INTERVAL_MS:
        store.touch_key(key.id, now)
    return Principal(user_id=key.user_id, key_id=key.id, rate_limit=key.rate_limit)


class FailureThrottle:
    """Slows down clients that keep presenting invalid keys, so keys cannot be guessed at speed.

    Each client (by address) may fail `free` times per `window_seconds` (counted from its first
    failure, in the rate limits' storage, so in Redis across every worker and host when there is
    one); every failure past that waits twice as long as the one before, up to `max_delay`.
    A client's failing requests wait in one line per process, one after another, so concurrent
    connections gain nothing: however many are open, answers to invalid keys come one delay at a
    time. None is refused early instead, as a quick refusal would be a quick answer (the key was
    not valid) and many connections would buy many of them; and a refusal before the key is
    looked at would turn away the valid keys of everyone behind the same address. Valid keys are
    never delayed.
    """

    def __init__(
        self,
        storage: SharedStorage | None = None,
        *,
        free: int = 10,
        window_seconds: int = 60,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
    ) -> None:
        from ayeto.ratelimit import SharedStorage

        self.storage = storage or SharedStorage()
        self.free = free
        self.window_seconds = window_seconds
        self.base_delay = base_delay
        self.max_delay = max_delay
        # Doublings after which the delay is at the cap. The power is never taken past it: at the
        # 1,035th failure `2 ** (excess - 1)` no longer fits in a float.
        self._doublings = max(0, math.ceil(math.log2(max_delay / base_delay)))
        # Only clients with failures in line are held, so this is bounded by open connections.
        self._lines: dict[str, _Line] = {}
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay(self, failures: int) -> float:
        """Seconds to wait before answering the `failures`-th failure of a window."""
        excess = failures - self.free
        if excess <= 0:
            return 0.0
        return min(self.max_delay, math.ldexp(self.base_delay, min(excess - 1, self._doublings)))

    async def record_failure(self, client: str) -> float:
        """Count one failure of `client`; returns how many seconds to wait before answering."""
        key = f"ayeto/invalid-key/{client}"
        window = self.window_seconds
        failures = await self.storage.run(
            lambda redis: redis.incr(key, window), lambda memory: memory.incr(key, window)
        )
        return self.delay(failures)

    async def failed(self, client: str) -> None:
        """Count a failure of `client` and wait its turn and its delay: the one place failures
        pass through."""
        line = self._lines.setdefault(client, _Line())
        line.waiting += 1
        try:
            async with line.lock:
                delay = await self.record_failure(client)
                if delay:
                    await self.sleep(delay)
        finally:
            line.waiting -= 1
            if not line.waiting:
                del self._lines[client]


@dataclass(slots=True)
class _Line:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0

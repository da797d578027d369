"""API keys: their format, how they are stored, and resolving a request's key to a principal.

A key is `ayeto-` + 64 lowercase hex characters from a CSPRNG. Only its SHA-256 digest is stored;
the plain key is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ayeto.clock import now_ms
from ayeto.errors import Unauthorized
from ayeto.store import ApiKey, Store

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
    """Who is calling: the user the key belongs to."""

    user_id: str
    key_id: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    store: Store,
    user_id: str,
    *,
    scopes: tuple[str, ...] = (Scope.CONVERSATION,),
    name: str = "",
    expires_at: int | None = None,
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
    )
    store.add_key(record, digest(plain))
    return plain, record


def authenticate(store: Store, header: str | None, now: int) -> Principal:
    """The principal of a `uni-api-key` header value; Unauthorized if it does not grant access."""
    if not header:
        raise Unauthorized(NOT_PROVIDED)
    if not _KEY_FORMAT.fullmatch(header):
        raise Unauthorized(INVALID)
    key = store.key_by_digest(digest(header))
    if (
        key is None
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
        or CONVERSATION_SCOPES.isdisjoint(key.scopes)
    ):
        raise Unauthorized(INVALID)
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_INTERVAL_MS:
        store.touch_key(key.id, now)
    return Principal(user_id=key.user_id, key_id=key.id)


class FailureThrottle:
    """Slows down clients that keep presenting invalid keys, so keys cannot be guessed at speed.

    Each client (by address) may fail `free` times per `window_ms`; every failure past that waits
    twice as long as the one before, up to `max_delay`. Valid keys are never delayed, and the table
    of clients is bounded so that a flood of addresses cannot grow it without end.
    """

    def __init__(
        self,
        *,
        free: int = 10,
        window_ms: int = 60_000,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        max_clients: int = 10_000,
    ) -> None:
        self.free = free
        self.window_ms = window_ms
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_clients = max_clients
        # Doublings after which the delay is at the cap. The power is never taken past it: at the
        # 1,035th failure `2 ** (excess - 1)` no longer fits in a float.
        self._doublings = max(0, math.ceil(math.log2(max_delay / base_delay)))
        self._failures: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def record_failure(self, client: str, now: int) -> float:
        """Count one failure of `client`; returns how many seconds to wait before answering."""
        started, count = self._failures.pop(client, (now, 0))
        if now - started >= self.window_ms:
            started, count = now, 0
        count += 1
        self._failures[client] = (started, count)
        if len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
        excess = count - self.free
        if excess <= 0:
            return 0.0
        return min(self.max_delay, math.ldexp(self.base_delay, min(excess - 1, self._doublings)))

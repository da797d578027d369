"""When the client tries a request again, and how long it waits first: pure functions.

A request is tried again after a connection error or timeout, a 429 (the key is over its rate
limit) or a 503 (the server cannot reach its database, or is at its connection limit), at most
`max_retries` times. The wait is the server's `Retry-After` when it sends one; otherwise it grows
exponentially from `INITIAL_DELAY` up to `MAX_DELAY`, shortened by a random part of up to a
quarter (jitter) so that many clients refused at once do not all come back at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

DEFAULT_MAX_RETRIES: Final = 2
INITIAL_DELAY: Final = 0.5
MAX_DELAY: Final = 8.0
JITTER: Final = 0.25
# A longer `Retry-After` is not waited for: the error is raised, and the caller decides.
MAX_RETRY_AFTER: Final = 60.0
RETRY_STATUSES: Final = frozenset({429, 503})


def retry_after(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """The seconds a `Retry-After` header asks for (a number, or an HTTP date), or None."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is no answer


def delay(
    attempt: int, retry_after: float | None, rand: Callable[[], float] = random.random
) -> float | None:
    """Seconds to wait before retry number `attempt + 1` (`attempt` counts from 0), or None if
    the server asks for longer than `MAX_RETRY_AFTER`."""
    if retry_after is not None:
        return retry_after if retry_after <= MAX_RETRY_AFTER else None
    return min(INITIAL_DELAY * 2.0**attempt, MAX_DELAY) * (1 - JITTER * rand())

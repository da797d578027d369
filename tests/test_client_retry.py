"""The retry policy: how long the client waits, and when it does not."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from ayeto.client.retry import delay, retry_after


@pytest.mark.parametrize(
    ("attempt", "after", "rand", "wait"),
    [
        (0, None, 0.0, 0.5),
        (0, None, 1.0, 0.375),
        (1, None, 0.0, 1.0),
        (3, None, 0.0, 4.0),
        (4, None, 0.0, 8.0),
        (9, None, 0.5, 7.0),
        (0, 3.0, 0.0, 3.0),
        (5, 0.0, 1.0, 0.0),
        (0, 60.0, 0.0, 60.0),
        (0, 60.5, 0.0, None),
    ],
)
def test_delay(attempt: int, after: float | None, rand: float, wait: float | None) -> None:
    assert delay(attempt, after, lambda: rand) == wait


NOW = datetime(2025, 6, 2, 9, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Mon, 02 Jun 2025 09:00:30 GMT", 30.0),
        ("Mon, 02 Jun 2025 08:59:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        (None, None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    headers = httpx.Headers({} if header is None else {"Retry-After": header})
    assert retry_after(headers, NOW) == seconds

"""Concurrent clients mixing find, get and delete on a real `ayeto serve`: every answer is one the
API defines, none is a 5xx, and no connection fails. The full run (50 clients, 30 s, memory and
latency figures) is bench/load.py.
"""

from __future__ import annotations

import random

import pytest

from tests.load import run_load, seed
from tests.processes import serving

CLIENTS = 50
SECONDS = 5


# Real servers under load from a few keys: no rate limit refuses them (`conftest.load_env`).
pytestmark = pytest.mark.usefixtures("load_env")


@pytest.mark.e2e
def test_mixed_load_answers_only_defined_statuses(database_url: str) -> None:
    rng = random.Random(3)
    users = seed(database_url, 300, rng)
    with serving(database_url) as server:
        figures = run_load(server, users, clients=CLIENTS, seconds=SECONDS, rng=rng)
        assert server.process.poll() is None

    assert figures.server_errors == 0
    assert figures.connection_errors == {}
    assert figures.unexpected() == {}
    # Not vacuous: every endpoint answered, and others' (403) and deleted (404) conversations
    # came up.
    answered = {outcome for outcome, count in figures.statuses.items() if count >= 1}
    assert {("find", 200), ("get", 200), ("delete", 200)} <= answered
    assert {status for _, status in answered} == {200, 403, 404}
    print(f"\nload: {figures.requests} answers {dict(figures.statuses)}")

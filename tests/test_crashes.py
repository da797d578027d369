"""A real `ayeto serve`, killed with SIGKILL at seeded random moments while clients delete and get,
loses nothing it acknowledged, and leaves a SQLite file that SQLite itself finds intact.

On PostgreSQL the ayeto process is killed, not the database. More kills: bench/crashes.py.
"""

from __future__ import annotations

import random

import pytest

from tests.kills import crash_rounds, seed
from tests.processes import restartable

KILLS = {"sqlite": 20, "postgresql": 8}
SEED = 7


# Real servers under load from a few keys: no rate limit refuses them (`conftest.load_env`).
pytestmark = pytest.mark.usefixtures("load_env")


@pytest.mark.e2e
def test_sigkill_loses_no_acknowledged_write(database_url: str) -> None:
    rng = random.Random(SEED)
    key, ids = seed(database_url, 600, rng)
    kills = KILLS[database_url.split(":", 1)[0]]
    with restartable(database_url) as server:
        figures = crash_rounds(server, key, ids, kills, rng)
    assert figures.kills == kills
    # Not vacuous: the clients had many answers of both kinds to lose.
    assert figures.acknowledged_deletes >= kills
    assert figures.acknowledged_gets >= kills
    print(f"\ncrashes: {figures}")

"""Rate limits under load, with real servers: how close to a key's limit `serve` admits, with 4
workers sharing a Redis, with 4 workers counting alone, and with one worker; and how many
answers 200 concurrent invalid-key connections from one address get.

Run from the repository root: `.venv/bin/python -m bench.ratelimit [--pg URL] [--rounds N]`.
It needs PostgreSQL (a database is created and dropped) and `redis-server` (one is started on a free
port and stopped). It prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import psycopg
from sqlalchemy.engine import make_url
from tests.factories import ALICE
from tests.processes import new_key, redis_server, serving

FIND = "/api/v3/conversation/find"
INVALID_KEY = {"uni-api-key": "ayeto-" + "0" * 64}
GUESSING_SECONDS = 4.0


async def hammer(
    base_url: str, headers: dict[str, str], clients: int, seconds: float
) -> Counter[int]:
    """`clients` connections sending `find` for `seconds`; answers that come later do not count."""
    statuses: Counter[int] = Counter()
    async with httpx.AsyncClient(
        base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=clients)
    ) as http:

        async def client() -> None:
            while True:
                response = await http.post(FIND, headers=headers, json={})
                statuses[response.status_code] += 1
                if response.status_code == 429 and "RateLimit" not in response.headers:
                    await asyncio.sleep(0.05)  # refused for invalid keys: come back shortly

        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return statuses


@contextmanager
def postgres(server: str) -> Iterator[str]:
    name = f"ayeto_bench_{uuid.uuid4().hex[:12]}"
    admin = make_url(server).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server).set(database=name).render_as_string(False)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admitted(url: str, options: tuple[str, ...], seconds: float, rounds: int) -> list[int]:
    """Admitted requests of a fresh key per round, 8 clients hammering it for `seconds`."""
    counts = []
    with serving(url, *options) as server:
        # A first round with a throwaway key wakes every worker, so none starts late.
        asyncio.run(hammer(server.base_url, {"uni-api-key": new_key(url, ALICE)}, 8, 0.5))
        for _ in range(rounds):
            key = {"uni-api-key": new_key(url, ALICE)}
            counts.append(asyncio.run(hammer(server.base_url, key, 8, seconds))[200])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("AYETO_RATE_LIMIT", None)
    rows = []
    with postgres(args.pg) as pg, redis_server() as redis:
        limit = ("--rate-limit", "60/3second")
        shared = admitted(
            pg, ("--workers", "4", *limit, "--redis-url", redis.url), 3.0, args.rounds
        )
        rows.append(("4 workers, PostgreSQL, one Redis", "60/3second", 3.0, 60, shared))
        alone = admitted(pg, ("--workers", "4", *limit), 3.0, args.rounds)
        rows.append(("4 workers, PostgreSQL, no Redis", "60/3second", 3.0, 60, alone))
    with tempfile.TemporaryDirectory() as directory:
        sqlite = f"sqlite:///{directory}/ayeto.db"
        single = admitted(sqlite, ("--rate-limit", "40/minute"), 2.0, args.rounds)
        rows.append(("1 worker, SQLite, no Redis", "40/minute", 2.0, 40, single))
        with serving(sqlite) as server:
            guesses = asyncio.run(hammer(server.base_url, INVALID_KEY, 200, GUESSING_SECONDS))

    print(
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — rate limits (`python -m bench.ratelimit`)\n"
    )
    print(
        f"- Machine: {os.cpu_count()} CPUs; 8 clients hammer one key with `find {{}}` on an empty"
    )
    print("  database; each round a fresh key; admitted = answers 200 within the window\n")
    print("| set-up | limit | seconds | admitted per round | admitted / limit |")
    print("|---|---|---:|---|---|")
    for label, text, seconds, amount, counts in rows:
        ratios = ", ".join(f"{count / amount:.3f}" for count in counts)
        print(f"| {label} | `{text}` | {seconds:g} | {', '.join(map(str, counts))} | {ratios} |")
    print(
        f"\n- Invalid keys, 200 concurrent connections from one address, "
        f"{GUESSING_SECONDS:g} s: "
        f"{guesses[401]} answered 401 ({guesses[401] / GUESSING_SECONDS:.1f} guesses/s), "
        f"{guesses[429]} refused with 429 at once (was 32 guesses/s before the line)"
    )


if __name__ == "__main__":
    main()

"""SIGKILL a real `ayeto serve` many times under deletes and gets, on SQLite and PostgreSQL.

The same rounds as tests/test_crashes.py (tests/kills.py), more of them: after every kill the
SQLite file passes `PRAGMA integrity_check` and the restarted server still holds every write it
acknowledged. Prints a Markdown report and appends it to bench/RESULTS.md.

    .venv/bin/python bench/crashes.py [--kills 200] [--postgres-kills 50] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

import run

# The harness is the suite's own, so the bench proves exactly what the tests prove, more often.
sys.path.insert(0, str(run.ROOT))
from tests.kills import Figures, crash_rounds, seed
from tests.processes import restartable

POSTGRES_SERVER = os.environ.get(
    "AYETO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="kills on SQLite")
    parser.add_argument("--postgres-kills", type=int, default=50, help="kills on PostgreSQL")
    parser.add_argument("--conversations", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    # One key going as fast as it can: no per-key limit may refuse it.
    os.environ["AYETO_RATE_LIMIT"] = "1000000/second"
    os.environ["AYETO_LOG_LEVEL"] = "warning"

    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        sqlite_url = f"sqlite:///{Path(directory) / 'ayeto.db'}"
        rows.append(("SQLite", *measure(sqlite_url, args.kills, args)))
    if args.postgres_kills:
        with postgres_database() as postgres_url:
            rows.append(("PostgreSQL", *measure(postgres_url, args.postgres_kills, args)))

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now} — crashes (bench/crashes.py), commit {run.commit()}",
        "",
        f"- Machine: {run.machine()}; load average {load_before:.2f} when the run started "
        "(anything else running skews the figures)",
        f"- `.venv/bin/python bench/crashes.py --kills {args.kills} "
        f"--postgres-kills {args.postgres_kills}`: {args.conversations:,} conversations of one "
        f"user, {args.clients} client threads deleting (1 in 4) and getting; each round kills "
        "the server with SIGKILL after a seeded number (1-40) of answers, checks the SQLite file "
        "with `PRAGMA integrity_check`, restarts the server on the same database and reads back "
        "every acknowledged delete (404) and `accessed` stamp",
        "",
        "| database | kills | acknowledged deletes | acknowledged gets | lost | integrity | s |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for name, figures, seconds in rows:
        integrity = (
            f"ok after each of {figures.kills}"
            if name == "SQLite"
            else "n/a (server process killed)"
        )
        lines.append(
            f"| {name} | {figures.kills} | {figures.acknowledged_deletes:,} "
            f"| {figures.acknowledged_gets:,} | {figures.lost} | {integrity} | {seconds:.0f} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.no_record:
        run.record(report)
    return 0


def measure(database_url: str, kills: int, args: argparse.Namespace) -> tuple[Figures, float]:
    rng = random.Random(args.seed)
    key, ids = seed(database_url, args.conversations, rng)
    started = time.monotonic()
    with restartable(database_url) as server:
        figures = crash_rounds(server, key, ids, kills, rng, clients=args.clients)
    return figures, time.monotonic() - started


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards."""
    admin = make_url(POSTGRES_SERVER).set(drivername="postgresql")
    name = f"ayeto_crashes_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())

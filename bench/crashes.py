"""SIGKILL a real `ayeto serve` many times under deletes and gets, on SQLite and PostgreSQL.

The same rounds as tests/test_crashes.py (tests/kills.py), more of them: after every kill the
SQLite file passes `PRAGMA integrity_check` and the restarted server still holds every write it
acknowledged. Prints a Markdown report and appends it to bench/RESULTS.md.

    .venv/bin/python bench/crashes.py [--kills 200] [--postgres-kills 50] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

import proofs  # puts the repository on sys.path, for the suite's harnesses below

# isort: split
from tests.kills import Figures, crash_rounds, seed
from tests.processes import restartable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="kills on SQLite")
    parser.add_argument("--postgres-kills", type=int, default=50, help="kills on PostgreSQL")
    parser.add_argument("--conversations", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    proofs.lift_limits()
    load_before = os.getloadavg()[0]
    rows = []
    for name, url in proofs.databases(postgres=args.postgres_kills > 0):
        kills = args.kills if name == "SQLite" else args.postgres_kills
        rows.append((name, *measure(url, kills, args)))

    lines = [
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
    proofs.publish("crashes (bench/crashes.py)", load_before, lines, not args.no_record)
    return 0


def measure(database_url: str, kills: int, args: argparse.Namespace) -> tuple[Figures, float]:
    rng = random.Random(args.seed)
    key, ids = seed(database_url, args.conversations, rng)
    started = time.monotonic()
    with restartable(database_url) as server:
        figures = crash_rounds(server, key, ids, kills, rng, clients=args.clients)
    return figures, time.monotonic() - started


if __name__ == "__main__":
    sys.exit(main())

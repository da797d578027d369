"""50 concurrent clients mixing find, get and delete for 90 s against one real `ayeto serve`, on
SQLite and on PostgreSQL: statuses, connection errors, latency and the server's memory.

The clients are the suite's own (tests/load.py; tests/test_load.py is the short run). Memory is
flat when the mean RSS of the last 10 s is within 10 % of the mean of the first 10 s after 30 s of
warm-up: a server's caches (SQLite's page cache in each of its read connections, compiled
statements, worker threads) fill during its first half minute under load, then level off.
Prints a Markdown report and appends it to bench/RESULTS.md.

    .venv/bin/python bench/load.py [--clients 50] [--seconds 90] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import random
import sys

import proofs  # puts the repository on sys.path, for the suite's harnesses below

# isort: split
from tests.load import Figures, run_load, seed
from tests.processes import serving

# RSS may grow by at most this fraction between the first and the last 10 s.
FLAT = 0.10
WARMUP_SECONDS = 30


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--per-user", type=int, default=1000, help="conversations per user")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    proofs.lift_limits()
    load_before = os.getloadavg()[0]
    rows = [(name, measure(url, args)) for name, url in proofs.databases(not args.no_postgres)]

    lines = [
        f"- `.venv/bin/python bench/load.py --clients {args.clients} --seconds {args.seconds:g}`: "
        f"one server process, {args.clients} concurrent clients (httpx async, one connection "
        f"each) over 5 users of {args.per_user:,} conversations; 40 % find, 50 % get, 10 % "
        "delete, one in ten get/delete aimed at another user's conversation; RSS of the server "
        "sampled every second",
        "",
        "| database | answers | req/s | statuses | 5xx | connection errors | p50 ms | p99 ms "
        f"| RSS at {WARMUP_SECONDS}-{WARMUP_SECONDS + 10} s | RSS last 10 s | drift |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in rows:
        statuses = ", ".join(f"{e} {s}: {n:,}" for (e, s), n in sorted(figures.statuses.items()))
        drift = figures.rss_drift(warmup=WARMUP_SECONDS)
        flat = "n/a (run too short)"
        if drift is not None:
            flat = f"{drift - 1:+.1%} ({'flat' if abs(drift - 1) <= FLAT else 'NOT flat'})"
        lines.append(
            f"| {name} | {figures.requests:,} | {figures.requests / figures.seconds:,.0f} "
            f"| {statuses} | {figures.server_errors} | {sum(figures.connection_errors.values())} "
            f"| {figures.percentile(50):.1f} | {figures.percentile(99):.1f} "
            f"| {mib(figures.rss[WARMUP_SECONDS : WARMUP_SECONDS + 10])} "
            f"| {mib(figures.rss[-10:])} "
            f"| {flat} |"
        )
    proofs.publish("load (bench/load.py)", load_before, lines, not args.no_record)
    failed = [
        name
        for name, figures in rows
        if figures.server_errors or figures.connection_errors or figures.unexpected()
    ]
    return 1 if failed else 0


def measure(database_url: str, args: argparse.Namespace) -> Figures:
    rng = random.Random(args.seed)
    users = seed(database_url, args.per_user, rng)
    with serving(database_url) as server:
        return run_load(server, users, clients=args.clients, seconds=args.seconds, rng=rng)


def mib(samples: list[int]) -> str:
    return f"{sum(samples) / len(samples) / 2**20:,.0f} MiB" if samples else "n/a"


if __name__ == "__main__":
    sys.exit(main())

"""What group commit (`ayeto.store.batching`) gives concurrent `get`s on SQLite, in process.

The same database through two stores: one as `open_store` makes it (concurrent `get`s share a
transaction and its flush), one with a transaction per `get` (as on PostgreSQL). `--threads`
threads call `get` as fast as they can for `--seconds`; rounds alternate between the stores. It
reports `get`s per second and per commit (commits counted on the writer), best round of each.

    .venv/bin/python bench/groupcommit.py [--threads N] [--seconds S] [--rounds R] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import event

import proofs  # noqa: F401  puts the repository on sys.path, for the suite's factories below
from ayeto.store import SqlStore, open_store
from run import commit, machine, record, versions

# isort: split
from tests.factories import ALICE as OWNER
from tests.factories import conversation

CONVERSATIONS = 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Group commit of `get` on SQLite.")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'groupcommit.db'}"
        ids = fill(url)
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.rounds):
            for grouped in (False, True):
                label = "one transaction per get" if not grouped else "group commit"
                store = open_store(url)
                assert isinstance(store, SqlStore)
                if not grouped:
                    store._batch = None
                rate, per_commit = measure(store, ids, args.threads, args.seconds)
                store.close()
                print(f"{label}: {rate:,.0f} gets/s, {per_commit:.1f} gets per commit")
                if rate > best.get(label, (0.0, 0.0))[0]:
                    best[label] = (rate, per_commit)
    report = render(args, load, best)
    print()
    print(report)
    if not args.no_record:
        record(report)
    return 0


def fill(url: str) -> list[str]:
    store = open_store(url)
    documents = [conversation(OWNER) for _ in range(CONVERSATIONS)]
    store.upsert(documents)
    store.close()
    return [document["id"] for document in documents]


def measure(store: SqlStore, ids: list[str], threads: int, seconds: float) -> tuple[float, float]:
    commits = [0]

    def counted(_connection: object) -> None:
        commits[0] += 1

    event.listen(store.writer, "commit", counted)
    stop = threading.Event()
    start = threading.Barrier(threads + 1)

    def client(index: int) -> int:
        start.wait()
        calls = 0
        while not stop.is_set():
            store.get(OWNER, ids[(index * 97 + calls) % len(ids)], calls)
            calls += 1
        return calls

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(client, index) for index in range(threads)]
        start.wait()
        began = time.monotonic()
        time.sleep(seconds)
        stop.set()
        total = sum(future.result() for future in futures)
        elapsed = time.monotonic() - began
    return total / elapsed, total / max(commits[0], 1)


def render(args: argparse.Namespace, load: float, best: dict[str, tuple[float, float]]) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now} — group commit of `get` in process: commit {commit()}",
        "",
        f"- Machine: {machine()}; load average {load:.2f} when the run started",
        f"- Versions: {versions()}",
        f"- {CONVERSATIONS:,} conversations in a fresh SQLite file (WAL, `synchronous=FULL`); "
        f"{args.threads} threads calling `get` for {args.seconds:g} s; {args.rounds} rounds "
        "alternating the two stores, best round shown; `bench/groupcommit.py`",
        "",
        "| store | gets/s | gets per commit |",
        "|---|---:|---:|",
    ]
    for label, (rate, per_commit) in best.items():
        lines.append(f"| {label} | {rate:,.0f} | {per_commit:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

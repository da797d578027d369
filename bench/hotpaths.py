"""In-process micro-benchmark of the store calls every request makes; no HTTP, no event loop.

Times the calls behind authentication (`key_by_digest`, `touch_key`), `get` (found, and the
404 check), and `find` (`limit_to: 0`, the 20-conversation page, the short-chats page) as the
benchmark's top owner, and prints µs per call. Each call is timed in several rounds; the best
round is the figure to compare between two versions of the code (it is the least disturbed by
anything else running), the median shows how steady the machine was.

`get` and `touch_key` write, and a key is added, so by default the benchmark database
(bench/data, made by `bench/run.py`) is copied to a temporary directory first and removed after.
`--db URL` runs against a database you name instead (a copy you may write to; PostgreSQL too).

    .venv/bin/python bench/hotpaths.py [--conversations N] [--rounds R] [--seconds S] [--db URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson

import dataset
from ayeto.auth import create_key, digest
from ayeto.errors import NotFound
from ayeto.query import Query, parse_query
from ayeto.store import Store, open_store
from run import page_body, per_call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the store's per-request calls.")
    parser.add_argument("--conversations", type=int, default=dataset.DEFAULT_CONVERSATIONS)
    parser.add_argument("--seed", type=int, default=dataset.DEFAULT_SEED)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per call")
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one round")
    parser.add_argument("--db", help="database URL to use as it is, instead of a copy")
    args = parser.parse_args(argv)

    meta = dataset.load_meta(dataset.paths(args.conversations, args.seed)[1])
    print(f"load average {os.getloadavg()[0]:.2f} at the start", file=sys.stderr)
    if args.db:
        report(args.db, meta, args.rounds, args.seconds)
        return 0
    source = dataset.DATA / f"bench-{args.conversations}-s{args.seed}.db"
    if not source.exists():
        raise SystemExit(f"{source} is missing: run bench/run.py once to import the dataset")
    with tempfile.TemporaryDirectory(prefix="ayeto-hotpaths-") as directory:
        # With its write-ahead log, if one was left behind: it may hold committed data.
        for part in (source, source.with_name(source.name + "-wal")):
            if part.exists():
                shutil.copyfile(part, Path(directory) / part.name)
        report(f"sqlite:///{Path(directory) / source.name}", meta, args.rounds, args.seconds)
    return 0


def report(url: str, meta: dataset.Meta, rounds: int, seconds: float) -> None:
    store = open_store(url)
    try:
        print(f"| call ({rounds} rounds of {seconds:g} s) | best µs | median µs |")
        print("|---|---:|---:|")
        for name, call in calls(store, meta):
            figures = [per_call(call, seconds)[0] for _ in range(rounds)]
            print(f"| {name} | {min(figures):,.1f} | {statistics.median(figures):,.1f} |")
    finally:
        store.close()
    print(f"load average {os.getloadavg()[0]:.2f} at the end", file=sys.stderr)


def calls(store: Store, meta: dataset.Meta) -> list[tuple[str, Callable[[], object]]]:
    """The calls to time, as the top owner, with a key of theirs added to the database."""
    owner, sample = meta.top_owner, meta.sample_conversation
    plain, key = create_key(store, owner)
    key_digest = digest(plain)
    page, small = (
        parse_query(orjson.loads(page_body(m))) for m in (meta.bench_model, meta.small_model)
    )
    empty = parse_query({"limit_from": 0, "limit_to": 0})
    unknown = str(uuid.uuid4())
    now = int(time.time() * 1000)

    def find(query: Query) -> Callable[[], object]:
        return lambda: [document for batch in store.find(owner, query) for document in batch]

    def missing() -> None:
        try:
            store.get(owner, unknown, now)
        except NotFound:
            return
        raise AssertionError(f"{unknown} was found")

    return [
        ("key_by_digest (every request's auth)", lambda: store.key_by_digest(key_digest)),
        ("touch_key (auth, once a minute per key)", lambda: store.touch_key(key.id, now)),
        ("get (a write: records the access)", lambda: store.get(owner, sample, now)),
        ("get of an unknown id (404)", missing),
        ("find, limit_to: 0", find(empty)),
        (f"find, model == {meta.bench_model}, newest 20", find(page)),
        (f"find, model == {meta.small_model}, newest 20", find(small)),
    ]


if __name__ == "__main__":
    sys.exit(main())

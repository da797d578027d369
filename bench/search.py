"""Message search with and without the trigram index, on SQLite and PostgreSQL; see README.md.

Imports the reference dataset twice into SQLite in-process, once as ayeto creates a database
(with the `message_search_*` indexes) and once with the index dropped first, timing both imports
and comparing their sizes; then runs each search pattern through the store in-process (the top
owner's newest 20 matching conversations), with the index and without it (the prefilter switched
off, so every message of the owner is scanned), checking that both give the same conversations.
On PostgreSQL the same, the `pg_trgm` GIN indexes dropped for the baseline and built again, timed.

    .venv/bin/python bench/search.py [--quick] [--conversations N] [--no-postgres] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import Connection

import dataset
from ayeto import prefilter, transfer
from ayeto.config import ConnectionOptions
from ayeto.query import parse_query
from ayeto.store import SqlStore, Store, dialects, open_store
from ayeto.store import sql as store_sql
from run import ayeto, commit, db_size, machine, record, step

# A common word, a non-ASCII word under (?i), an alternation, a text that is nowhere (the worst
# case of a scan: every message is read), and a pattern without a literal (always a scan).
PATTERNS = (
    "throughput",
    "(?i)kraków",
    "invoice|itinerary",
    "(?i)no such text",
    "\\d{3}-\\d{4}",
)
POSTGRES = "postgresql://postgres@127.0.0.1:5432/"
DATABASE = "ayeto_bench_search"
QUICK = 10_000
DROP_SQLITE_INDEX = (
    "DROP TRIGGER message_search_delete",
    "DROP TRIGGER message_search_update",
    "DROP TABLE message_search_content",
    "DROP TABLE message_search_reasoning",
)
TRIGRAM_INDEXES = {
    "ix_messages_owner_id_content_trgm": "content",
    "ix_messages_owner_id_reasoning_content_trgm": "reasoning_content",
}


@dataclass(frozen=True, slots=True)
class Timing:
    p50_ms: float
    max_ms: float
    found: int


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    rows: list[tuple[str, Timing, Timing]]
    facts: list[tuple[str, str]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark regex search with the trigram index.")
    parser.add_argument("--conversations", type=int, default=dataset.DEFAULT_CONVERSATIONS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK:,} conversations")
    parser.add_argument("--seed", type=int, default=dataset.DEFAULT_SEED)
    parser.add_argument("--runs", type=int, default=9, help="searches per pattern, indexed")
    parser.add_argument("--baseline-runs", type=int, default=3, help="per pattern, scanning")
    parser.add_argument("--postgres", default=POSTGRES, help="server URL (a database is made)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations = QUICK
    data_path, meta_path = dataset.paths(args.conversations, args.seed)
    if not meta_path.exists():
        step(f"generating {data_path.name}")
        dataset.generate(args.conversations, args.seed)
    meta = dataset.load_meta(meta_path)
    step(f"dataset: {meta.conversations:,} conversations, {meta.messages:,} messages")

    backends = [sqlite_backend(args, data_path, meta.top_owner)]
    if not args.no_postgres:
        backends.append(postgres_backend(args, data_path, meta.top_owner))
    report = render(meta, backends)
    print()
    print(report)
    if not args.no_record:
        record(report)
        step("appended to bench/RESULTS.md")
    return 0


def sqlite_backend(args: argparse.Namespace, data_path: Path, owner: str) -> Backend:
    indexed = dataset.DATA / f"search-{args.conversations}-s{args.seed}.db"
    bare = dataset.DATA / f"search-bare-{args.conversations}-s{args.seed}.db"
    seconds = {}
    for path in (indexed, bare):
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        url = f"sqlite:///{path}"
        store = open_store(url)
        try:
            if path == bare:
                with store_sql_connection(store) as connection:
                    for statement in DROP_SQLITE_INDEX:
                        connection.exec_driver_sql(statement)
            step(f"SQLite: importing into {path.name}")
            with data_path.open("rb") as source, without_indexing(path == bare):
                started = time.perf_counter()
                transfer.import_documents(store, source)
                seconds[path] = time.perf_counter() - started
        finally:
            store.close()
    sizes = {path: checkpointed_size(path) for path in (indexed, bare)}
    index_bytes = sizes[indexed] - sizes[bare]
    facts = [
        ("import, with the index / without", ratio(seconds[indexed], seconds[bare])),
        ("database, with the index / without", ratio(sizes[indexed], sizes[bare])),
        (
            "index size",
            f"{index_bytes / 2**20:,.0f} MB ({index_bytes / sizes[indexed]:.0%} of the database)",
        ),
    ]
    # The scans are timed to their end (within the statement timeout), not cut at the scan
    # timeout: the baseline is the scan itself.
    store = open_store(f"sqlite:///{indexed}", ConnectionOptions(scan_timeout_ms=3_600_000))
    try:
        rows = searches(store, owner, args)
    finally:
        store.close()
    return Backend("SQLite", rows, facts)


def postgres_backend(args: argparse.Namespace, data_path: Path, owner: str) -> Backend:
    server = args.postgres
    with psycopg.connect(server + "postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        admin.execute(f"CREATE DATABASE {DATABASE} ENCODING 'UTF8' TEMPLATE template0")
    url = server + DATABASE
    step("PostgreSQL: importing")
    started = time.perf_counter()
    ayeto("import", str(data_path), "--db", url, timeout=3600)
    import_seconds = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        index_bytes = sum(
            connection.execute("SELECT pg_relation_size(%s)", (name,)).fetchone()[0]  # type: ignore[index]
            for name in TRIGRAM_INDEXES
        )
        total = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    store = open_store(url)
    try:
        with_index = timed(store, owner, args.runs)
        with psycopg.connect(url, autocommit=True) as connection:
            for name in TRIGRAM_INDEXES:
                connection.execute(f"DROP INDEX {name}")
        without = {}
        with no_prefilter():
            without = timed(store, owner, args.baseline_runs)
        step("PostgreSQL: building the trigram indexes again")
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as connection:
            for name, column in TRIGRAM_INDEXES.items():
                connection.execute(
                    f"CREATE INDEX {name} ON messages USING gin (owner_id, {column} gin_trgm_ops)"
                )
        build_seconds = time.perf_counter() - started
    finally:
        store.close()
    facts = [
        ("import (with the indexes)", f"{import_seconds:.0f} s"),
        ("building both indexes on the imported data", f"{build_seconds:.0f} s"),
        (
            "index size",
            f"{index_bytes / 2**20:,.0f} MB ({index_bytes / total:.0%} of the database)",
        ),
    ]
    return Backend("PostgreSQL", paired(with_index, without), facts)


def searches(
    store: Store, owner: str, args: argparse.Namespace
) -> list[tuple[str, Timing, Timing]]:
    with_index = timed(store, owner, args.runs)
    with no_prefilter():
        without = timed(store, owner, args.baseline_runs)
    return paired(with_index, without)


def paired(
    with_index: dict[str, tuple[Timing, list[str]]], without: dict[str, tuple[Timing, list[str]]]
) -> list[tuple[str, Timing, Timing]]:
    rows = []
    for pattern in PATTERNS:
        (indexed, found), (scanned, expected) = with_index[pattern], without[pattern]
        if found != expected:
            raise SystemExit(f"{pattern!r}: the index changed the answer")
        rows.append((pattern, indexed, scanned))
    return rows


def timed(store: Store, owner: str, runs: int) -> dict[str, tuple[Timing, list[str]]]:
    """Per pattern: p50 and max of `runs` searches (the first one cold for this pattern)."""
    results = {}
    for pattern in PATTERNS:
        query = parse_query(
            {
                "filters": [["messages.content", "regex", pattern]],
                "sort_key": "updated.timestamp",
                "sort_order": 1,
                "limit_from": 0,
                "limit_to": 20,
            }
        )
        times = []
        ids: list[str] = []
        for _ in range(runs):
            started = time.perf_counter()
            ids = [d["id"] for batch in store.find(owner, query) for d in batch]
            times.append((time.perf_counter() - started) * 1000)
        step(f"  {pattern!r}: {statistics.median(times):,.1f} ms p50, {len(ids)} found")
        results[pattern] = (Timing(statistics.median(times), max(times), len(ids)), ids)
    return results


@contextlib.contextmanager
def store_sql_connection(store: Store) -> Iterator[Connection]:
    assert isinstance(store, SqlStore)
    with store.writer.begin() as connection:
        yield connection


@contextlib.contextmanager
def without_indexing(bare: bool) -> Iterator[None]:
    """The store adds no new message to the search index (which the bare database lacks)."""

    @contextlib.contextmanager
    def nothing(_self: object, _connection: object, _count: int) -> Iterator[None]:
        yield

    saved = dialects.SQLite.__dict__["indexing"]
    if bare:
        setattr(dialects.SQLite, "indexing", nothing)  # noqa: B010
    try:
        yield
    finally:
        setattr(dialects.SQLite, "indexing", saved)  # noqa: B010


@contextlib.contextmanager
def no_prefilter() -> Iterator[None]:
    """No pattern yields a literal: every search scans, as before the index."""

    def nothing(_pattern: str) -> prefilter.Condition:
        return None

    saved = store_sql.__dict__["required"]
    setattr(store_sql, "required", nothing)  # noqa: B010  the module's own name for it
    try:
        yield
    finally:
        setattr(store_sql, "required", saved)  # noqa: B010


def checkpointed_size(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db_size(path)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


def render(meta: Any, backends: list[Backend]) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## Message search, {now} (bench/search.py)",
        "",
        f"{meta.conversations:,} conversations, {meta.messages:,} messages; the top owner's "
        "newest 20 conversations whose `messages.content` matches, through the store in-process. "
        f"Commit {commit()}; {machine()}.",
        "",
    ]
    for backend in backends:
        lines += [
            f"### {backend.name}",
            "",
            "| pattern | found | indexed p50 / max (ms) | scan p50 / max (ms) | p50 speed-up |",
            "|---|---:|---:|---:|---:|",
        ]
        for pattern, indexed, scanned in backend.rows:
            shown = pattern.replace("|", "\\|")
            lines.append(
                f"| `{shown}` | {indexed.found} | {indexed.p50_ms:,.1f} / {indexed.max_ms:,.1f} "
                f"| {scanned.p50_ms:,.1f} / {scanned.max_ms:,.1f} "
                f"| {scanned.p50_ms / indexed.p50_ms:,.1f}x |"
            )
        lines += ["", *(f"- {name}: {value}" for name, value in backend.facts), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""`ayeto import` beside a raw `sqlite3.executemany` load of the same rows, in the same run.

Both load the dataset into a fresh SQLite file whose schema ayeto's migrations created (so with
the same tables, indexes and triggers, whatever the schema holds), with the same settings (WAL,
`synchronous = FULL`, foreign keys), in one transaction. The raw load is the floor for these
rows: read each line with orjson, shape its rows (the store's own `_row` and `_message_rows`),
and hand them to `sqlite3.executemany`, without validation, SQLAlchemy or ayeto's file reader;
then fill the message search index (the FTS5 trigram tables) with one `INSERT ... SELECT` per
table over all the rows, as `ayeto import` fills it chunk by chunk. The index's tokenizing of
every message is most of both loads' time (bench/RESULTS.md), so a baseline without it would
compare an import that builds the index with one that does not.
`ayeto import` is timed in process (`import_documents`, the whole of the command but its start).
Rounds alternate the two.

    .venv/bin/python bench/importing.py [--conversations N] [--rounds R]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

import orjson

import dataset
import run


def fresh(path: Path) -> str:
    """An empty ayeto database at `path` (its schema only); returns its URL."""
    from ayeto.store import open_store

    for stale in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    open_store(url).close()
    return url


def raw_load(data: Path, db: Path) -> float:
    """Seconds to load `data` with `sqlite3.executemany` alone."""
    from ayeto.store.schema import SEARCHED
    from ayeto.store.sql import _message_rows, _row

    fresh(db)
    started = time.perf_counter()
    connection = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = FULL", "foreign_keys = ON"):
        connection.execute(f"PRAGMA {pragma}")
    conversations: list[tuple[object, ...]] = []
    messages: list[tuple[object, ...]] = []
    columns: dict[str, list[str]] = {}
    with data.open("rb") as lines:
        for line in lines:
            document = orjson.loads(line)
            thread = _message_rows(document)
            row = _row(document, thread)
            conversations.append(tuple(row.values()))
            columns.setdefault("conversations", list(row))
            for message in thread:
                messages.append(tuple(message.values()))
                columns.setdefault("messages", list(message))
    connection.execute("BEGIN IMMEDIATE")
    for table, rows in (("conversations", conversations), ("messages", messages)):
        names = columns[table]
        marks = ", ".join("?" * len(names))
        connection.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)
    # The search index over the rows: one statement per table, once they are all in (an
    # `executemany` into an FTS5 table would write a segment per row).
    for column, index in SEARCHED.items():
        connection.execute(
            f"INSERT INTO {index}(rowid, {column}) SELECT rowid, {column} FROM messages"
        )
    connection.execute("COMMIT")
    connection.close()
    return time.perf_counter() - started


def ayeto_load(data: Path, db: Path) -> float:
    """Seconds `ayeto import` takes to load `data` (in process, its start-up left out)."""
    from ayeto.store import open_store
    from ayeto.transfer import import_documents

    store = open_store(fresh(db))
    try:
        started = time.perf_counter()
        with data.open("rb") as source:
            import_documents(store, source)
        return time.perf_counter() - started
    finally:
        store.close()


def measure(data: Path, rounds: int) -> tuple[float, float]:
    """The best seconds of the raw load and of `ayeto import` over `rounds` alternations."""
    db = dataset.DATA / "importing.db"
    raw, ayeto = [], []
    for _ in range(rounds):
        raw.append(raw_load(data, db))
        ayeto.append(ayeto_load(data, db))
    return min(raw), min(ayeto)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ayeto import beside a raw executemany load.")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=dataset.DEFAULT_SEED)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    data, meta_path = dataset.paths(args.conversations, args.seed)
    if not meta_path.exists():
        dataset.generate(args.conversations, args.seed)
    raw, ayeto = measure(data, args.rounds)
    n = args.conversations
    run.step(f"raw executemany: {n / raw:,.0f} conversations/s; ayeto import: {n / ayeto:,.0f}/s")
    print(f"ayeto import / raw executemany: {raw / ayeto:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What SQLite's query time budget (`ayeto.store.budget`) costs the store's calls, in process.

The same calls on the same database through two stores: one with the budget (as `open_store`
makes it), one without (its `install` skipped). Rounds alternate between them; each figure is
the best round's process time per call. Appends its report to bench/RESULTS.md.

    .venv/bin/python bench/budget.py [--rounds R] [--no-record]

The calls: a `find` page of 20 conversations with their messages (the budget's cursor wraps
each fetch), `get` (a write: no budget, but the statement hook still runs), the key lookup of
every request, and a `find` whose regex reads every message of the owner (the progress handler
is called every `budget.INSTRUCTIONS` virtual-machine instructions throughout).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from ayeto.auth import create_key, digest
from ayeto.config import ConnectionOptions
from ayeto.query import parse_query
from ayeto.store import Store, budget, open_store
from run import commit, machine, record, versions

OWNER = "11111111-1111-4111-8111-111111111111"
CONVERSATIONS = 2000
MESSAGES = 10
# Long enough for the regex scan: the budget must not end it.
NO_LIMIT = ConnectionOptions(statement_timeout_ms=600_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'budget.db'}"
        fill(url)
        with mock.patch.object(budget, "install"):
            plain = open_store(url, NO_LIMIT)
        budgeted = open_store(url, NO_LIMIT)
        try:
            figures = measure({"without": plain, "with": budgeted}, args.rounds)
        finally:
            plain.close()
            budgeted.close()
    report = render(args, load, figures)
    print(report)
    if not args.no_record:
        record(report)
    return 0


def fill(url: str) -> None:
    store = open_store(url)
    text = "a message of an ordinary length, with words and numbers 12345 in it. " * 8
    base = 1_735_000_000_000
    store.upsert(
        {
            "id": str(uuid.uuid4()),
            "name": f"conversation {n}",
            "model": "gpt-4o",
            "img_gen_model": "",
            "summary": "",
            "organization_id": None,
            "assistant_id": None,
            "messages": [
                {
                    "id": str(uuid.uuid4()),
                    "timestamp": base + n * 100 + m,
                    "role": "user" if m % 2 == 0 else "assistant",
                    "content": text,
                    "reasoning_content": None,
                    "model": None,
                    "img_gen": None,
                }
                for m in range(MESSAGES)
            ],
            "created": {"user_id": OWNER, "timestamp": base + n * 100},
            "updated": {"user_id": OWNER, "timestamp": base + n * 100},
            "accessed": {"user_id": None, "timestamp": 0},
        }
        for n in range(CONVERSATIONS)
    )
    store.close()


def calls(store: Store) -> dict[str, tuple[Callable[[], object], int]]:
    """Each call, and how many times a round makes it."""
    page = parse_query({"limit_to": 20})
    # No literal of three characters, so no index narrows it: every message is read.
    scan = parse_query({"filters": [["messages.content", "regex", "(?i)qx[0-9]+\\s+zq"]]})
    first = next(d for batch in store.find(OWNER, page) for d in batch)["id"]
    key, _ = create_key(store, OWNER, scopes=("ayeto.conversation",))
    hashed = digest(key)
    return {
        "`find`, a page of 20 with their messages": (lambda: list(store.find(OWNER, page)), 300),
        "`get` (a write)": (lambda: store.get(OWNER, first, 1_800_000_000_000), 300),
        "`key_by_digest`": (lambda: store.key_by_digest(hashed), 1000),
        f"`find`, a regex over all {CONVERSATIONS * MESSAGES:,} messages": (
            lambda: list(store.find(OWNER, scan)),
            3,
        ),
    }


def measure(stores: dict[str, Store], rounds: int) -> dict[tuple[str, str], float]:
    """Best round's process-time µs per call, by (call, store)."""
    prepared = {name: calls(store) for name, store in stores.items()}
    best: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for name, store_calls in prepared.items():
            for label, (call, times) in store_calls.items():
                started = time.process_time()
                for _ in range(times):
                    call()
                spent = (time.process_time() - started) / times * 1e6
                best[label, name] = min(best.get((label, name), spent), spent)
    return best


def render(args: argparse.Namespace, load: float, figures: dict[tuple[str, str], float]) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    labels = list(dict.fromkeys(label for label, _ in figures))
    lines = [
        f"## {now} — commit {commit()}: SQLite's query time budget, with and without",
        "",
        f"- Machine: {machine()}; load average {load:.2f} when the run started",
        f"- Versions: {versions()}",
        f"- `bench/budget.py --rounds {args.rounds}`: {CONVERSATIONS:,} conversations of "
        f"{MESSAGES} messages, one owner; process time per call, best of {args.rounds} rounds",
        "",
        "| call | without µs | with µs | difference |",
        "|---|---:|---:|---:|",
    ]
    for label in labels:
        without, with_ = figures[label, "without"], figures[label, "with"]
        lines.append(
            f"| {label} | {without:,.0f} | {with_:,.0f} | {(with_ - without) / without:+.1%} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

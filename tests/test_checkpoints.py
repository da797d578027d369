"""A server's SQLite WAL is checkpointed by a thread of its own, never by the commits requests
wait for (`store.checkpoints`); a store that does not serve keeps SQLite's automatic checkpoint."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ayeto.api import create_app
from ayeto.store import SqlStore, open_store
from tests.factories import ALICE, conversation, message

# Conversations whose writes take the WAL well past SQLite's automatic checkpoint (1,000 pages).
CONVERSATIONS = 400
NOW = 1_800_000_000_000


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(f"sqlite:///{tmp_path / 'ayeto.db'}")
    assert isinstance(store, SqlStore)
    yield store
    store.close()


def write_a_lot(store: SqlStore) -> None:
    """Many commits on the store's writer: each conversation in its own upsert, then stamped."""
    documents = [
        conversation(ALICE, messages=[message(content=f"{i} " + "words " * 400)])
        for i in range(CONVERSATIONS)
    ]
    for document in documents:
        store.upsert([document])
    for document in documents:
        store.get(ALICE, document["id"], NOW)


def test_a_serving_store_leaves_the_checkpoints_to_its_thread(sqlite_store: SqlStore) -> None:
    # A thread that would not look for an hour: every checkpoint here is made by the test.
    sqlite_store.serve(checkpoint_seconds=3600)
    checkpoints = sqlite_store._checkpoints
    assert checkpoints is not None

    write_a_lot(sqlite_store)

    # No commit checkpointed: the WAL holds every page written, more than the automatic
    # checkpoint lets it reach, and none of them is in the database yet.
    busy, pages, copied = checkpoints.checkpoint()
    assert busy == 0
    assert pages > 2_000
    assert copied == pages
    # Copied, the WAL starts again with the next commit.
    sqlite_store.get(ALICE, next(iter(sqlite_store.export()))["id"], NOW + 1)
    assert checkpoints.checkpoint()[1] < 10


def test_a_store_that_does_not_serve_keeps_the_automatic_checkpoint(
    sqlite_store: SqlStore,
) -> None:
    write_a_lot(sqlite_store)

    with contextlib.closing(sqlite3.connect(str(sqlite_store.engine.url.database))) as connection:
        busy, pages, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    # The commits checkpointed along the way: the WAL started again each time it passed 1,000
    # pages.
    assert busy == 0
    assert pages < 1_200


def test_the_served_app_checkpoints_apart_and_stops_with_the_store(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'ayeto.db'}")
    assert isinstance(store, SqlStore)
    with TestClient(create_app(store)):
        checkpoints = store._checkpoints
        assert checkpoints is not None
        assert checkpoints._thread.is_alive()
    assert store._checkpoints is None
    assert not checkpoints._thread.is_alive()

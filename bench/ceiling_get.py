"""The ceiling of a durable `get`: the least a server in Python does to answer one.

A raw ASGI app on the benchmark's SQLite database (`AYETO_BENCH_DB`, a file path): it looks the
`uni-api-key` up by its digest, stamps `accessed` with `UPDATE ... RETURNING` on a writer thread
that commits the stamps arrived meanwhile together (`synchronous = FULL`: each answered stamp is on
disk), and answers the conversation as ayeto's store builds it from the row, its messages from
`messages_json`. No rate limit, request id, log line, metrics, error handling or framework: what
`ayeto serve`'s `get` costs beyond this is the price of everything else it does (bench/run.py
measures both in one run).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ayeto.store.sql import _CONVERSATION_COLUMNS, _conversation

# The columns and the document as ayeto's store has them (`_conversation` is a dict from a row):
# the same answer, built the same way.
_COLUMNS = ", ".join(column.name for column in _CONVERSATION_COLUMNS)
_STAMP = (
    "UPDATE conversations SET accessed_by = ?, accessed_at = ? WHERE owner_id = ? AND id = ? "
    f"RETURNING {_COLUMNS}"
)
_HEADERS = [(b"content-type", b"application/json")]
_NOT_FOUND = b'{"detail":"not found"}'


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA busy_timeout = 5000")
    return connection


class _Writer:
    """Stamps in batches: one transaction and one flush for all that arrived while the last
    committed; each caller's future is set, on its loop, once its batch has committed."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop) -> None:
        self.connection = _connect(path)
        self.loop = loop
        self.waiting: list[tuple[asyncio.Future[Any], tuple[str, int, str, str]]] = []
        self.arrived = threading.Condition()
        threading.Thread(target=self._run, name="ceiling-writer", daemon=True).start()

    def stamp(self, owner: str, conversation_id: str) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        with self.arrived:
            self.waiting.append((future, (owner, int(time.time() * 1000), owner, conversation_id)))
            self.arrived.notify()
        return future

    def _run(self) -> None:
        while True:
            with self.arrived:
                while not self.waiting:
                    self.arrived.wait()
                batch, self.waiting = self.waiting, []
            self.connection.execute("BEGIN IMMEDIATE")
            rows = [self.connection.execute(_STAMP, values).fetchone() for _, values in batch]
            self.connection.execute("COMMIT")
            self.loop.call_soon_threadsafe(_settle, [f for f, _ in batch], rows)


def _settle(futures: list[asyncio.Future[Any]], rows: list[Any]) -> None:
    for future, row in zip(futures, rows, strict=True):
        if not future.done():
            future.set_result(row)


class DurableGet:
    def __init__(self) -> None:
        self.path = os.environ["AYETO_BENCH_DB"]
        self.reader: sqlite3.Connection | None = None
        self.writer: _Writer | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan: nothing to set up
            return
        if scope["path"] == "/livez":  # bench/run.py waits for it
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
            return
        if self.reader is None or self.writer is None:
            self.reader = _connect(self.path)
            self.writer = _Writer(self.path, asyncio.get_running_loop())
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        key = dict(scope["headers"]).get(b"uni-api-key", b"")
        digest = hashlib.sha256(key).hexdigest()
        user = self.reader.execute(
            "SELECT user_id FROM api_keys WHERE digest = ?", (digest,)
        ).fetchone()
        conversation_id = dict(parse_qsl(scope["query_string"].decode())).get("entity_id", "")
        row = None if user is None else await self.writer.stamp(user[0], conversation_id)
        if row is None:
            body, status = _NOT_FOUND, 404
        else:
            body, status = orjson.dumps(_conversation(row)), 200
        head = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})


app = DurableGet()

"""A server's SQLite WAL checkpoints, in a thread of their own rather than in its commits.

By default the connection whose commit takes the WAL past 1,000 pages copies them into the
database there and then (SQLite's automatic checkpoint): the writer's commit, and every `get`
waiting for it, waits for the copy and its flush. Under `get`s of many conversations, that was
their p99: some 25 ms, against 5 ms with the checkpoints apart (bench/RESULTS.md).

So a server's writer turns the automatic checkpoint off, and a thread runs a PASSIVE checkpoint
every `SECONDS`: it copies what no reader still needs and waits for no lock, so it holds up
neither the writer nor the readers. Only a server does this (`Store.serve`): a command's writes
(an import) keep the automatic checkpoint, as nothing else would checkpoint for them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any, Final

from sqlalchemy import Engine, event

log = logging.getLogger("ayeto.store")

# Between two checkpoints. A checkpoint copies each page once however often it was written since
# the last one: every quarter of a second, `get`s of many conversations were slower (3,900 req/s
# against 4,100-4,500) and their p99 twice as long (bench/RESULTS.md). When nothing was written,
# a checkpoint finds nothing to copy.
SECONDS: Final = 1.0


class Checkpoints:
    """Checkpoints of the database at `path` every `seconds`, for the writes of `writer` (whose
    connections from now on leave them to this), until `close`."""

    def __init__(self, path: str, writer: Engine, seconds: float = SECONDS) -> None:
        self.path = path
        self.seconds = seconds
        event.listen(writer, "connect", _without_automatic_checkpoints)
        # Its pooled connections were made with them: they are made again, without.
        writer.dispose()
        self._stopped = threading.Event()
        self._failing = False
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._thread = threading.Thread(target=self._run, name="ayeto-checkpoints", daemon=True)
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """One checkpoint now: whether it was stopped by a lock (1 or 0), the WAL's pages, and
        how many of them are in the database (SQLite's `wal_checkpoint`)."""
        busy, pages, copied = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return busy, pages, copied

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._connection.close()

    def _run(self) -> None:
        while not self._stopped.wait(self.seconds):
            try:
                self.checkpoint()
            except sqlite3.Error as exc:
                # Said once until one succeeds: the next commits' WAL grows meanwhile.
                if not self._failing:
                    log.warning("checkpoint of %s failed (%s); trying again", self.path, exc)
                self._failing = True
            else:
                self._failing = False


def _without_automatic_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint = 0")

"""Retention: conversations not updated for a while are deleted (`ayeto prune`, and
`AYETO_RETENTION` for `ayeto serve`).

The server prunes at start-up and then at the start of every hour, once per hour across every
worker and host that shares the database: a runner takes a lock no other process can hold at the
same time (`Store.exclusive`: a PostgreSQL advisory lock, a file lock beside an SQLite database),
and prunes only when the database records no run in the current hour (`Store.last_run`). Hours
are the clock's (periods of `PERIOD_MS` since the epoch), not an hour since the last run: a
runner that starts ten minutes after another finds the hour done, and every runner wakes at the
hour's start, when the next one is due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

from ayeto.clock import now_ms
from ayeto.metrics import Metrics
from ayeto.query import FIELDS, Condition, Op, Query
from ayeto.store import Store

JOB: Final = "retention"
PERIOD_MS: Final = 3_600_000
# Conversations deleted per transaction by the server's runs (see `Retention._prune`).
CHUNK: Final = 500

log = logging.getLogger("ayeto.retention")


def older_than(cutoff: int, ids: tuple[str, str] | None = None) -> Query:
    """The conversations last updated before `cutoff` (ms); with `ids`, those whose id lies
    from the first to the last, both included."""
    conditions = [Condition(FIELDS["updated.timestamp"], Op.LT, cutoff)]
    if ids is not None:
        conditions += [
            Condition(FIELDS["id"], Op.GE, ids[0]),
            Condition(FIELDS["id"], Op.LE, ids[1]),
        ]
    return Query(conditions=tuple(conditions))


def when(ms: int) -> str:
    """A time in milliseconds, as the logs and the CLI show it (UTC, to the second)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class Retention:
    """Prunes `store` of what was not updated for `age_ms`, once per period (see the module)."""

    def __init__(
        self,
        store: Store,
        age_ms: int,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], int] = now_ms,
        period_ms: int = PERIOD_MS,
    ) -> None:
        self.store = store
        self.age_ms = age_ms
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.period_ms = period_ms

    def run_due(self) -> int | None:
        """Prune, unless another process is pruning or this period's run is done: how many
        conversations were deleted, or None when this runner did nothing. Blocks: it may take a
        while on a large database."""
        now = self.clock()
        with self.store.exclusive(JOB) as held:
            if not held:
                log.debug("retention: another process is pruning")
                return None
            last = self.store.last_run(JOB)
            if last is not None and last // self.period_ms >= now // self.period_ms:
                log.debug("retention: done this hour, at %s", when(last))
                return None
            cutoff = now - self.age_ms
            deleted = self._prune(cutoff)
            # After the deletion: a run that failed is retried by the next runner to come.
            self.store.record_run(JOB, now)
        self.metrics.pruned(deleted)
        log.info(
            "retention: deleted %d conversation(s) not updated since %s",
            deleted,
            when(cutoff),
            extra={"fields": {"pruned": deleted, "cutoff": cutoff}},
        )
        return deleted

    def _prune(self, cutoff: int) -> int:
        """Delete what was updated before `cutoff`, `CHUNK` conversations per transaction.

        Requests write meanwhile: on SQLite every write of a process waits for the one writer
        connection, and a single transaction over a large prune would keep them waiting past
        their pool timeout. The matches are read first (no write lock), then deleted by ranges
        of their ids, each range with the cutoff again.
        """
        ids = self.store.delete_matching(None, older_than(cutoff), dry_run=True)
        deleted = 0
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            deleted += len(
                self.store.delete_matching(None, older_than(cutoff, (chunk[0], chunk[-1])))
            )
        return deleted

    def seconds_to_next(self) -> float:
        """From now to the start of the next period, when the next run is due."""
        return (self.period_ms - self.clock() % self.period_ms) / 1000

    async def run(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Prune now and at the start of every period, until cancelled; off the event loop."""
        while True:
            try:
                await asyncio.to_thread(self.run_due)
            except Exception:
                # The next period tries again; a server keeps serving meanwhile.
                log.exception("retention: pruning failed")
            await sleep(self.seconds_to_next())

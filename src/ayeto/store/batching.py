"""Group commit: the small writes of concurrent callers share one transaction and one flush.

With `synchronous=FULL` each SQLite commit waits for the disk, and writes queue for one writer
connection anyway: a `get` (its `accessed` stamp) spent most of its time in its own flush. Here
every write is handed to one writer thread: the calls that arrive while it writes a batch wait
together, and the next batch writes all of them in one transaction. Each call's future is done
once the transaction holding its write has committed, so an acknowledged write is on disk exactly
as before.

Callers either wait on the future (`run`, from a worker thread) or take it (`submit`): the event
loop awaits it, so a `get` costs no worker thread at all, and the loop is woken once per batch
rather than once per call.

A call may raise one of the API's errors (e.g. NotFound) only when it has written nothing: that
error is its own, and the batch commits for the others. Any other failure (a statement, the
commit, the connection) is the database's, and so is the batch's: it is rolled back, and every
call in it gets the same error, as the API reports it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection

from ayeto.errors import AyetoError

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("context", "future", "work")

    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        # The caller's context (its request id, for any log line the write writes).
        self.context = contextvars.copy_context()
        self.future: Future[T] = Future()


class GroupCommit:
    """Runs calls on connections from `transaction()`, many in one transaction at a time, on a
    writer thread of its own (started with the first call, ended by `close`)."""

    def __init__(self, transaction: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._transaction = transaction
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._waiting: list[_Call[Any]] = []
        self._writer: threading.Thread | None = None
        self._closed = False

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        """`work(connection)` in the next batch; its future has the outcome once that batch has
        committed (or failed)."""
        call = _Call(work)
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            self._waiting.append(call)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_batches, name="ayeto-writer", daemon=True
                )
                self._writer.start()
            self._arrived.notify()
        return call.future

    def run(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)`'s result once the transaction it ran in has committed."""
        return self.submit(work).result()

    def close(self) -> None:
        """Writes what was submitted, then ends the writer thread."""
        with self._lock:
            self._closed = True
            self._arrived.notify()
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()

    def _write_batches(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._arrived.wait()
                if not self._waiting:
                    return
            self._write_batch()

    def _write_batch(self) -> None:
        batch: list[_Call[Any]] = []
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            # The batch is taken once the writer is ours: everyone who came while we waited for
            # it joins.
            with self._transaction() as connection:
                with self._lock:
                    batch, self._waiting = self._waiting, []
                for call in batch:
                    try:
                        outcomes.append((call.context.run(call.work, connection), None))
                    except AyetoError as exc:
                        outcomes.append((None, exc))
        except BaseException as exc:
            if not batch:  # the writer could not be had: the failure is everyone's waiting
                with self._lock:
                    batch, self._waiting = self._waiting, []
            outcomes = [(None, exc)] * len(batch)
        # Only now, with the batch committed (or rolled back), does anyone hear of it.
        for call, (result, error) in zip(batch, outcomes, strict=True):
            if error is None:
                call.future.set_result(result)
            else:
                call.future.set_exception(error)

"""Group commit: the small writes of concurrent callers share one transaction and one flush.

With `synchronous=FULL` each SQLite commit waits for the disk, and writes queue for one writer
connection anyway: a `get` (its `accessed` stamp) spent most of its time in its own flush. Here the
callers that arrive while a batch is being written wait together, and the next batch writes all of
them in one transaction. Each caller is answered once the transaction holding its write has
committed, so an acknowledged write is on disk exactly as before.

A leader/follower scheme, without a thread of its own: the first caller to arrive leads. It takes
the writer, then every call waiting at that moment, runs them in turn, commits, and hands each its
own outcome; then it wakes the first caller that arrived meanwhile to lead the next batch.

A call may raise one of the API's errors (e.g. NotFound) only when it has written nothing: that
error is its own, and the batch commits for the others. Any other failure (a statement, the
commit, the connection) is the database's, and so is the batch's: it is rolled back, and every
caller in it gets the same error, as the API reports it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar, cast

from sqlalchemy.engine import Connection

from ayeto.errors import AyetoError

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "result", "wake", "work")

    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        # Set once this call has its outcome, or once it is to lead the next batch.
        self.wake = threading.Event()
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs calls on connections from `transaction()`, many in one transaction at a time."""

    def __init__(self, transaction: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._transaction = transaction
        self._lock = threading.Lock()
        self._waiting: list[_Call[Any]] = []
        self._leading = False

    def run(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)`'s result once the transaction it ran in has committed."""
        call = _Call(work)
        with self._lock:
            self._waiting.append(call)
            lead = not self._leading
            self._leading = True
        if not lead:
            call.wake.wait()
        if not call.done:
            self._lead()
        if call.error is not None:
            raise call.error
        return cast(T, call.result)

    def _lead(self) -> None:
        batch: list[_Call[Any]] = []
        try:
            # The batch is taken once the writer is ours: everyone who came while we waited for
            # it joins.
            with self._transaction() as connection:
                with self._lock:
                    batch, self._waiting = self._waiting, []
                for call in batch:
                    try:
                        call.result = call.work(connection)
                    except AyetoError as exc:
                        call.error = exc
        except BaseException as exc:
            if not batch:  # the writer could not be had: the failure is everyone's waiting
                with self._lock:
                    batch, self._waiting = self._waiting, []
            for call in batch:
                call.result, call.error = None, exc
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].wake.set()
                else:
                    self._leading = False
            for call in batch:
                call.done = True
                call.wake.set()

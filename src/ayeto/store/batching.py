"""Group commit: the small writes of concurrent callers share one transaction and one flush.

With `synchronous=FULL` each SQLite commit waits for the disk, and writes queue for one writer
connection anyway: a `get` (its `accessed` stamp) spent most of its time in its own flush. Here
every write is handed to one writer thread: the calls that arrive while it writes a batch wait
together, and the next batch writes all of them in one transaction. Each call's future is done
once the transaction holding its write has committed, so an acknowledged write is on disk exactly
as before.

Callers either wait (`run`, from a worker thread) or, on an event loop, take a future of that loop
(`queue`) and await it: a `get` costs no worker thread at all. The futures of one batch are set
together, in one callback on their loop: the loop is woken once per batch rather than once per
call, and the writer hands the loop nothing per call.

Consecutive calls of one kind that a single statement can make together (`Together`: the
`accessed` stamps of concurrent `get`s) are made by that statement, with the outcome each would
have had alone, one after another. SQLite is given one statement instead of many, and the writer
needs the interpreter lock once for it rather than a few times for each call; the lock is what
it waits for while the event loop is busy.

A call may raise one of the API's errors (e.g. NotFound) only when it has written nothing: that
error is its own, and the batch commits for the others. Any other failure (a statement, the
commit, the connection) is the database's, and so is the batch's: it is rolled back, and every
call in it gets the same error, as the API reports it. A batch that is one such statement alone
needs no transaction: it commits as it ends. A failure after it (reading whose a conversation
not found is) leaves its writes made and every call answered with the failure: a write not
acknowledged, never an acknowledged one lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from typing import Any, Generic, Self, TypeVar, cast

from sqlalchemy.engine import Connection

from ayeto.errors import AyetoError

T = TypeVar("T")


class Together(ABC, Generic[T]):
    """A write that a run of writes of its class can make in one statement (`all`)."""

    @abstractmethod
    def __call__(self, connection: Connection) -> T:
        """This write alone; it may raise one of the API's errors only when it wrote nothing."""

    @classmethod
    @abstractmethod
    def all(cls, connection: Connection, calls: Sequence[Self]) -> list[T | AyetoError]:
        """What each of `calls` comes to (its result, or the API's error it would raise), as if
        they were made one after another, in this order."""


class _Call(Generic[T]):
    __slots__ = ("context", "future", "loop", "work")

    def __init__(
        self, work: Callable[[Connection], T], loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.work = work
        # The caller's context (its request id, for any log line the write writes).
        self.context = contextvars.copy_context()
        # Set by the writer (`run`), or on the caller's loop (`queue`).
        self.loop = loop
        self.future: Future[T] | asyncio.Future[T] = (
            Future() if loop is None else loop.create_future()
        )


class GroupCommit:
    """Runs calls on the writer's connection (`connect()`), many in one transaction at a time
    (`transaction(connection)`), on a writer thread of its own (started with the first call,
    ended by `close`).

    A batch that is one run of calls of one `Together` kind is one statement: it needs no
    transaction around it, and is committed as it ends.
    """

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[Connection]],
        transaction: Callable[[Connection], AbstractContextManager[object]],
    ) -> None:
        self._connect = connect
        self._transaction = transaction
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._waiting: list[_Call[Any]] = []
        self._writer: threading.Thread | None = None
        self._closed = False

    def run(self, work: Callable[[Connection], T]) -> T:
        """`work(connection)`'s result once the transaction it ran in has committed."""
        call = _Call(work)
        self._add(call)
        assert isinstance(call.future, Future)
        return call.future.result()

    def queue(self, work: Callable[[Connection], T]) -> asyncio.Future[T]:
        """`work(connection)` in the next batch, from the running event loop: a future of that
        loop, which has the outcome once that batch has committed (or failed)."""
        call = _Call(work, asyncio.get_running_loop())
        self._add(call)
        assert isinstance(call.future, asyncio.Future)
        return call.future

    def _add(self, call: _Call[Any]) -> None:
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
        outcomes: list[_Outcome] = []
        try:
            # The batch is taken once the writer is ours: everyone who came while we waited for
            # it joins.
            with self._connect() as connection:
                with self._lock:
                    batch, self._waiting = self._waiting, []
                runs = [(kind, list(calls)) for kind, calls in itertools.groupby(batch, key=_kind)]
                if len(runs) == 1 and runs[0][0] is not None:
                    # A BEGIN and a COMMIT fewer: each is a wait for the interpreter lock.
                    outcomes = _made(connection, *runs[0])
                else:
                    with self._transaction(connection):
                        for kind, calls in runs:
                            outcomes += _made(connection, kind, calls)
        except BaseException as exc:
            if not batch:  # the writer could not be had: the failure is everyone's waiting
                with self._lock:
                    batch, self._waiting = self._waiting, []
            outcomes = [(None, exc)] * len(batch)
        # Only now, with the batch committed (or rolled back), does anyone hear of it.
        on_loops: dict[asyncio.AbstractEventLoop, list[tuple[_Call[Any], _Outcome]]] = {}
        for call, outcome in zip(batch, outcomes, strict=True):
            if call.loop is None:
                _settle([(call, outcome)])
            else:
                on_loops.setdefault(call.loop, []).append((call, outcome))
        for loop, settled in on_loops.items():
            # A loop closed meanwhile has no one left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)


_Outcome = tuple[Any, BaseException | None]


def _kind(call: _Call[Any]) -> type[Together[Any]] | None:
    return type(call.work) if isinstance(call.work, Together) else None


def _made(
    connection: Connection, kind: type[Together[Any]] | None, calls: list[_Call[Any]]
) -> list[_Outcome]:
    """The outcomes of a run of consecutive calls, all of `kind` (None: of no kind, each alone)."""
    if kind is None or len(calls) == 1:
        outcomes: list[_Outcome] = []
        for call in calls:
            try:
                outcomes.append((call.context.run(call.work, connection), None))
            except AyetoError as exc:
                outcomes.append((None, exc))
        return outcomes
    # One statement for all: any log line it writes names the first caller's request.
    works = cast(list[Together[Any]], [call.work for call in calls])
    together = calls[0].context.run(kind.all, connection, works)
    return [(None, x) if isinstance(x, AyetoError) else (x, None) for x in together]


def _settle(settled: list[tuple[_Call[Any], _Outcome]]) -> None:
    for call, (result, error) in settled:
        # A caller on a loop may have cancelled its future; the write stands all the same.
        if call.future.done():
            continue
        if error is None:
            call.future.set_result(result)
        else:
            call.future.set_exception(error)

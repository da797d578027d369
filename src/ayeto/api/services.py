"""What every request handler shares: the store, the settings, the rate limits and the
invalid-key throttle (both counting in one storage), and the metrics."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, ParamSpec, TypeVar, cast

from fastapi import Request

from ayeto.auth import FailureThrottle
from ayeto.config import Settings
from ayeto.metrics import Metrics, operation
from ayeto.ratelimit import RateLimiter, SharedStorage
from ayeto.store import Store
from ayeto.store.base import NotQuick, Queued

P = ParamSpec("P")
R = TypeVar("R")

# As many as anyio lends Starlette by default: more than the read pool and its overflow, so a
# store call waits for a connection, never for a thread.
THREADS: Final = 40
# Where a request's scope holds the services.
SERVICES: Final = "ayeto.services"


@dataclass(slots=True)
class Services:
    store: Store
    settings: Settings
    limiter: RateLimiter
    throttle: FailureThrottle
    metrics: Metrics = field(default_factory=Metrics)
    # Its idle threads end when it is collected with the application.
    threads: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(THREADS, thread_name_prefix="ayeto-store")
    )

    @classmethod
    def of(cls, store: Store, settings: Settings, metrics: Metrics | None = None) -> Services:
        metrics = metrics or Metrics()
        storage = SharedStorage(settings.redis_url, metrics)
        return cls(
            store,
            settings,
            RateLimiter(settings.rate_limit, storage),
            FailureThrottle(storage),
            metrics,
        )

    async def call(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """A blocking store call, made so that it never holds up the event loop for long.

        It is first offered to the store to answer at once (`Store.quickly`: SQLite's reads
        within a few milliseconds, and its small writes handed to its writer, whose commit is
        then awaited here). Whatever cannot be answered so (a long read, a wait for a lock, any
        call on PostgreSQL) runs in a worker thread, where a slow query, or a wait for a free
        connection, holds up that thread alone.

        Straight through the executor rather than anyio's `to_thread` (Starlette's
        `run_in_threadpool`): each call is a hand-off, and this one costs the event loop less
        than half as much (bench/handoff.py). It keeps what anyio gives: the call sees the
        request's context (its request id in log lines), and a cancelled request still waits
        for its call in a thread to end, since a thread cannot be stopped and may hold what the
        request's clean-up releases (a find's batches).

        As a call that `quickly` could not answer is made again from the start, `function` is
        one that can be: one whose state (a half-read generator) lives in an argument goes
        through `in_thread`.

        Its time is recorded in `ayeto_store_call_duration_seconds`, as `in_thread`'s is.
        """
        start = time.perf_counter()
        try:
            try:
                return self.store.quickly(function, *args, **kwargs)
            except NotQuick:
                pass
            except Queued as queued:
                # A write holds nothing the request's clean-up releases: a cancelled caller
                # need not wait for it. Its future is then cancelled, the write made all the
                # same (`batching`).
                return cast(R, await queued.future)
            return await self._in_thread(function, *args, **kwargs)
        finally:
            self.metrics.store_call(operation(function), time.perf_counter() - start)

    async def in_thread(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """A blocking store call, made in a worker thread (see `call`)."""
        start = time.perf_counter()
        try:
            return await self._in_thread(function, *args, **kwargs)
        finally:
            self.metrics.store_call(operation(function), time.perf_counter() - start)

    async def _in_thread(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        context = contextvars.copy_context()
        work = functools.partial(context.run, function, *args, **kwargs)
        return await _outcome(asyncio.get_running_loop().run_in_executor(self.threads, work))


async def _outcome(done: asyncio.Future[R]) -> R:
    """What `done` comes to; a cancelled caller still waits for it (see `Services.call`)."""
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        while not done.done():
            try:
                await asyncio.wait((done,))
            except asyncio.CancelledError:
                continue
        raise


def services(request: Request) -> Services:
    # In the scope of every request (`app.Application`): reading the framework's `app.state` is
    # a failed attribute lookup each time, and a request reads its services several times.
    shared = request.scope.get(SERVICES)
    return cast(Services, request.app.state.services if shared is None else shared)

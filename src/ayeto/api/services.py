"""What every request handler shares: the store, the settings, the rate limits and the
invalid-key throttle (both counting in one storage), and the metrics."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, ParamSpec, TypeVar, cast

from fastapi import Request

from ayeto.auth import FailureThrottle
from ayeto.config import Settings
from ayeto.metrics import Metrics, timed
from ayeto.ratelimit import RateLimiter, SharedStorage
from ayeto.store import Store

P = ParamSpec("P")
R = TypeVar("R")

# As many as anyio lends Starlette by default: more than the read pool and its overflow, so a
# store call waits for a connection, never for a thread.
THREADS: Final = 40


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

    @timed
    async def call(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a blocking store call in a worker thread, whatever the database.

        Even SQLite's calls: a slow query, or a wait for a free connection, then holds up that
        thread alone, never the event loop and every other request with it.

        Straight through the executor rather than anyio's `to_thread` (Starlette's
        `run_in_threadpool`): each call is a hand-off every request makes, and this one costs the
        event loop less than half as much (bench/handoff.py). It keeps what anyio gives: the
        call sees the request's context (its request id in log lines), and a cancelled request
        still waits for its call to end, since a thread cannot be stopped and may hold what the
        request's clean-up releases (a find's batches).
        """
        context = contextvars.copy_context()
        work = functools.partial(context.run, function, *args, **kwargs)
        done = asyncio.get_running_loop().run_in_executor(self.threads, work)
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
    return cast(Services, request.app.state.services)

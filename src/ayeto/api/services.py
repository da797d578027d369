"""What every request handler shares: the store, the settings, the rate limits and the
invalid-key throttle (both counting in one storage), and the metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar, cast

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ayeto.auth import FailureThrottle
from ayeto.config import Settings
from ayeto.metrics import Metrics, timed
from ayeto.ratelimit import RateLimiter, SharedStorage
from ayeto.store import Store

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class Services:
    store: Store
    settings: Settings
    limiter: RateLimiter
    throttle: FailureThrottle
    metrics: Metrics = field(default_factory=Metrics)

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
        """
        return await run_in_threadpool(function, *args, **kwargs)


def services(request: Request) -> Services:
    return cast(Services, request.app.state.services)

"""What operators watch: Prometheus metrics of requests, keys, the database and `find`.

`Metrics` records nothing (`AYETO_METRICS=off`); `Prometheus` records into prometheus-client.
`ayeto serve --workers N` (N > 1) runs prometheus-client in its multiprocess mode: it points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before any worker starts, every worker writes its
samples to files there, and a scrape of any worker (or of the separate metrics address) adds up the
files of all of them. One worker keeps its samples in memory (`process_registry`): a sample
written to a shared file cost some 15 µs more per request (bench/RESULTS.md).
Labels are bounded: a route template, a status, an operation, a kind; never an id, key or path.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import Scope

from ayeto.errors import AyetoError, BadRequest, QueryTimeout, RateLimited, Unavailable

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
MULTIPROCESS_DIRECTORY: Final = "PROMETHEUS_MULTIPROC_DIR"

# From a `get` served from cache (about 1 ms) to a find at the statement timeout (5 s by default).
SECONDS_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# A find answers a page (20 rows is typical) up to a user's whole history.
ROWS_BUCKETS: Final = (0, 1, 5, 10, 20, 50, 100, 500, 1000, 10_000, 100_000)

# prometheus-client's multiprocess module has no type annotations.
_mark_process_dead = cast(Callable[[int, str], None], multiprocess.mark_process_dead)
_value_class: Callable[[], Any] = values.get_value_class
_files_collector = cast(Callable[..., Collector], multiprocess.MultiProcessCollector)

# The endpoint label of a request no route matched: its path could be anything a client sends.
UNMATCHED: Final = "unmatched"

# The store functions the endpoints run through `Services.call`, by the operation they serve.
# `find` reads its first two batches in one call (`routes._first_two`), then one by one (`next`).
_OPERATIONS: Final = {
    "authenticate": "auth",
    "_first_two": "find",
    "next": "find",
    "get": "get",
    "delete": "delete",
    "is_ready": "ready",
}


class Metrics:
    """Where the server reports what it does; this one records nothing."""

    def request_started(self) -> None:
        """A request has arrived."""

    def request_finished(self, scope: Scope, status: int, seconds: float) -> None:
        """The request in `scope` was answered with `status` after `seconds` (all of it sent)."""

    def error(self, error: AyetoError) -> None:
        """An error is about to be answered."""

    def invalid_key(self) -> None:
        """A request came with a key that is not valid (not a missing one)."""

    def store_call(self, operation: str, seconds: float) -> None:
        """A call to the store for `operation` took `seconds`."""

    def found(self, rows: int) -> None:
        """A find answered `rows` conversations."""

    def redis_failed(self) -> None:
        """Redis failed a rate-limit count; the counts fall back to this process for a while."""

    def pruned(self, conversations: int) -> None:
        """Retention (`AYETO_RETENTION`) deleted `conversations`."""

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return b""

    def close(self) -> None:
        """This process stops serving."""


class Prometheus(Metrics):
    """Records into `registry`, or in multiprocess mode into the files every worker shares."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        register: dict[str, Any] = {"registry": self.registry}
        self.requests = Counter(
            "ayeto_http_requests",
            "HTTP requests answered, by route template and status.",
            ["endpoint", "status"],
            **register,
        )
        self.request_seconds = Histogram(
            "ayeto_http_request_duration_seconds",
            "Time from a request's arrival to the last byte of its answer, by route template.",
            ["endpoint"],
            buckets=SECONDS_BUCKETS,
            **register,
        )
        self.in_progress = Gauge(
            "ayeto_http_requests_in_progress",
            "Requests being served now, summed over the live workers.",
            multiprocess_mode="livesum",
            **register,
        )
        self.rate_limited = Counter(
            "ayeto_rate_limited",
            "Requests refused with 429: a key over its rate limit.",
            **register,
        )
        self.redis_failures = Counter(
            "ayeto_rate_limit_redis_failures",
            "Calls to Redis for the rate limits that failed; each one makes this worker count "
            "in its own memory for a second.",
            **register,
        )
        self.invalid_keys = Counter(
            "ayeto_invalid_key_failures",
            "Requests refused because their API key is invalid, expired or revoked.",
            **register,
        )
        self.database_errors = Counter(
            "ayeto_database_errors",
            "Database failures answered to a client, by kind: unavailable and pool_timeout "
            "(503), query_timeout and rejected (400).",
            ["kind"],
            **register,
        )
        self.query_timeouts = Counter(
            "ayeto_query_timeouts",
            "Queries stopped at their time budget (the statement timeout), answered with 400.",
            **register,
        )
        self.store_seconds = Histogram(
            "ayeto_store_call_duration_seconds",
            "Time of one call to the store, by operation (a find reads in several calls).",
            ["operation"],
            buckets=SECONDS_BUCKETS,
            **register,
        )
        self.find_rows = Histogram(
            "ayeto_find_rows",
            "Conversations sent in the answer of one find.",
            buckets=ROWS_BUCKETS,
            **register,
        )
        self.conversations_pruned = Counter(
            "ayeto_conversations_pruned",
            "Conversations deleted by retention (AYETO_RETENTION) for not being updated in time.",
            **register,
        )
        # The labelled series each request records into, kept once looked up: `labels` checks
        # and joins its values under a lock on every call, a few µs of every request. Both are
        # bounded, as the labels are (a route template and a status; an operation).
        self._per_request: dict[tuple[str, int], tuple[Counter, Histogram]] = {}
        self._per_operation: dict[str, Histogram] = {}

    def request_started(self) -> None:
        self.in_progress.inc()

    def request_finished(self, scope: Scope, status: int, seconds: float) -> None:
        self.in_progress.dec()
        endpoint = route_template(scope)
        counted = self._per_request.get((endpoint, status))
        if counted is None:
            counted = (
                self.requests.labels(endpoint, str(status)),
                self.request_seconds.labels(endpoint),
            )
            self._per_request[endpoint, status] = counted
        requests, seconds_taken = counted
        requests.inc()
        seconds_taken.observe(seconds)

    def error(self, error: AyetoError) -> None:
        # Every 429 is a RateLimited: a key over its limit.
        if isinstance(error, RateLimited):
            self.rate_limited.inc()
        if isinstance(error, QueryTimeout):
            self.query_timeouts.inc()
        if (kind := database_error_kind(error)) is not None:
            self.database_errors.labels(kind).inc()

    def invalid_key(self) -> None:
        self.invalid_keys.inc()

    def store_call(self, operation: str, seconds: float) -> None:
        timed = self._per_operation.get(operation)
        if timed is None:
            timed = self._per_operation[operation] = self.store_seconds.labels(operation)
        timed.observe(seconds)

    def found(self, rows: int) -> None:
        self.find_rows.observe(rows)

    def redis_failed(self) -> None:
        self.redis_failures.inc()

    def pruned(self, conversations: int) -> None:
        self.conversations_pruned.inc(conversations)

    def exposition(self) -> bytes:
        directory = multiprocess_directory()
        if directory is None:
            return generate_latest(self.registry)
        return generate_latest(multiprocess_registry(directory))

    def close(self) -> None:
        if (directory := multiprocess_directory()) is not None:
            _mark_process_dead(os.getpid(), str(directory))


def route_template(scope: Scope) -> str:
    """The path of the route that served `scope` (`/api/v3/conversation/find`), not its URL."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def database_error_kind(error: AyetoError) -> str | None:
    """What kind of database failure `error` reports, or None if it is not one."""
    if isinstance(error, QueryTimeout):
        return "query_timeout"
    if isinstance(error, Unavailable):
        return "pool_timeout" if isinstance(error.__cause__, PoolTimeout) else "unavailable"
    if isinstance(error, BadRequest) and isinstance(error.__cause__, SQLAlchemyError):
        # A statement beyond the database's limits, or a regex it cannot run.
        return "rejected"
    return None


def operation(function: Callable[..., Any]) -> str:
    """The operation a store call of `function` is timed as (`Metrics.store_call`)."""
    return _OPERATIONS.get(getattr(function, "__name__", ""), "other")


@functools.cache
def process_registry() -> CollectorRegistry:
    """The registry of the application served in this process; with one worker, the separate
    metrics address (`ayeto serve --metrics`, a thread of the same process) reads it."""
    return CollectorRegistry()


def share_between_processes(directory: Path) -> None:
    """From now on, metrics in this process and those it starts record into files in `directory`.

    Workers inherit the variable. prometheus-client picks in-memory or file values when it is
    first loaded, which may have happened in this process already (checking a rate limit loads
    it): it is told to pick again, for an application that runs in this very process.
    """
    os.environ[MULTIPROCESS_DIRECTORY] = str(directory)
    values.ValueClass = _value_class()


def multiprocess_directory() -> Path | None:
    """The directory the workers' samples are shared in, when running in multiprocess mode."""
    directory = os.environ.get(MULTIPROCESS_DIRECTORY)
    return Path(directory) if directory else None


def multiprocess_registry(directory: Path) -> CollectorRegistry:
    """A registry that adds up, at each scrape, the samples every worker wrote to `directory`."""
    registry = CollectorRegistry()
    registry.register(_Workers(directory))
    return registry


class _Workers(Collector):
    """prometheus-client's multiprocess collector, which first forgets the workers that died."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: Collector = _files_collector(None, path=str(directory))

    def collect(self) -> Iterable[Metric]:
        # A worker killed before it could say so would still count in `livesum` gauges.
        # Counters and histograms of dead workers stay, so that totals never go down.
        for path in self.directory.glob("gauge_live*_*.db"):
            pid = path.stem.rpartition("_")[2]
            if pid.isdigit() and not _alive(int(pid)):
                _mark_process_dead(int(pid), str(self.directory))
        return self.files.collect()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True

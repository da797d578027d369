"""Settings, from `AYETO_*` environment variables; the CLI's options override them.

This module imports nothing heavy: `ayeto --help` reads its defaults.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeVar, cast, get_args

DEFAULT_DATABASE_URL: Final = "sqlite:///./ayeto.db"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
MAX_PORT: Final = 65535
# A `find` body is a handful of filters; anything this large is a mistake or an attack.
MAX_BODY_BYTES: Final = 1024 * 1024
# A head smaller than this could not carry an API key, a request id and a proxy's headers.
MIN_HEADER_BYTES: Final = 1024

# Per API key, in the notation of the `limits` library; a key may carry its own.
DEFAULT_RATE_LIMIT: Final = "600/minute"
RATE_LIMIT_FORMS: Final = (
    "limits such as 600/minute, or several separated by ';' as 20/second;600/minute"
)
REDIS_FORMS: Final = "a URL such as redis://127.0.0.1:6379/0 (or rediss://, redis+unix://)"

# What `--forwarded-allow-ips` takes; uvicorn would quietly match a malformed entry against nothing.
FORWARDED_FORMS: Final = (
    "* or comma-separated IP addresses and networks such as 127.0.0.1,10.0.0.0/24"
)

# What `AYETO_METRICS` and `serve --metrics` take.
METRICS_FORMS: Final = "on, off or HOST:PORT (serve /metrics there, apart from the API)"

# What `AYETO_RETENTION` and `ayeto prune --older-than` take.
DURATION_FORMS: Final = (
    "a whole number and a unit (s, m, h, d or w) such as 90d, above 0 and at most 100 years"
)
_DURATION: Final = re.compile(r"([0-9]+)([smhdw])")
DURATION_UNIT_MS: Final = {
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
# Beyond any retention anyone means; also keeps `now - duration` a 64-bit timestamp.
MAX_DURATION_MS: Final = 36_525 * DURATION_UNIT_MS["d"]  # 100 years

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["console", "json"]
LOG_LEVELS: Final[tuple[str, ...]] = get_args(LogLevel)
LOG_FORMATS: Final[tuple[str, ...]] = get_args(LogFormat)

T = TypeVar("T")


class InvalidSetting(ValueError):
    """An `AYETO_*` variable holds a value that cannot be used; the message names both."""


def trusted_proxies(raw: str) -> str:
    """`raw` checked for uvicorn's `forwarded_allow_ips`: ValueError unless every entry is an IP
    address or network (its host bits zero, as uvicorn reads it), or `raw` is `*`."""
    entries = [entry.strip() for entry in raw.split(",")]
    if entries == ["*"]:
        return "*"
    for entry in entries:
        if "/" in entry:
            ipaddress.ip_network(entry)
        else:
            ipaddress.ip_address(entry)
    return ",".join(entries)


def metrics_setting(raw: str) -> str:
    """`raw` checked for `AYETO_METRICS`: `on`, `off` or HOST:PORT; ValueError otherwise."""
    if raw.lower() in ("on", "off"):
        return raw.lower()
    metrics_address(raw)
    return raw


def metrics_address(setting: str) -> tuple[str, int] | None:
    """The separate address a metrics setting names (`[::1]:9100` too), None for `on`/`off`."""
    if setting in ("on", "off"):
        return None
    host, colon, port = setting.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not (colon and host and port.isascii() and port.isdigit() and 1 <= int(port) <= MAX_PORT):
        raise ValueError(setting)
    return host, int(port)


def rate_limit(raw: str) -> str:
    """`raw` checked as rate limits (ValueError otherwise), without its surrounding spaces."""
    from ayeto.ratelimit import parse_limits  # loads `limits`: only when there is one to check

    parse_limits(raw)
    return raw.strip()


def redis_url(raw: str) -> str:
    """`raw` checked as a Redis URL the rate limits can use; ValueError otherwise.

    The `limits` library's own form (`async+redis://…`) is taken too, as the plain URL.
    """
    url = raw.removeprefix("async+")
    if not url.startswith(("redis://", "rediss://", "redis+unix://")) or url.endswith("://"):
        raise ValueError(raw)
    return url


def duration_ms(raw: str) -> int:
    """`90d` and the like in milliseconds, above 0 and at most 100 years; ValueError otherwise."""
    match = _DURATION.fullmatch(raw.strip())
    # int() refuses thousands of digits; a number that long is far past the limit anyway.
    if match is None or len(match[1].lstrip("0")) > 15:
        raise ValueError(raw)
    ms = int(match[1]) * DURATION_UNIT_MS[match[2]]
    if not 0 < ms <= MAX_DURATION_MS:
        raise ValueError(raw)
    return ms


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """How the server holds its database connections (SQLite: its read connections' pool sizes
    and timeout, and the statement timeout; the rest is PostgreSQL's)."""

    # As many connections kept open as may be open at once: a connection opened for a burst and
    # closed after it costs PostgreSQL a new backend (some 6 ms of its CPU per request measured
    # under load, more than the find page's own query), and the next burst the same again.
    pool_size: int = 20
    max_overflow: int = 0
    # Seconds a request waits for a free pooled connection before answering 503.
    pool_timeout: float = 10.0
    # Seconds to establish a connection before giving up (503).
    connect_timeout: int = 5
    # Milliseconds any one statement may run; a longer one is cancelled (400). On SQLite only
    # reads are timed (see `store.budget`).
    statement_timeout_ms: int = 5000
    # Milliseconds, at most, for a statement that reads every message of the caller for a `regex`
    # filter the search index cannot narrow (SQLite; see `store.sql`); a longer one is a 400 that
    # says how to narrow it.
    scan_timeout_ms: int = 1000
    # Milliseconds a request's reads may run on the event loop itself (SQLite; see
    # `Store.quickly`): a read that takes longer is stopped and run again in a worker thread.
    # 0: every read runs in a worker thread.
    inline_read_ms: int = 5


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one client connection may hold of the server (`ayeto serve`; see `api.protocol`)."""

    # Seconds an idle keep-alive connection stays open.
    timeout_keep_alive: float = 5.0
    # Seconds a client has to send a request's head (its request line and headers).
    header_timeout: float = 10.0
    # Seconds a client may pause between two parts of a request's body.
    body_timeout: float = 10.0
    # Bytes of a request's head; a larger one is answered 431 before it is read on.
    max_header_bytes: int = 64 * 1024
    # Connections (or requests in progress) beyond which a request is answered 503.
    limit_concurrency: int = 1000


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    log_level: LogLevel = "info"
    log_format: LogFormat = "console"
    max_body_bytes: int = MAX_BODY_BYTES
    # `on`: /metrics on the API's port; `off`; or HOST:PORT, where `ayeto serve` serves them.
    metrics: str = "on"
    rate_limit: str = DEFAULT_RATE_LIMIT
    # Shared rate-limit counts for every worker and host; None counts in each process.
    redis_url: str | None = None
    # The browser view at /web/, and how long one sign-in lasts there (never past its key).
    web: bool = True
    web_session_hours: int = 12
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)
    http: HttpLimits = field(default_factory=HttpLimits)
    # `AYETO_RETENTION`: conversations not updated for this long (ms) are deleted, at start-up
    # and hourly (`ayeto.retention`); None keeps everything.
    retention_ms: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """The settings `env` gives; raises InvalidSetting for the first value that is wrong."""
        read = _Reader(env)
        defaults = ConnectionOptions()
        limits = HttpLimits()
        return cls(
            database_url=read.text("AYETO_DATABASE_URL", DEFAULT_DATABASE_URL),
            host=read.text("AYETO_HOST", DEFAULT_HOST),
            port=read.whole("AYETO_PORT", DEFAULT_PORT, maximum=MAX_PORT),
            workers=read.whole("AYETO_WORKERS", 1),
            log_level=cast(LogLevel, read.choice("AYETO_LOG_LEVEL", "info", LOG_LEVELS)),
            log_format=cast(LogFormat, read.choice("AYETO_LOG_FORMAT", "console", LOG_FORMATS)),
            max_body_bytes=read.whole("AYETO_MAX_BODY_BYTES", MAX_BODY_BYTES),
            rate_limit=read.checked(
                "AYETO_RATE_LIMIT", DEFAULT_RATE_LIMIT, rate_limit, RATE_LIMIT_FORMS
            ),
            redis_url=read.checked("AYETO_REDIS_URL", None, redis_url, REDIS_FORMS),
            metrics=read.checked("AYETO_METRICS", "on", metrics_setting, METRICS_FORMS),
            retention_ms=read.checked("AYETO_RETENTION", None, duration_ms, DURATION_FORMS),
            web=read.choice("AYETO_WEB", "on", ("on", "off")) == "on",
            web_session_hours=read.whole("AYETO_WEB_SESSION_HOURS", 12),
            connection=ConnectionOptions(
                pool_size=read.whole("AYETO_DB_POOL_SIZE", defaults.pool_size),
                max_overflow=read.whole("AYETO_DB_MAX_OVERFLOW", defaults.max_overflow, 0),
                pool_timeout=read.seconds("AYETO_DB_POOL_TIMEOUT", defaults.pool_timeout),
                connect_timeout=read.whole("AYETO_DB_CONNECT_TIMEOUT", defaults.connect_timeout),
                statement_timeout_ms=read.whole(
                    "AYETO_DB_STATEMENT_TIMEOUT_MS", defaults.statement_timeout_ms
                ),
                scan_timeout_ms=read.whole("AYETO_DB_SCAN_TIMEOUT_MS", defaults.scan_timeout_ms),
                inline_read_ms=read.whole(
                    "AYETO_DB_INLINE_READ_MS", defaults.inline_read_ms, 0, maximum=1000
                ),
            ),
            http=HttpLimits(
                timeout_keep_alive=read.seconds(
                    "AYETO_TIMEOUT_KEEP_ALIVE", limits.timeout_keep_alive
                ),
                header_timeout=read.seconds("AYETO_HEADER_TIMEOUT", limits.header_timeout),
                body_timeout=read.seconds("AYETO_BODY_TIMEOUT", limits.body_timeout),
                max_header_bytes=read.whole(
                    "AYETO_MAX_HEADER_BYTES", limits.max_header_bytes, MIN_HEADER_BYTES
                ),
                limit_concurrency=read.whole("AYETO_LIMIT_CONCURRENCY", limits.limit_concurrency),
            ),
        )


@dataclass(frozen=True, slots=True)
class _Reader:
    """Reads one variable each call; unset or empty means the default, as for the CLI's options."""

    env: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        return self.env.get(name) or default

    def whole(self, name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
        bounds = f"of at least {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        return self._parse(
            name,
            default,
            int,
            lambda value: minimum <= value and (maximum is None or value <= maximum),
            f"a whole number {bounds}",
        )

    def seconds(self, name: str, default: float) -> float:
        return self._parse(
            name,
            default,
            float,
            lambda value: math.isfinite(value) and value > 0,
            "a number of seconds above 0",
        )

    def checked(self, name: str, default: T, check: Callable[[str], T], expected: str) -> T:
        return self._parse(name, default, check, lambda _: True, expected)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        return self._parse(
            name, default, str.lower, lambda value: value in choices, f"one of {', '.join(choices)}"
        )

    def _parse(
        self,
        name: str,
        default: T,
        parse: Callable[[str], T],
        valid: Callable[[T], bool],
        expected: str,
    ) -> T:
        raw = self.env.get(name)
        if not raw:
            return default
        try:
            value = parse(raw)
        except ValueError:
            raise InvalidSetting(f"{name} takes {expected}, not {raw!r}") from None
        if not valid(value):
            raise InvalidSetting(f"{name} takes {expected}, not {raw!r}")
        return value

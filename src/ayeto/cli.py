"""`ayeto`, the operator's command line: serve the API, manage keys, move data in and out.

A mistake ends in one line on stderr (`error: ...`) and a non-zero exit, never a traceback, with
nothing half-done: exit 2 for a mistake in the command line or its environment (an option, an
argument, an `AYETO_*` variable, a file that cannot be read or written), exit 1 for a failure
while carrying it out (the database cannot be opened or has no ayeto schema, no such key, invalid
records).

SQLAlchemy, Alembic and the server are imported inside the commands that use them, so that
`ayeto --help` answers at once.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Final, NoReturn, cast

import typer
from typer.core import TyperCommand

from ayeto import __version__
from ayeto.auth import CONVERSATION_SCOPES, KEY_PREFIX, Scope, create_key, digest
from ayeto.clock import now_ms
from ayeto.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_RATE_LIMIT,
    DURATION_FORMS,
    FORWARDED_FORMS,
    MAX_PORT,
    METRICS_FORMS,
    MIN_HEADER_BYTES,
    RATE_LIMIT_FORMS,
    REDIS_FORMS,
    HttpLimits,
    InvalidSetting,
    LogFormat,
    LogLevel,
    Settings,
    duration_ms,
    metrics_address,
    metrics_setting,
    rate_limit,
    redis_url,
    trusted_proxies,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from typer._click.core import Context, Parameter

    from ayeto.query import Query
    from ayeto.store import ApiKey, Store

# Plain help (rich_markup_mode=None) shows a flag as a flag, never as `--demo <bool>`.
app = typer.Typer(
    name="ayeto",
    help="Serve the ayeto Conversation API v3 and manage its data and API keys.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", rich_markup_mode=None)
app.add_typer(keys_app, name="keys")


@functools.cache
def _err() -> Console:
    """The console for messages on stderr: rich loads on the first message, not with every
    command (`ayeto serve` starts sooner without it)."""
    from rich.console import Console

    return Console(stderr=True)


URL_FORMS: Final = "sqlite:///PATH or postgresql://USER@HOST/NAME"
_LIMITS: Final = HttpLimits()
_BACKENDS: Final = ("sqlite", "postgresql", "postgres")


def main() -> None:
    """The console script. Click's own usage errors are reported in the same one-line form."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        _say("error", "aborted")
        code = 1
    except typer.TyperException as exc:  # a usage error: unknown option, bad or missing value
        if isinstance(exc, typer.BadParameter) and exc.ctx and exc.param:
            exc.param_hint = _origin(exc.ctx, exc.param)
        _say("error", exc.format_message())
        code = exc.exit_code
    sys.exit(code if isinstance(code, int) else 0)


def _origin(ctx: Context, param: Parameter) -> str:
    """How the user gave a parameter: its option, or the environment variable that set it."""
    source = ctx.get_parameter_source(param.name) if param.name else None
    if source is not None and source.name == "ENVIRONMENT" and isinstance(param.envvar, str):
        return param.envvar
    return "/".join(param.opts)


def _say(label: str, message: str) -> None:
    style = "red" if label == "error" else "yellow"
    # soft_wrap: one line however long, never folded at the console's width.
    from rich.markup import escape

    _err().print(f"[{style}]{label}:[/{style}] {escape(message)}", highlight=False, soft_wrap=True)


def _note(message: str) -> None:
    _err().print(message, highlight=False, markup=False, soft_wrap=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    _say("error", message)
    raise typer.Exit(code)


def _usage_without_command(ctx: typer.Context) -> None:
    # As click's `no_args_is_help`, which would raise an error `main` shows as one line.
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help(), err=True)
        raise typer.Exit(2)


def _print_version(value: bool) -> None:
    if value:
        print(f"ayeto {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    _usage_without_command(ctx)


@keys_app.callback(invoke_without_command=True)
def _keys(ctx: typer.Context) -> None:
    _usage_without_command(ctx)


def _database_url(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    name = _origin(ctx, param)
    if "://" not in value:
        _fail(f"{name} takes a URL such as sqlite:///{value or './ayeto.db'}", 2)
    try:
        backend = make_url(value).get_backend_name()
    except (ArgumentError, ValueError):
        _fail(f"{name} takes a URL such as {URL_FORMS}, not {value!r}", 2)
    if backend not in _BACKENDS:
        _fail(f"{name}: {backend!r} is not supported; use {URL_FORMS}", 2)
    return value


Db = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="AYETO_DATABASE_URL",
        metavar="URL",
        callback=_database_url,
        help=f"Database URL: {URL_FORMS}.",
    ),
]


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except InvalidSetting as exc:
        _fail(str(exc), 2)


def _open(url: str, *, create: bool = True) -> Store:
    """The store at `url`. Checks every `AYETO_*` setting first.

    A command that writes creates or upgrades the schema, and says when the database is new; one
    that only reads passes `create=False` and never creates, migrates or writes anything.
    """
    from ayeto.store import SchemaNotCurrent, open_store

    options = _settings().connection
    shown = _shown(url)
    try:
        return open_store(
            url,
            options,
            create=create,
            on_create=lambda: _note(f"created a new ayeto database at {shown}"),
        )
    except SchemaNotCurrent as exc:
        if exc.revision is None:
            _fail(f"no ayeto database at {shown} (run 'ayeto migrate' to create one)")
        _fail(f"the ayeto database at {shown} has {exc} (run 'ayeto migrate' to upgrade it)")
    except Exception as exc:  # any other failure to reach or migrate the database ends here
        _fail(f"cannot open the database at {shown}: {_one_line(exc)}")


def _one_line(exc: Exception) -> str:
    from sqlalchemy.exc import DBAPIError

    # SQLAlchemy adds the statement and a link to the driver's error; its own words suffice.
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return " ".join(str(cause).split())


def _uuid_option(value: str) -> str:
    from ayeto.query import parse_uuid

    canonical = parse_uuid(value)
    if canonical is None:
        _fail(f"--user takes a UUID, not {value!r}", 2)
    return canonical


# -- serve / demo --------------------------------------------------------------------------------


def _trusted_proxies(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    if not value:
        return ""
    try:
        return trusted_proxies(value)
    except ValueError:
        _fail(f"{_origin(ctx, param)} takes {FORWARDED_FORMS}, not {value!r}", 2)


def _metrics(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    try:
        return metrics_setting(value)
    except ValueError:
        _fail(f"{_origin(ctx, param)} takes {METRICS_FORMS}, not {value!r}", 2)


def _seconds(ctx: typer.Context, param: typer.CallbackParam, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        _fail(f"{_origin(ctx, param)} takes a number of seconds above 0, not {value:g}", 2)
    return value


def _seconds_option(envvar: str, help: str) -> Any:
    return typer.Option(envvar=envvar, callback=_seconds, metavar="SECONDS", help=help)


def _rate_limit(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return rate_limit(value)
    except ValueError:
        _fail(f"{_origin(ctx, param)} takes {RATE_LIMIT_FORMS}, not {value!r}", 2)


def _redis_url(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    if not value:
        return ""
    try:
        return redis_url(value)
    except ValueError:
        _fail(f"{_origin(ctx, param)} takes {REDIS_FORMS}, not {value!r}", 2)


@app.command()
def serve(
    db: Db = DEFAULT_DATABASE_URL,
    host: Annotated[
        str, typer.Option(envvar="AYETO_HOST", metavar="HOST", help="Address to bind.")
    ] = DEFAULT_HOST,
    port: Annotated[
        int,
        typer.Option(
            envvar="AYETO_PORT", min=1, max=MAX_PORT, metavar="PORT", help="Port to bind."
        ),
    ] = DEFAULT_PORT,
    workers: Annotated[
        int, typer.Option(envvar="AYETO_WORKERS", min=1, metavar="N", help="Server processes.")
    ] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load demo data and print a key and a curl first.")
    ] = False,
    log_level: Annotated[
        LogLevel,
        typer.Option(envvar="AYETO_LOG_LEVEL", case_sensitive=False, help="Least severe logged."),
    ] = "info",
    log_format: Annotated[
        LogFormat,
        typer.Option(
            envvar="AYETO_LOG_FORMAT",
            case_sensitive=False,
            help="console: lines for people; json: one JSON object per line.",
        ),
    ] = "console",
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            envvar="AYETO_FORWARDED_ALLOW_IPS",
            metavar="ADDRESSES",
            callback=_trusted_proxies,
            help="Proxies whose X-Forwarded-For names the client (addresses, networks or *).",
        ),
    ] = "",
    metrics: Annotated[
        str,
        typer.Option(
            envvar="AYETO_METRICS",
            metavar="on|off|HOST:PORT",
            callback=_metrics,
            help="Serve /metrics on the API's port, not at all, or on its own address.",
        ),
    ] = "on",
    rate_limit: Annotated[
        str,
        typer.Option(
            envvar="AYETO_RATE_LIMIT",
            metavar="LIMITS",
            callback=_rate_limit,
            help="Requests each API key may make, e.g. 600/minute or 20/second;600/minute "
            "(a key created with its own limit keeps it).",
        ),
    ] = DEFAULT_RATE_LIMIT,
    redis_url: Annotated[
        str,
        typer.Option(
            envvar="AYETO_REDIS_URL",
            metavar="URL",
            callback=_redis_url,
            help="Redis that holds the rate-limit counts, shared by every worker and host "
            "(redis://HOST:PORT/DB). Default: each process counts alone.",
        ),
    ] = "",
    timeout_keep_alive: Annotated[
        float,
        _seconds_option(
            "AYETO_TIMEOUT_KEEP_ALIVE",
            "Close an idle keep-alive connection after this long.",
        ),
    ] = _LIMITS.timeout_keep_alive,
    header_timeout: Annotated[
        float,
        _seconds_option(
            "AYETO_HEADER_TIMEOUT",
            "Close a connection whose request line and headers take longer to arrive.",
        ),
    ] = _LIMITS.header_timeout,
    body_timeout: Annotated[
        float,
        _seconds_option(
            "AYETO_BODY_TIMEOUT",
            "Close a connection whose request body pauses longer than this.",
        ),
    ] = _LIMITS.body_timeout,
    max_header_bytes: Annotated[
        int,
        typer.Option(
            envvar="AYETO_MAX_HEADER_BYTES",
            min=MIN_HEADER_BYTES,
            metavar="BYTES",
            help="Answer 431 to a request whose request line and headers are larger.",
        ),
    ] = _LIMITS.max_header_bytes,
    limit_concurrency: Annotated[
        int,
        typer.Option(
            envvar="AYETO_LIMIT_CONCURRENCY",
            min=1,
            metavar="N",
            help="Answer 503 while a worker holds this many connections or requests.",
        ),
    ] = _LIMITS.limit_concurrency,
) -> None:
    """Run the API server."""
    import uvicorn

    from ayeto import logs
    from ayeto.ports import cannot_listen

    # A busy port ends here, before the demo loads anything or makes a key.
    retry = "AYETO_PORT={port} make demo" if demo else "--port {port}"
    if problem := cannot_listen(host, port, retry=retry):
        _fail(problem)
    address = metrics_address(metrics)
    if address is not None:
        if address[1] == port:
            _fail(f"--metrics {metrics}: the API listens on port {port}; pick another port", 2)
        if problem := cannot_listen(*address, retry=f"--metrics {address[0]}:{{port}}"):
            _fail(problem.replace("--port or AYETO_PORT", "--metrics or AYETO_METRICS"))
    # Checks the settings and creates or upgrades the schema once, before any worker starts.
    store = _open(db)
    try:
        _check_connections(store, workers)
        if demo:
            _load_demo(store, db, host, port, serving=True)
    finally:
        store.close()
    # Every worker process builds its app from the environment (see `app_from_env`).
    # The protocol (`ayeto.api.protocol`) reads its limits there too.
    os.environ.update(
        AYETO_DATABASE_URL=db,
        AYETO_LOG_LEVEL=log_level,
        AYETO_LOG_FORMAT=log_format,
        AYETO_METRICS=metrics,
        AYETO_RATE_LIMIT=rate_limit,
        AYETO_REDIS_URL=redis_url,
        AYETO_TIMEOUT_KEEP_ALIVE=str(timeout_keep_alive),
        AYETO_HEADER_TIMEOUT=str(header_timeout),
        AYETO_BODY_TIMEOUT=str(body_timeout),
        AYETO_MAX_HEADER_BYTES=str(max_header_bytes),
        AYETO_LIMIT_CONCURRENCY=str(limit_concurrency),
    )
    with _metrics_served(address, workers):
        uvicorn.run(
            "ayeto.api.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            # httptools, bounded: see `ayeto.api.protocol`.
            http="ayeto.api.protocol:Protocol",
            # The API has no WebSocket endpoint: its protocol library need not load.
            ws="none",
            timeout_keep_alive=timeout_keep_alive,  # type: ignore[arg-type]
            access_log=False,
            log_config=logs.config(log_level, log_format),
            server_header=False,
            # uvicorn trusts 127.0.0.1 by default: a local client could name its own address.
            proxy_headers=bool(forwarded_allow_ips),
            forwarded_allow_ips=forwarded_allow_ips,
        )


def _check_connections(store: Store, workers: int) -> None:
    """Refuse pools that could, at their peak, take more connections than the database accepts:
    past that, requests would fail at random once the load comes."""
    options = _settings().connection
    limit = store.connection_limit()
    each = options.pool_size + options.max_overflow
    if limit is not None and workers * each > limit:
        _fail(
            f"{workers} workers with up to {each} connections each (AYETO_DB_POOL_SIZE "
            f"{options.pool_size} + AYETO_DB_MAX_OVERFLOW {options.max_overflow}) need "
            f"{workers * each}, more than the {limit} the database accepts (max_connections "
            "less its reserved ones); lower --workers or the pool sizes"
        )


@contextmanager
def _metrics_served(address: tuple[str, int] | None, workers: int) -> Iterator[None]:
    """The workers' metrics, served at `address` too when there is one (see `ayeto.metrics`).

    Several workers add to files in a fresh directory, removed at exit (a directory left by an
    earlier run would add its counts to this one's); one worker, this very process, keeps them in
    memory.
    """
    import shutil
    import tempfile

    from ayeto.metrics import multiprocess_registry, process_registry, share_between_processes

    directory = None
    registry = process_registry()
    if workers > 1:
        directory = Path(tempfile.mkdtemp(prefix="ayeto-metrics-"))
        share_between_processes(directory)
        registry = multiprocess_registry(directory)
    try:
        if address is not None:
            # A thread of this, the supervising, process: it outlives any worker.
            from prometheus_client import start_http_server

            start_http_server(address[1], address[0], registry)
        yield
    finally:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


@app.command("demo")
def demo_command(
    db: Db = DEFAULT_DATABASE_URL,
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Host the printed curl command targets.")
    ] = DEFAULT_HOST,
    port: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_PORT, metavar="PORT", help="Port the printed curl command targets."
        ),
    ] = DEFAULT_PORT,
) -> None:
    """Fill the database with demo conversations and print a new key with a curl command."""
    store = _open(db)
    try:
        _load_demo(store, db, host, port, serving=False)
    finally:
        store.close()


def _load_demo(store: Store, db: str, host: str, port: int, *, serving: bool) -> None:
    from ayeto.demo import instructions, load_demo

    done = load_demo(store, now_ms())
    print(instructions(done, database_url=db, host=host, port=port, serving=serving), flush=True)


# -- keys ----------------------------------------------------------------------------------------

_DURATION: Final = re.compile(r"(\d+)([dhm])")
_UNIT_MS: Final = {"d": 86_400_000, "h": 3_600_000, "m": 60_000}
# A key meant to outlive this should never expire: leave `--expires` out.
MAX_EXPIRY_DAYS: Final = 36_525  # 100 years
_EXPIRES_FORMS: Final = "30d, 12h, 90m or an ISO 8601 date/time"


def _expiry(when: str, now: int) -> int:
    """Milliseconds since the epoch for `30d`/`12h`/`90m` from `now`, or an ISO 8601 date/time.

    It must lie in the next 100 years.
    """
    if match := _DURATION.fullmatch(when):
        digits, unit = match.groups()
        # int() refuses thousands of digits; a number that long is far past the limit anyway.
        ahead = int(digits) * _UNIT_MS[unit] if len(digits.lstrip("0")) <= 12 else None
    else:
        try:
            moment = datetime.fromisoformat(when)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ahead = int(moment.timestamp() * 1000) - now
        except (ValueError, OverflowError):
            _fail(f"--expires takes {_EXPIRES_FORMS}, not {when!r}", 2)
    if ahead is not None and ahead <= 0:
        _fail(f"--expires takes a time in the future, not {when!r}", 2)
    if ahead is None or ahead > MAX_EXPIRY_DAYS * _UNIT_MS["d"]:
        _fail(
            f"--expires takes a time at most 100 years ahead (leave it out for a key that never "
            f"expires), not {when!r}",
            2,
        )
    return now + ahead


@keys_app.command("create")
def keys_create(
    user: Annotated[
        str,
        typer.Option(metavar="UUID", help="The user whose conversations the key opens."),
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SCOPE",
            help="A scope to grant; repeat for several. Default: ayeto.conversation.",
        ),
    ] = None,
    name: Annotated[str, typer.Option(metavar="NAME", help="A label to recognize it by.")] = "",
    expires: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN",
            help=f"When it stops working: {_EXPIRES_FORMS} (UTC unless it says), "
            "at most 100 years ahead. Default: never.",
        ),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            metavar="LIMITS",
            callback=_rate_limit,
            help="Its own rate limit, e.g. 20/second;600/minute. Default: the server's.",
        ),
    ] = None,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Create a key. The plain key is printed once, as the last line, and never stored."""
    # Everything is checked before the database is touched.
    user_id = _uuid_option(user)
    scopes = tuple(scope or [Scope.CONVERSATION])
    for each in scopes:
        if not each or any(c.isspace() for c in each):
            _fail(f"a scope is one word without spaces, not {each!r}", 2)
    expires_at = None if expires is None else _expiry(expires, now_ms())
    unknown = [each for each in scopes if each not in CONVERSATION_SCOPES]
    if unknown:
        _say(
            "warning",
            f"no endpoint accepts {' '.join(unknown)} (the API takes {Scope.CONVERSATION} "
            f"or {Scope.ALL}); the key is created anyway",
        )
    store = _open(db)
    try:
        key, record = create_key(
            store, user_id, scopes=scopes, name=name, expires_at=expires_at, rate_limit=rate_limit
        )
    finally:
        store.close()
    print(f"key id:  {record.id}")
    print(f"user:    {record.user_id}")
    print(f"scopes:  {' '.join(record.scopes)}")
    print(f"expires: {_when(record.expires_at) or 'never'}")
    print(f"limit:   {record.rate_limit or 'the server default'}")
    print(key)


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option(metavar="UUID", help="Only this user's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """List keys (never the keys themselves: they are not stored)."""
    import orjson

    user_id = None if user is None else _uuid_option(user)
    store = _open(db, create=False)
    try:
        records = store.list_keys(user_id)
    finally:
        store.close()
    now = now_ms()
    if as_json:
        rows = [_key_json(record, now) for record in records]
        sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        return
    if not records:
        _note("no keys")
        return
    # Off a terminal (a pipe, a log), nothing is cut to fit a width.
    from rich.console import Console

    out = Console(width=None if sys.stdout.isatty() else 1000)
    out.print(_key_table(records, now, out))


def _key_table(records: list[ApiKey], now: int, out: Console) -> Table:
    """Every column when they fit the console; else the id whole, and what fits beside it.

    An id is never cut or folded: it is what `keys revoke` takes.
    """
    from rich import box
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE, pad_edge=False)
    for header in ("id", "user"):
        table.add_column(header, no_wrap=True)
    for header in ("name", "scopes", "status", "created", "last used", "expires", "rate limit"):
        table.add_column(header, overflow="fold")
    for record in records:
        table.add_row(
            record.id,
            record.user_id,
            record.name,
            " ".join(record.scopes),
            _status(record, now),
            _when(record.created_at),
            _when(record.last_used_at),
            _when(record.expires_at),
            record.rate_limit or "default",
        )
    unbounded = out.options.update_width(1_000_000)  # the table's own minimum, not the console's
    if Measurement.get(out, unbounded, table).minimum <= out.width:
        return table
    narrow = Table(box=box.SIMPLE, pad_edge=False)
    narrow.add_column("id", no_wrap=True)
    narrow.add_column("user", no_wrap=True)  # its first 8 characters tell users apart
    narrow.add_column("status", no_wrap=True)
    narrow.add_column("expires", no_wrap=True)
    narrow.add_column("name")  # the one column that gives way, cut to one line
    for record in records:
        narrow.add_row(
            record.id,
            record.user_id[:8] + "…",
            _status(record, now),
            _when(record.expires_at, "%Y-%m-%d"),
            Text(record.name, no_wrap=True, overflow="ellipsis"),
        )
    return narrow


@keys_app.command("revoke")
def keys_revoke(
    key_or_id: Annotated[str, typer.Argument(metavar="KEY_OR_ID", help="The key, or its id.")],
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Revoke a key: it stops working at once."""
    by_key = key_or_id.startswith(KEY_PREFIX)
    now = now_ms()
    store = _open(db)
    try:
        record = store.revoke_key(
            None if by_key else key_or_id, digest(key_or_id) if by_key else None, now
        )
    finally:
        store.close()
    if record is None:
        _fail("no such key")
    # The store revokes a key only once, and answers it either way: an earlier time is kept.
    if record.revoked_at != now:
        _fail(f"key {record.id} was already revoked at {_when(record.revoked_at)}")
    print(f"revoked {record.id} (user {record.user_id}) at {_when(record.revoked_at)}")


def _status(record: ApiKey, now: int) -> str:
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is not None and record.expires_at <= now:
        return "expired"
    return "active"


def _key_json(record: ApiKey, now: int) -> dict[str, object]:
    return {
        "id": record.id,
        "user_id": record.user_id,
        "name": record.name,
        "scopes": list(record.scopes),
        "status": _status(record, now),
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "rate_limit": record.rate_limit,
    }


def _when(ms: int | None, form: str = "%Y-%m-%d %H:%M:%SZ") -> str:
    if ms is None:
        return ""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime(form)
    except (OverflowError, ValueError, OSError):
        # Beyond what a date can show; only a value stored before expiries were bounded.
        return "after 9999-12-31" if ms > 0 else "before 0001-01-01"


# -- mirror --------------------------------------------------------------------------------------

MIRROR_KEY_ENV: Final = "AYETO_MIRROR_KEY"


def _source_url(value: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(
            "--from takes the source's http:// or https:// URL, such as https://beta.ayeto.ai, "
            f"not {value!r}",
            2,
        )
    return value.rstrip("/")


@app.command("mirror")
def mirror_command(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="URL",
            callback=_source_url,
            help="The source: the hosted service (https://beta.ayeto.ai) or an ayeto serve.",
        ),
    ],
    key: Annotated[
        str | None,
        typer.Option(
            envvar=MIRROR_KEY_ENV,
            metavar="KEY",
            show_envvar=True,
            help="An API key of the source, sent to it alone (never along a redirect). An option "
            f"shows in ps: prefer the variable {MIRROR_KEY_ENV}.",
        ),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also remove local conversations the source no longer has. It fetches the "
            "whole account again (as a first run does), to know which those are.",
        ),
    ] = False,
    page_size: Annotated[
        int, typer.Option(min=1, max=1000, metavar="N", help="Conversations per find request.")
    ] = 200,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Copy every conversation a key sees on an ayeto source into this database, and keep it
    current: each run copies what changed since the last one, with find only (never get, so
    the source's accessed stamps stay as they are). Killed at any moment, a run goes on where it
    stopped the next time."""
    import time

    from ayeto.client import AyetoError, Client
    from ayeto.mirror import Summary, mirror, source_user

    if not key:
        _fail(f"no key for the source: set {MIRROR_KEY_ENV} (or pass --key KEY)", 2)
    started = time.monotonic()
    summary = Summary()
    with Client(api_key=key, base_url=source) as client:
        try:
            # Before the local database is opened: a wrong source or key changes nothing here.
            user = source_user(client)
        except AyetoError as exc:
            _fail(_source_error(exc, source))
        if user is None:
            _note(f"the key sees no conversations at {source}: nothing to mirror")
            return
        store = _open(db)
        try:
            with _mirror_progress() as progress:
                mirror(
                    client,
                    store,
                    source,
                    user,
                    prune=prune,
                    page_size=page_size,
                    on_progress=progress,
                    summary=summary,
                )
        except AyetoError as exc:
            _fail(
                f"{_source_error(exc, source)}; the {summary.new + summary.updated} "
                "conversation(s) copied so far are kept: run again to go on"
            )
        finally:
            store.close()
    for reason in summary.reasons:
        _say("warning", f"skipped conversation {reason}")
    if summary.dropped:
        fields = ", ".join(f"{name} ({count})" for name, count in sorted(summary.dropped.items()))
        _note(f"unknown fields dropped: {fields}")
    _note(f"mirrored {source} for user {user}: {summary.line(time.monotonic() - started)}")
    where = "" if db == DEFAULT_DATABASE_URL else f" --db {_shown(db)}"
    _note(f"to use this copy through the API, create a key: ayeto keys create --user {user}{where}")


def _source_error(exc: Exception, source: str) -> str:
    """One line for what went wrong with the source."""
    from ayeto.client import (
        APIConnectionError,
        APIStatusError,
        AuthenticationError,
        RateLimitError,
    )

    if isinstance(exc, APIConnectionError):
        return f"cannot reach the source at {source}: {exc.message}"
    if not isinstance(exc, APIStatusError):
        return f"{source} does not answer as an ayeto Conversation API v3: {exc}"
    if 300 <= exc.status_code < 400:
        location = exc.response.headers.get("location", "elsewhere")
        return (
            f"{source} redirects to {location}, which is not followed: the key goes only to "
            "--from (give the URL it redirects to, if you trust it)"
        )
    if isinstance(exc, AuthenticationError):
        return f"the source at {source} refused the key: {exc.detail}"
    if isinstance(exc, RateLimitError):
        return f"the source at {source} kept refusing for its rate limit: {exc.detail}"
    if exc.status_code in (404, 405):
        return (
            f"{source} does not answer as an ayeto Conversation API v3 "
            f"(its /api/v3/conversation/find answered {exc.status_code})"
        )
    return f"the source at {source} answered {exc.status_code}: {exc.detail}"


@contextmanager
def _mirror_progress() -> Iterator[Callable[[Any], None] | None]:
    """A spinner with the count fetched so far, on a terminal (how many are to come is unknown)."""
    if not _err().is_terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.completed} fetched"), TimeElapsedColumn())
    with Progress(*columns, console=_err(), transient=True) as bar:
        task = bar.add_task("mirroring", total=None)
        yield lambda summary: bar.update(task, completed=summary.fetched)


# -- import / export -----------------------------------------------------------------------------


@app.command("migrate")
def migrate_command(db: Db = DEFAULT_DATABASE_URL) -> None:
    """Create the schema, or bring it up to this version's (a current one is left as it is)."""
    from ayeto.store.migrations import HEAD

    _open(db).close()
    _note(f"the ayeto database at {_shown(db)} is at schema revision {HEAD}")


@app.command("import")
def import_command(
    source: Annotated[
        str, typer.Argument(metavar="FILE|-", help="JSONL or a JSON array; - is stdin.")
    ],
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Import conversations (upsert by id). A file with any invalid record imports nothing."""
    from ayeto.transfer import InvalidRecords, NotConversations, import_documents

    with _source(source) as stream:  # a file that cannot be read is found before the database
        total = None if source == "-" else Path(source).stat().st_size
        store = _open(db)
        try:
            with _progress(total) as advance:
                count = import_documents(store, stream, on_progress=advance)
        except InvalidRecords as exc:
            for line in exc.report():
                _note(line)
            _fail(f"{exc.count} invalid record(s); nothing was imported")
        except NotConversations as exc:
            _fail(str(exc))
        finally:
            store.close()
    _note(f"imported {count} conversation(s)")


@contextmanager
def _source(source: str) -> Iterator[BinaryIO]:
    if source == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = open(source, "rb")  # noqa: SIM115 - closed below, after the import
    except OSError as exc:
        _fail(f"cannot read {source!r}: {exc.strerror}", 2)
    with stream:
        yield stream


@contextmanager
def _progress(total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal, fed with the number of bytes read so far."""
    if not _err().is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err(), transient=True) as bar:
        task = bar.add_task("importing", total=total)
        yield lambda done: bar.update(task, completed=done)


@app.command("export")
def export_command(
    sink: Annotated[
        str, typer.Argument(metavar="[FILE|-]", help="Where to write; - is stdout.")
    ] = "-",
    user: Annotated[
        str | None, typer.Option(metavar="UUID", help="Only this user's conversations.")
    ] = None,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Export conversations as JSONL, one `PublicConversationView` per line."""
    from ayeto.transfer import export_documents

    user_id = None if user is None else _uuid_option(user)
    with _sink(sink) as stream:
        store = _open(db, create=False)
        try:
            count = export_documents(store, stream, user=user_id)
        finally:
            store.close()
    _note(f"exported {count} conversation(s)")


# -- delete / prune ------------------------------------------------------------------------------

_FILTER_METAVAR: Final = "FIELD OP VALUE"


class _FilterCommand(TyperCommand):
    """A command whose `--filter` takes three values, as many times as given: typer declares no
    repeated option of several values (a list of tuples), click takes one (`nargs`). The
    values reach the command as click parsed them: a list of (FIELD, OP, VALUE), empty when
    there is none; typer's coercion, which would make each a string, is left out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name == "filters":
                param.nargs = 3
                setattr(param, "process_value", _triples)  # noqa: B010 - a method, replaced


def _triples(_ctx: object, value: Iterable[Iterable[str]] | None) -> list[tuple[str, ...]]:
    return [tuple(triple) for triple in value or ()]


def _filter_value(field: str, text: str) -> object:
    """VALUE of `--filter FIELD OP VALUE` as the API's JSON would carry it.

    `null` is null and a JSON string (`'"null"'`, `'"42"'`) is that string, for any field. A
    timestamp field takes a JSON number or an ISO 8601 date/time (UTC unless it says otherwise);
    any other text, and everything for the other fields, is taken as the text itself. The
    parser then judges it as it judges a request's.
    """
    import orjson

    from ayeto.query import FIELDS, Kind

    if text == "null" or text.startswith('"'):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
    if field in FIELDS and FIELDS[field].kind is Kind.TIMESTAMP:
        try:
            number = orjson.loads(text)
            if type(number) in (int, float):
                return number
        except orjson.JSONDecodeError:
            pass
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return text


def _filters_query(filters: list[tuple[str, str, str]]) -> Query:
    """The query of these `--filter`s, through the API's parser: its errors, named by option."""
    from ayeto.errors import BadRequest
    from ayeto.query import parse_query

    body = {"filters": [[field, op, _filter_value(field, value)] for field, op, value in filters]}
    try:
        return parse_query(body)
    except BadRequest as exc:
        # "filters[0]: unknown field 'nme'" is the first `--filter` given.
        detail = re.sub(r"^filters\[(\d+)\]", lambda m: f"--filter #{int(m[1]) + 1}", exc.detail)
        _fail(detail.replace("filters:", "--filter:", 1), 2)


def _delete(store: Store, owner: str | None, query: Query, what: str, *, dry_run: bool) -> None:
    """Say how many conversations `query` matches, then (not `dry_run`) delete exactly those, in
    one transaction; with `dry_run`, list their ids on stdout instead."""
    from ayeto.errors import MatchesChanged

    ids = store.delete_matching(owner, query, dry_run=True)
    _note(f"{len(ids)} conversation(s) {what}")
    if dry_run:
        for id_ in ids:
            print(id_)
        _note("dry run: nothing was deleted")
        return
    if not ids:
        return
    try:
        deleted = store.delete_matching(owner, query, expect=len(ids))
    except MatchesChanged as exc:
        _fail(exc.detail)
    _note(f"deleted {len(deleted)} conversation(s)")


@app.command("delete", cls=_FilterCommand)
def delete_command(
    user: Annotated[
        str, typer.Option(metavar="UUID", help="The user whose conversations to delete.")
    ],
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar=_FILTER_METAVAR,
            help="A condition of the API's find (e.g. model == gpt-4o, updated.timestamp < "
            "2026-01-01); repeat it: a conversation must match all. VALUE: null, a JSON "
            "string, a number or ISO date for timestamps, else the text as it is.",
        ),
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Delete every conversation of the user (no --filter).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the ids that match; delete nothing.")
    ] = False,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Delete a user's conversations that match every --filter, in one transaction."""
    # Three to a `--filter`, as click parsed them (`_FilterCommand`).
    given = cast(list[tuple[str, str, str]], filters or [])
    user_id = _uuid_option(user)
    if not given and not everything:
        _fail("delete takes at least one --filter, or --all to delete every conversation", 2)
    if given and everything:
        _fail("--all deletes every conversation: leave out --filter, or --all", 2)
    query = _filters_query(given)
    store = _open(db, create=False)
    try:
        _delete(store, user_id, query, "match", dry_run=dry_run)
    finally:
        store.close()


@app.command("prune")
def prune_command(
    older_than: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="Delete conversations not updated for this long: a number and a unit "
            "(s, m, h, d, w), e.g. 90d.",
        ),
    ],
    user: Annotated[
        str | None, typer.Option(metavar="UUID", help="Only this user's conversations.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the ids that would go; delete nothing.")
    ] = False,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Delete conversations not updated within --older-than (every user's, or one's)."""
    from ayeto.retention import older_than as not_updated_since
    from ayeto.retention import when

    try:
        age = duration_ms(older_than)
    except ValueError:
        _fail(f"--older-than takes {DURATION_FORMS}, not {older_than!r}", 2)
    user_id = None if user is None else _uuid_option(user)
    cutoff = now_ms() - age
    store = _open(db, create=False)
    try:
        what = f"not updated since {when(cutoff)}"
        _delete(store, user_id, not_updated_since(cutoff), what, dry_run=dry_run)
    finally:
        store.close()


@contextmanager
def _sink(sink: str) -> Iterator[BinaryIO]:
    """stdout for `-`; else the file, which appears (or is replaced) whole when the block ends.

    The data goes to a hidden file beside it, renamed over it at the end: a failure half-way
    leaves no half-written export, and an earlier file of that name untouched.
    """
    if sink == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(sink)
    if path.is_dir():
        _fail(f"cannot write {sink!r}: {os.strerror(errno.EISDIR)}", 2)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        stream = open(partial, "xb")  # noqa: SIM115 - closed below, before the rename
    except OSError as exc:
        _fail(f"cannot write {sink!r}: {exc.strerror}", 2)
    try:
        with stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
    except OSError as exc:
        _fail(f"cannot write {sink!r}: {exc.strerror}")
    finally:
        partial.unlink(missing_ok=True)

"""`ayeto`, the operator's command line: serve the API, manage keys, move data in and out."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, BinaryIO, Final, NoReturn

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ayeto import logs
from ayeto.auth import KEY_PREFIX, Scope, create_key, digest
from ayeto.clock import now_ms
from ayeto.config import DEFAULT_DATABASE_URL, DEFAULT_HOST, DEFAULT_PORT, Settings
from ayeto.query import parse_uuid
from ayeto.store import ApiKey, Store, open_store

app = typer.Typer(
    name="ayeto",
    help="Serve the ayeto Conversation API v3 and manage its data and API keys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

err = Console(stderr=True)

Db = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="AYETO_DATABASE_URL",
        help="Database URL: sqlite:///PATH or postgresql://USER@HOST/NAME.",
    ),
]


def main() -> None:
    app()


def _open(url: str) -> Store:
    try:
        return open_store(url, Settings.from_env().connection)
    except Exception as exc:  # any failure to reach or migrate the database ends here
        shown = url
        with suppress(ArgumentError):
            shown = make_url(url).render_as_string(hide_password=True)
        _fail(f"cannot open database {shown!r}: {exc}")


def _fail(message: str, code: int = 1) -> NoReturn:
    # Plain text (a path or an address may hold `[` or `:-1:`), on one line whatever the width.
    err.print(Text.assemble(("error:", "red"), f" {message}"), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _uuid_option(value: str) -> str:
    canonical = parse_uuid(value)
    if canonical is None:
        _fail(f"--user takes a UUID, not {value!r}", 2)
    return canonical


# -- serve / demo --------------------------------------------------------------------------------


@app.command()
def serve(
    db: Db = DEFAULT_DATABASE_URL,
    host: Annotated[str, typer.Option(envvar="AYETO_HOST", help="Address to bind.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(envvar="AYETO_PORT", help="Port to bind.")] = DEFAULT_PORT,
    workers: Annotated[
        int, typer.Option(envvar="AYETO_WORKERS", min=1, help="Server processes.")
    ] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load demo data and print a key and a curl first.")
    ] = False,
    log_level: Annotated[str, typer.Option(envvar="AYETO_LOG_LEVEL")] = "info",
    log_format: Annotated[
        str, typer.Option(envvar="AYETO_LOG_FORMAT", help="console or json.")
    ] = "console",
) -> None:
    """Run the API server."""
    import uvicorn

    from ayeto.ports import cannot_listen

    # A busy port ends here, before the demo loads anything or makes a key.
    retry = "AYETO_PORT={port} make demo" if demo else "--port {port}"
    if problem := cannot_listen(host, port, retry=retry):
        _fail(problem)
    store = _open(db)  # creates or upgrades the schema once, before any worker starts
    try:
        if demo:
            _load_demo(store, db, host, port, serving=True)
    finally:
        store.close()
    # Every worker process builds its app from the environment (see `app_from_env`).
    os.environ.update(AYETO_DATABASE_URL=db, AYETO_LOG_LEVEL=log_level, AYETO_LOG_FORMAT=log_format)
    uvicorn.run(
        "ayeto.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=logs.config(log_level, log_format),
        server_header=False,
    )


@app.command("demo")
def demo_command(
    db: Db = DEFAULT_DATABASE_URL,
    host: Annotated[
        str, typer.Option(help="Host the printed curl command targets.")
    ] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option(help="Port the printed curl command targets.")
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


def _expiry(when: str) -> int:
    """Milliseconds since the epoch for `30d`/`12h`/`90m` from now, or an ISO 8601 date/time."""
    if match := _DURATION.fullmatch(when):
        return now_ms() + int(match[1]) * _UNIT_MS[match[2]]
    try:
        moment = datetime.fromisoformat(when)
    except ValueError:
        _fail(f"--expires takes 30d, 12h, 90m or an ISO 8601 date/time, not {when!r}", 2)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option(help="The user (UUID) whose conversations the key opens.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(help="A scope to grant; repeat for several. Default: ayeto.conversation."),
    ] = None,
    name: Annotated[str, typer.Option(help="A label to recognize the key by.")] = "",
    expires: Annotated[
        str | None, typer.Option(help="When it stops working: 30d, 12h, 90m or ISO 8601.")
    ] = None,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Create a key. The plain key is printed once, as the last line, and never stored."""
    user_id = _uuid_option(user)
    scopes = tuple(scope or [Scope.CONVERSATION])
    for each in scopes:
        if not each or any(c.isspace() for c in each):
            _fail(f"a scope is one word without spaces, not {each!r}", 2)
    expires_at = None if expires is None else _expiry(expires)
    store = _open(db)
    try:
        key, record = create_key(store, user_id, scopes=scopes, name=name, expires_at=expires_at)
    finally:
        store.close()
    print(f"key id:  {record.id}")
    print(f"user:    {record.user_id}")
    print(f"scopes:  {' '.join(record.scopes)}")
    print(f"expires: {_when(record.expires_at) or 'never'}")
    print(key)


@keys_app.command("list")
def keys_list(
    user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """List keys (never the keys themselves: they are not stored)."""
    user_id = None if user is None else _uuid_option(user)
    store = _open(db)
    try:
        records = store.list_keys(user_id)
    finally:
        store.close()
    now = now_ms()
    if as_json:
        rows = [_key_json(record, now) for record in records]
        sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        return
    table = Table("id", "user", "name", "scopes", "status", "created", "last used", "expires")
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
        )
    # Off a terminal (a pipe, a log), nothing is cut to fit a width.
    Console(width=None if sys.stdout.isatty() else 1000).print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_or_id: Annotated[str, typer.Argument(metavar="KEY_OR_ID", help="The key, or its id.")],
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Revoke a key: it stops working at once."""
    by_key = key_or_id.startswith(KEY_PREFIX)
    store = _open(db)
    try:
        record = store.revoke_key(
            None if by_key else key_or_id, digest(key_or_id) if by_key else None, now_ms()
        )
    finally:
        store.close()
    if record is None:
        _fail("no such key")
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
    }


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# -- import / export -----------------------------------------------------------------------------


@app.command("import")
def import_command(
    source: Annotated[
        str, typer.Argument(metavar="FILE|-", help="JSONL or a JSON array; - is stdin.")
    ],
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Import conversations (upsert by id). A file with any invalid record imports nothing."""
    from ayeto.transfer import InvalidRecords, NotConversations, import_documents

    store = _open(db)
    try:
        with _source(source) as stream:
            total = None if source == "-" else Path(source).stat().st_size
            with _progress(total) as advance:
                count = import_documents(store, stream, on_progress=advance)
    except InvalidRecords as exc:
        for line in exc.report():
            err.print(line, highlight=False, markup=False, emoji=False, soft_wrap=True)
        _fail(f"{exc.count} invalid record(s); nothing was imported")
    except NotConversations as exc:
        _fail(str(exc))
    finally:
        store.close()
    err.print(f"imported {count} conversation(s)", highlight=False)


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
    if not err.is_terminal:
        yield None
        return
    columns = (BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("importing", total=total)
        yield lambda done: bar.update(task, completed=done)


@app.command("export")
def export_command(
    sink: Annotated[
        str, typer.Argument(metavar="[FILE|-]", help="Where to write; - is stdout.")
    ] = "-",
    user: Annotated[str | None, typer.Option(help="Only this user's conversations.")] = None,
    db: Db = DEFAULT_DATABASE_URL,
) -> None:
    """Export conversations as JSONL, one `PublicConversationView` per line."""
    from ayeto.transfer import export_documents

    user_id = None if user is None else _uuid_option(user)
    store = _open(db)
    try:
        if sink == "-":
            count = export_documents(store, sys.stdout.buffer, user=user_id)
            sys.stdout.buffer.flush()
        else:
            with open(sink, "wb") as stream:
                count = export_documents(store, stream, user=user_id)
    finally:
        store.close()
    err.print(f"exported {count} conversation(s)", highlight=False)

"""A user's mistakes, run as a real `ayeto` process: one line on stderr, the exit code, and nothing
changed (no file created, the database as it was).

Exit 2 is a mistake in the command line or its environment; exit 1 a failure while carrying it out.
"""

from __future__ import annotations

import os
import pty
import re
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import orjson
import psycopg
import pytest
from sqlalchemy.engine import make_url

from ayeto import __version__
from ayeto.auth import digest
from ayeto.store import ApiKey, migrations, open_store
from tests.factories import ALICE, BOB, conversation
from tests.processes import cli

# Before: a database that does not exist, one with data in it, one whose schema is not the current.
Setup = Literal["missing", "ready", "stale"]

REVOKED = ApiKey(
    id="9b2f6a4e-0c1d-4e8f-a3b5-7c9d1e2f4a6b",
    user_id=BOB,
    name="old",
    scopes=("ayeto.conversation",),
    created_at=1_700_000_000_000,
    revoked_at=1_700_000_060_000,
)
REVOKED_AT = "2023-11-14 22:14:20Z"
NO_DATABASE = "error: no ayeto database at {db} (run 'ayeto migrate' to create one)"
TOO_FAR = (
    "error: --expires takes a time at most 100 years ahead (leave it out for a key that never "
    "expires), not '{}'"
)
URL_FORMS = "sqlite:///PATH or postgresql://USER@HOST/NAME"
FORWARDED_FORMS = "* or comma-separated IP addresses and networks such as 127.0.0.1,10.0.0.0/24"
METRICS_FORMS = "on, off or HOST:PORT (serve /metrics there, apart from the API)"
RATE_LIMIT_FORMS = "limits such as 600/minute, or several separated by ';' as 20/second;600/minute"
MIRROR_FROM = "--from takes the source's http:// or https:// URL, such as https://beta.ayeto.ai,"
REDIS_FORMS = "a URL such as redis://127.0.0.1:6379/0 (or rediss://, redis+unix://)"
DURATION_FORMS = (
    "a whole number and a unit (s, m, h, d or w) such as 90d, above 0 and at most 100 years"
)


@dataclass(frozen=True)
class Mistake:
    """`ayeto ARGS` run in an empty directory `{tmp}` against the database `{db}`."""

    args: tuple[str, ...]
    stderr: str  # the one line, with {db} and {tmp} filled in
    code: int = 2
    setup: Setup = "ready"
    env: dict[str, str] = field(default_factory=dict)


MISTAKES = {
    # 1. --expires: bounded, in the future, checked before anything is written.
    "expires far away": Mistake(
        ("keys", "create", "--user", ALICE, "--expires", "99999999d"), TOO_FAR.format("99999999d")
    ),
    "expires far away, new database": Mistake(
        ("keys", "create", "--user", ALICE, "--expires", "36526d"),
        TOO_FAR.format("36526d"),
        setup="missing",
    ),
    "expires beyond any number": Mistake(
        ("keys", "create", "--user", ALICE, "--expires", "9" * 5000 + "m"),
        TOO_FAR.format("9" * 5000 + "m"),
    ),
    "expires now": Mistake(
        ("keys", "create", "--user", ALICE, "--expires", "0d"),
        "error: --expires takes a time in the future, not '0d'",
    ),
    "expires in the past": Mistake(
        ("keys", "create", "--user", ALICE, "--expires", "2020-01-02T03:04:05Z"),
        "error: --expires takes a time in the future, not '2020-01-02T03:04:05Z'",
    ),
    "expires in year 10000": Mistake(
        ("keys", "create", "--user", ALICE, "--expires", "9999-12-31T23:59:59-23:59"),
        TOO_FAR.format("9999-12-31T23:59:59-23:59"),
    ),
    "expires unreadable": Mistake(
        ("keys", "create", "--user", ALICE, "--expires", "soon"),
        "error: --expires takes 30d, 12h, 90m or an ISO 8601 date/time, not 'soon'",
    ),
    "user not a UUID": Mistake(
        ("keys", "create", "--user", "alice"), "error: --user takes a UUID, not 'alice'"
    ),
    "user missing": Mistake(("keys", "create"), "error: Missing option --user."),
    # 2. export to a place that cannot be written.
    "export to a directory": Mistake(
        ("export", "{tmp}"), "error: cannot write '{tmp}': Is a directory"
    ),
    "export into a missing directory": Mistake(
        ("export", "{tmp}/nowhere/x.jsonl"),
        "error: cannot write '{tmp}/nowhere/x.jsonl': No such file or directory",
    ),
    "import a missing file": Mistake(
        ("import", "{tmp}/in.jsonl"),
        "error: cannot read '{tmp}/in.jsonl': No such file or directory",
        setup="missing",
    ),
    # 3. serve: choices and ranges.
    "log level": Mistake(
        ("serve", "--log-level", "bogus"),
        "error: Invalid value for --log-level: "
        "Value error, 'bogus' is not one of 'debug', 'info', 'warning', 'error'.",
    ),
    "log format": Mistake(
        ("serve", "--log-format", "xml"),
        "error: Invalid value for --log-format: "
        "Value error, 'xml' is not one of 'console', 'json'.",
    ),
    "port too high": Mistake(
        ("serve", "--port", "70000"),
        "error: Invalid value for --port: Input should be less than or equal to 65535",
    ),
    "port from the environment": Mistake(
        ("serve",),
        "error: Invalid value for AYETO_PORT: Input should be less than or equal to 65535",
        env={"AYETO_PORT": "70000"},
    ),
    "proxy not an address": Mistake(
        ("serve", "--forwarded-allow-ips", "127.0.0.1,nginx"),
        f"error: --forwarded-allow-ips takes {FORWARDED_FORMS}, not '127.0.0.1,nginx'",
    ),
    "proxy network with host bits, from the environment": Mistake(
        ("serve",),
        f"error: AYETO_FORWARDED_ALLOW_IPS takes {FORWARDED_FORMS}, not '10.0.0.1/8'",
        env={"AYETO_FORWARDED_ALLOW_IPS": "10.0.0.1/8"},
    ),
    "metrics neither on, off nor an address": Mistake(
        ("serve", "--metrics", "yes"),
        f"error: --metrics takes {METRICS_FORMS}, not 'yes'",
        setup="missing",
    ),
    "metrics port out of range, from the environment": Mistake(
        ("serve",),
        f"error: AYETO_METRICS takes {METRICS_FORMS}, not '127.0.0.1:70000'",
        env={"AYETO_METRICS": "127.0.0.1:70000"},
        setup="missing",
    ),
    "metrics setting read by another command": Mistake(
        ("keys", "list"),
        f"error: AYETO_METRICS takes {METRICS_FORMS}, not ':9100'",
        env={"AYETO_METRICS": ":9100"},
    ),
    "rate limit not the notation": Mistake(
        ("serve", "--rate-limit", "600 a minute"),
        f"error: --rate-limit takes {RATE_LIMIT_FORMS}, not '600 a minute'",
    ),
    "rate limit that admits nothing, from the environment": Mistake(
        ("serve",),
        f"error: AYETO_RATE_LIMIT takes {RATE_LIMIT_FORMS}, not '10/second;0/minute'",
        env={"AYETO_RATE_LIMIT": "10/second;0/minute"},
    ),
    "redis not a URL": Mistake(
        ("serve", "--redis-url", "127.0.0.1:6379"),
        f"error: --redis-url takes {REDIS_FORMS}, not '127.0.0.1:6379'",
    ),
    "key rate limit": Mistake(
        ("keys", "create", "--user", ALICE, "--rate-limit", "fast"),
        f"error: --rate-limit takes {RATE_LIMIT_FORMS}, not 'fast'",
    ),
    "no workers": Mistake(
        ("serve", "--workers", "0"),
        "error: Invalid value for --workers: Input should be greater than or equal to 1",
    ),
    "no time for a head": Mistake(
        ("serve", "--header-timeout", "0"),
        "error: --header-timeout takes a number of seconds above 0, not 0",
    ),
    "body timeout not a number, from the environment": Mistake(
        ("serve",),
        "error: AYETO_BODY_TIMEOUT takes a number of seconds above 0, not nan",
        env={"AYETO_BODY_TIMEOUT": "nan"},
    ),
    "head limit too small": Mistake(
        ("serve", "--max-header-bytes", "100"),
        "error: Invalid value for --max-header-bytes: "
        "Input should be greater than or equal to 1024",
    ),
    "no concurrency": Mistake(
        ("serve", "--limit-concurrency", "0"),
        "error: Invalid value for --limit-concurrency: Input should be greater than or equal to 1",
    ),
    # 4. settings from the environment name the variable; serve checks them before starting.
    "keep-alive not a number": Mistake(
        ("keys", "list"),
        "error: AYETO_TIMEOUT_KEEP_ALIVE takes a number of seconds above 0, not 'abc'",
        env={"AYETO_TIMEOUT_KEEP_ALIVE": "abc"},
    ),
    "body limit not a number": Mistake(
        ("keys", "list"),
        "error: AYETO_MAX_BODY_BYTES takes a whole number of at least 1, not 'abc'",
        env={"AYETO_MAX_BODY_BYTES": "abc"},
    ),
    "negative pool": Mistake(
        ("keys", "list"),
        "error: AYETO_DB_POOL_SIZE takes a whole number of at least 1, not '-1'",
        env={"AYETO_DB_POOL_SIZE": "-1"},
    ),
    "serve with a bad setting": Mistake(
        ("serve",),
        "error: AYETO_MAX_BODY_BYTES takes a whole number of at least 1, not 'abc'",
        env={"AYETO_MAX_BODY_BYTES": "abc"},
        setup="missing",
    ),
    "rate limit from the environment": Mistake(
        ("keys", "list"),
        f"error: AYETO_RATE_LIMIT takes {RATE_LIMIT_FORMS}, not '100/fortnight'",
        env={"AYETO_RATE_LIMIT": "100/fortnight"},
    ),
    "redis from the environment": Mistake(
        ("import", "-"),
        f"error: AYETO_REDIS_URL takes {REDIS_FORMS}, not 'http://cache:6379'",
        env={"AYETO_REDIS_URL": "http://cache:6379"},
    ),
    "inline read budget past its bound": Mistake(
        ("keys", "list"),
        "error: AYETO_DB_INLINE_READ_MS takes a whole number from 0 to 1000, not '5000'",
        env={"AYETO_DB_INLINE_READ_MS": "5000"},
    ),
    "pool timeout": Mistake(
        ("import", "-"),
        "error: AYETO_DB_POOL_TIMEOUT takes a number of seconds above 0, not '0'",
        env={"AYETO_DB_POOL_TIMEOUT": "0"},
    ),
    # 5. --db is a URL of a supported database.
    "db is a path": Mistake(
        ("keys", "list", "--db", "demo.db"),
        "error: --db takes a URL such as sqlite:///demo.db",
    ),
    "db is a path, from the environment": Mistake(
        ("keys", "create", "--user", ALICE),
        "error: AYETO_DATABASE_URL takes a URL such as sqlite:///{tmp}/x.db",
        env={"AYETO_DATABASE_URL": "{tmp}/x.db"},
    ),
    "db of another kind": Mistake(
        ("export", "--db", "mysql://somewhere/db"),
        f"error: --db: 'mysql' is not supported; use {URL_FORMS}",
    ),
    # 6. Read-only commands never create, migrate or write a database.
    "keys list, no database": Mistake(("keys", "list"), NO_DATABASE, 1, setup="missing"),
    "export, no database": Mistake(("export", "{tmp}/out.jsonl"), NO_DATABASE, 1, setup="missing"),
    "export, an older schema": Mistake(
        ("export",),
        f"error: the ayeto database at {{db}} has schema revision '0000', not the current "
        f"'{migrations.head()}' "
        "(run 'ayeto migrate' to upgrade it)",
        1,
        setup="stale",
    ),
    # 7. Revoking twice keeps the first time.
    "revoke twice": Mistake(
        ("keys", "revoke", REVOKED.id),
        f"error: key {REVOKED.id} was already revoked at {REVOKED_AT}",
        1,
    ),
    "revoke an unknown key": Mistake(
        ("keys", "revoke", str(uuid.UUID(int=1))), "error: no such key", 1
    ),
    # 8. A mirror's source is checked before the local database is opened (more in test_mirror).
    "mirror without a key": Mistake(
        ("mirror", "--from", "http://127.0.0.1:1"),
        "error: no key for the source: set AYETO_MIRROR_KEY (or pass --key KEY)",
    ),
    "mirror with an empty key": Mistake(
        ("mirror", "--from", "http://127.0.0.1:1"),
        "error: no key for the source: set AYETO_MIRROR_KEY (or pass --key KEY)",
        env={"AYETO_MIRROR_KEY": ""},
    ),
    "mirror from a host name alone": Mistake(
        ("mirror", "--from", "beta.ayeto.ai", "--key", "k"),
        f"error: {MIRROR_FROM} not 'beta.ayeto.ai'",
    ),
    "mirror from a port out of range": Mistake(
        ("mirror", "--from", "http://127.0.0.1:99999", "--key", "k"),
        f"error: {MIRROR_FROM} not 'http://127.0.0.1:99999'",
    ),
    "mirror in pages of none": Mistake(
        ("mirror", "--from", "http://127.0.0.1:1", "--key", "k", "--page-size", "0"),
        "error: Invalid value for --page-size: Input should be greater than or equal to 1",
    ),
    "mirror from an unreachable source": Mistake(
        ("mirror", "--from", "http://127.0.0.1:1", "--key", "k"),
        "error: cannot reach the source at http://127.0.0.1:1: "
        "connection error: [Errno 111] Connection refused",
        1,
    ),
    "mirror from an unreachable source, new database": Mistake(
        ("mirror", "--from", "http://127.0.0.1:1"),
        "error: cannot reach the source at http://127.0.0.1:1: "
        "connection error: [Errno 111] Connection refused",
        1,
        setup="missing",
        env={"AYETO_MIRROR_KEY": "k"},
    ),
    # 9. delete and prune: what to delete must be said, in the API's filter language.
    "delete without a filter": Mistake(
        ("delete", "--user", ALICE),
        "error: delete takes at least one --filter, or --all to delete every conversation",
    ),
    "delete with --all and a filter": Mistake(
        ("delete", "--user", ALICE, "--all", "--filter", "name", "==", "x"),
        "error: --all deletes every conversation: leave out --filter, or --all",
    ),
    "delete by an unknown field": Mistake(
        ("delete", "--user", ALICE, "--filter", "model", "==", "x", "--filter", "nme", "==", "x"),
        "error: --filter #2: unknown field 'nme'",
    ),
    "delete by an invalid regex": Mistake(
        ("delete", "--user", ALICE, "--filter", "name", "regex", "("),
        "error: --filter #1: invalid regex: missing ): (",
    ),
    "delete by a timestamp that is not one": Mistake(
        ("delete", "--user", ALICE, "--filter", "updated.timestamp", "<", "soon"),
        "error: --filter #1: 'updated.timestamp' takes an integer, got 'soon'",
    ),
    "delete by null where it cannot be": Mistake(
        ("delete", "--user", ALICE, "--filter", "name", "==", "null"),
        "error: --filter #1: 'name' is never null",
    ),
    "delete by a filter short of its value": Mistake(
        ("delete", "--user", ALICE, "--filter", "name", "=="),
        "error: Option '--filter' requires 3 arguments.",
    ),
    "delete, user not a UUID": Mistake(
        ("delete", "--user", "alice", "--all"), "error: --user takes a UUID, not 'alice'"
    ),
    "delete, no database": Mistake(
        ("delete", "--user", ALICE, "--all"), NO_DATABASE, 1, setup="missing"
    ),
    "prune older than nothing": Mistake(
        ("prune", "--older-than", "0d"), f"error: --older-than takes {DURATION_FORMS}, not '0d'"
    ),
    "prune older than a century": Mistake(
        ("prune", "--older-than", "5300w"),
        f"error: --older-than takes {DURATION_FORMS}, not '5300w'",
    ),
    "prune in years": Mistake(
        ("prune", "--older-than", "2y"), f"error: --older-than takes {DURATION_FORMS}, not '2y'"
    ),
    "prune without an age": Mistake(("prune",), "error: Missing option --older-than."),
    "prune, no database": Mistake(
        ("prune", "--older-than", "90d"), NO_DATABASE, 1, setup="missing"
    ),
    "retention without a unit": Mistake(
        ("keys", "list"),
        f"error: AYETO_RETENTION takes {DURATION_FORMS}, not '90'",
        env={"AYETO_RETENTION": "90"},
    ),
    # 10. Unknown commands and options are one line too.
    "unknown command": Mistake(
        ("keys", "rotate"), "error: No such command 'rotate'. Did you mean 'create'?"
    ),
    "unknown option": Mistake(
        ("export", "--users", ALICE), "error: No such option: --users (Possible options: --user)"
    ),
}


def _fill(text: str, tmp: Path, db: str) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{db}", db)


def _prepare(setup: Setup, url: str) -> None:
    if setup == "missing":
        return
    store = open_store(url)
    try:
        store.upsert([conversation(ALICE), conversation(BOB)])
        store.add_key(REVOKED, digest("ayeto-" + "0" * 64))
    finally:
        store.close()
    if setup == "stale":
        with closing(sqlite3.connect(_path(url))) as connection, connection:
            connection.execute("UPDATE alembic_version SET version_num = '0000'")


def _path(url: str) -> str:
    return str(make_url(url).database)


def _state(tmp: Path, url: str) -> tuple[list[str], str]:
    """The files in `tmp`, and everything the database holds (as SQL)."""
    files = sorted(p.name for p in tmp.iterdir() if not p.name.endswith(("-wal", "-shm")))
    if not Path(_path(url)).exists():
        return files, ""
    with closing(sqlite3.connect(_path(url))) as connection:
        return files, "\n".join(connection.iterdump())


@pytest.mark.parametrize("mistake", MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_is_one_line_and_changes_nothing(
    mistake: Mistake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ayeto.db'}"
    _prepare(mistake.setup, url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AYETO_DATABASE_URL", url)
    for name, value in mistake.env.items():
        monkeypatch.setenv(name, _fill(value, tmp_path, url))
    before = _state(tmp_path, url)
    args = [_fill(arg, tmp_path, url) for arg in mistake.args]

    result = cli(*args, check=False)

    assert (result.returncode, result.stderr) == (
        mistake.code,
        _fill(mistake.stderr, tmp_path, url) + "\n",
    )
    assert result.stdout == ""
    assert _state(tmp_path, url) == before


# -- read-only commands on PostgreSQL ------------------------------------------------------------


def _tables(url: str) -> list[tuple[str, ...]]:
    with psycopg.connect(url) as connection:
        return [
            tuple(row)
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' ORDER BY table_name"
            )
        ]


@pytest.mark.parametrize("command", [("keys", "list"), ("export",)])
@pytest.mark.parametrize("older", [False, True], ids=["no schema", "older schema"])
def test_read_only_commands_leave_a_postgres_database_without_the_schema_alone(
    bare_postgres: str, command: tuple[str, ...], older: bool
) -> None:
    shown = make_url(bare_postgres).render_as_string(hide_password=True)
    expected = NO_DATABASE.format(db=shown)
    if older:
        with psycopg.connect(bare_postgres, autocommit=True) as connection:
            connection.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
            connection.execute("INSERT INTO alembic_version VALUES ('0000')")
        expected = (
            f"error: the ayeto database at {shown} has schema revision '0000', not the current "
            f"'{migrations.head()}' (run 'ayeto migrate' to upgrade it)"
        )
    before = _tables(bare_postgres)

    result = cli(*command, "--db", bare_postgres, check=False)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", expected + "\n")
    assert _tables(bare_postgres) == before


# -- what is not a mistake, but the user should know ---------------------------------------------

WRITERS = {
    "keys create": (("keys", "create", "--user", ALICE), 0),
    "keys revoke": (("keys", "revoke", REVOKED.id), 1),  # no such key in a new database
    "import": (("import", "-"), 0),
}


@pytest.mark.parametrize(("args", "code"), WRITERS.values(), ids=WRITERS.keys())
def test_a_command_that_writes_says_when_it_creates_the_database(
    args: tuple[str, ...], code: int, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = cli(*args, "--db", url, stdin=b"", check=False)
    second = cli(*args, "--db", url, stdin=b"", check=False)
    notice = f"created a new ayeto database at {url}"
    assert (first.returncode, first.stderr.splitlines()[0]) == (code, notice)
    assert second.returncode == code
    assert notice not in second.stderr


def test_the_default_database_is_named_as_the_user_would_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AYETO_DATABASE_URL", raising=False)
    result = cli("import", "-", stdin=b"")
    assert result.stderr == (
        "created a new ayeto database at sqlite:///./ayeto.db\nimported 0 conversation(s)\n"
    )


def test_a_scope_no_endpoint_accepts_is_a_warning(sqlite_url: str) -> None:
    _prepare("ready", sqlite_url)
    result = cli("keys", "create", "--user", ALICE, "--scope", "ayeto.files", "--db", sqlite_url)
    assert result.stderr == (
        "warning: no endpoint accepts ayeto.files (the API takes ayeto.conversation or *); "
        "the key is created anyway\n"
    )
    listed = orjson.loads(cli("keys", "list", "--user", ALICE, "--json", "--db", sqlite_url).stdout)
    assert [key["scopes"] for key in listed] == [["ayeto.files"]]


def test_no_keys_is_said_on_stderr_and_json_stays_a_list(sqlite_url: str) -> None:
    _prepare("ready", sqlite_url)
    empty = cli("keys", "list", "--user", ALICE, "--db", sqlite_url)
    assert (empty.stdout, empty.stderr) == ("", "no keys\n")
    as_json = cli("keys", "list", "--user", ALICE, "--json", "--db", sqlite_url)
    assert (as_json.stdout, as_json.stderr) == ("[]\n", "")


def test_keys_list_shows_an_expiry_beyond_any_date(sqlite_url: str) -> None:
    """A value stored before expiries were bounded (`--expires 99999999d`) still lists."""
    _prepare("ready", sqlite_url)
    far = ApiKey(
        id=str(uuid.UUID(int=2)),
        user_id=ALICE,
        name="far",
        scopes=("ayeto.conversation",),
        created_at=1_700_000_000_000,
        expires_at=99_999_999 * 86_400_000,
    )
    store = open_store(sqlite_url)
    try:
        store.add_key(far, digest("ayeto-" + "1" * 64))
    finally:
        store.close()
    table = cli("keys", "list", "--user", ALICE, "--db", sqlite_url).stdout
    row = next(line for line in table.splitlines() if far.id in line)
    assert row.split() == [far.id, ALICE, "far", "ayeto.conversation", "active", "2023-11-14",
                           "22:13:20Z", "after", "9999-12-31", "default"]  # fmt: skip
    listed = orjson.loads(cli("keys", "list", "--user", ALICE, "--json", "--db", sqlite_url).stdout)
    assert listed[0]["expires_at"] == far.expires_at


def _on_a_terminal(columns: int, *args: str) -> str:
    """What `ayeto ARGS` shows on a terminal `columns` wide (a pseudo-terminal), without styles."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "ayeto", *args],
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=os.environ | {"COLUMNS": str(columns), "NO_COLOR": "1"},
            timeout=60,
            check=True,
        )
    finally:
        os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal is closed: everything is read
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert process.stderr == b""
    return re.sub(r"\x1b\[[0-9;]*m", "", output.decode()).replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_keys_list_keeps_every_id_whole_on_a_terminal(sqlite_url: str, columns: int) -> None:
    _prepare("ready", sqlite_url)
    ids = [REVOKED.id] + [
        cli("keys", "create", "--user", user, "--name", "a rather long name for a key", "--db",
            sqlite_url).stdout.splitlines()[0].removeprefix("key id:  ")
        for user in (ALICE, BOB)
    ]  # fmt: skip
    shown = _on_a_terminal(columns, "keys", "list", "--db", sqlite_url)
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= columns
    # A row starts with its id; a cut id would start one too, and differ.
    assert [line.split()[0] for line in lines if re.match(r" ?[0-9a-f]{8}-", line)] == ids
    assert len(lines) == len(ids) + 4  # a blank line, the header, its rule, the rows, a blank line
    revoked = next(line for line in lines if REVOKED.id in line)
    assert "revoked" in revoked.split()


# -- help and version ----------------------------------------------------------------------------


def test_version() -> None:
    assert cli("--version").stdout == f"ayeto {__version__}\n"


COMMANDS = [(), ("serve",), ("demo",), ("keys",), ("keys", "create"), ("keys", "list"),
            ("keys", "revoke"), ("import",), ("export",), ("mirror",)]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) or "ayeto" for c in COMMANDS])
def test_help_shows_flags_as_flags(command: tuple[str, ...]) -> None:
    shown = cli(*command, "--help").stdout
    assert "bool" not in shown
    flags = [flag for flag in ("--help", "--version", "--demo", "--json") if flag in shown]
    assert "--help" in flags
    for flag in flags:
        # A flag is followed by its help (two spaces or more), never by a value's name.
        assert re.search(rf"^  {flag}(  |\n)", shown, re.MULTILINE), shown


PROBE = """
import sys
from ayeto.cli import main
try:
    main()
except SystemExit:
    pass
print(" ".join(sorted({"sqlalchemy", "alembic", "uvicorn", "fastapi"} & set(sys.modules))))
"""


@pytest.mark.parametrize("args", [["--help"], ["keys", "--help"], ["serve", "--help"]])
def test_help_imports_no_database_or_server_library(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == ""

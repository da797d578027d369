"""The operator CLI, run in-process: exact output and exit codes of each command."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ayeto.auth import digest
from ayeto.cli import app
from ayeto.clock import now_ms
from ayeto.store import migrations, open_store
from tests.factories import ALICE, BOB, conversation, message

runner = CliRunner()
KEY = re.compile(r"ayeto-[0-9a-f]{64}")


def run(*args: str, input: str | None = None, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result.stdout, result.stderr


def created(url: str) -> list[str]:
    """The notice a command that writes gives when it creates the database (the PostgreSQL one
    the fixture gives has its schema already; an SQLite file is made by the test's first write)."""
    return [f"created a new ayeto database at {url}"] if url.startswith("sqlite") else []


def test_keys_create_prints_the_key_last_and_stores_only_its_digest(database_url: str) -> None:
    out, _ = run("keys", "create", "--user", ALICE.upper(), "--name", "ci", "--db", database_url)
    lines = out.splitlines()
    key = lines[-1]
    assert KEY.fullmatch(key)
    key_id = lines[0].removeprefix("key id:  ")
    assert lines[1:5] == [
        f"user:    {ALICE}",
        "scopes:  ayeto.conversation",
        "expires: never",
        "limit:   the server default",
    ]
    store = open_store(database_url)
    try:
        stored = store.key_by_digest(digest(key))
    finally:
        store.close()
    assert stored is not None
    assert (stored.id, stored.user_id, stored.name, stored.scopes) == (
        key_id,
        ALICE,
        "ci",
        ("ayeto.conversation",),
    )


def test_keys_create_takes_several_scopes_and_an_expiry(database_url: str) -> None:
    before = now_ms()
    out, _ = run(
        "keys", "create", "--user", ALICE, "--scope", "*", "--scope", "ayeto.files",
        "--expires", "2h", "--db", database_url,
    )  # fmt: skip
    assert out.splitlines()[2] == "scopes:  * ayeto.files"
    listed = orjson.loads(run("keys", "list", "--json", "--db", database_url)[0])
    assert len(listed) == 1
    assert before + 7_200_000 <= listed[0]["expires_at"] <= now_ms() + 7_200_000
    assert listed[0]["scopes"] == ["*", "ayeto.files"]


def test_a_key_may_carry_its_own_rate_limit_shown_by_keys_list(database_url: str) -> None:
    out, _ = run(
        "keys", "create", "--user", ALICE, "--rate-limit", " 20/second;600/minute ",
        "--db", database_url,
    )  # fmt: skip
    assert out.splitlines()[4] == "limit:   20/second;600/minute"
    run("keys", "create", "--user", BOB, "--db", database_url)
    listed = orjson.loads(run("keys", "list", "--json", "--db", database_url)[0])
    assert [(k["user_id"], k["rate_limit"]) for k in listed] == [
        (ALICE, "20/second;600/minute"),
        (BOB, None),
    ]
    table = [
        line for line in run("keys", "list", "--db", database_url)[0].splitlines() if line.strip()
    ]
    assert table[0].split()[-2:] == ["rate", "limit"]
    assert [row.split()[-1] for row in table[2:]] == ["20/second;600/minute", "default"]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2030-01-02T03:04:05Z", 1893553445000),
        ("2030-01-02T03:04:05+01:00", 1893549845000),
        ("2030-01-02", 1893542400000),
    ],
)
def test_keys_create_takes_iso_expiry(database_url: str, when: str, expected: int) -> None:
    run("keys", "create", "--user", ALICE, "--expires", when, "--db", database_url)
    listed = orjson.loads(run("keys", "list", "--json", "--db", database_url)[0])
    assert listed[0]["expires_at"] == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "--user takes a UUID, not 'nobody'"),
        (["--user", ALICE, "--expires", "soon"], "--expires takes 30d, 12h, 90m or an ISO 8601"),
        (["--user", ALICE, "--scope", "a b"], "a scope is one word without spaces, not 'a b'"),
    ],
)
def test_keys_create_refuses_bad_options(database_url: str, args: list[str], message: str) -> None:
    _, err = run("keys", "create", *args, "--db", database_url, code=2)
    assert message in " ".join(err.split())


def test_keys_list_and_revoke(database_url: str) -> None:
    alice_key = run("keys", "create", "--user", ALICE, "--name", "a", "--db", database_url)[0]
    bob_out = run("keys", "create", "--user", BOB, "--name", "b", "--db", database_url)[0]
    bob_id = bob_out.splitlines()[0].removeprefix("key id:  ")
    run("keys", "revoke", alice_key.splitlines()[-1], "--db", database_url)
    run("keys", "revoke", bob_id, "--db", database_url)
    listed = orjson.loads(run("keys", "list", "--json", "--db", database_url)[0])
    assert [(k["user_id"], k["name"], k["status"]) for k in listed] == [
        (ALICE, "a", "revoked"),
        (BOB, "b", "revoked"),
    ]
    assert all(k["revoked_at"] is not None for k in listed)
    only_bob = orjson.loads(run("keys", "list", "--user", BOB, "--json", "--db", database_url)[0])
    assert [k["id"] for k in only_bob] == [bob_id]
    table = run("keys", "list", "--db", database_url)[0]
    assert bob_id in table
    assert not KEY.search(table)
    _, err = run("keys", "revoke", "no-such-key", "--db", database_url, code=1)
    assert err == "error: no such key\n"
    revoked_at = listed[1]["revoked_at"]
    _, err = run("keys", "revoke", bob_id, "--db", database_url, code=1)
    when = datetime.fromtimestamp(revoked_at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    assert err == f"error: key {bob_id} was already revoked at {when}\n"
    again = orjson.loads(run("keys", "list", "--user", BOB, "--json", "--db", database_url)[0])
    assert again[0]["revoked_at"] == revoked_at


def test_migrate_creates_the_schema_once_and_says_its_revision(database_url: str) -> None:
    at = f"the ayeto database at {database_url} is at schema revision {migrations.HEAD}"
    assert run("migrate", "--db", database_url) == (
        "",
        "\n".join([*created(database_url), at]) + "\n",
    )
    assert run("migrate", "--db", database_url) == ("", at + "\n")
    # A command that only reads now finds the database.
    assert run("keys", "list", "--db", database_url) == ("", "no keys\n")


def test_import_then_export(database_url: str, tmp_path: Path) -> None:
    documents = [
        conversation(ALICE, name="Ünïcödé 😀", messages=[message(2), message(1)]),
        conversation(BOB),
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(orjson.dumps(d) for d in documents))
    _, err = run("import", str(source), "--db", database_url)
    assert err.splitlines() == [*created(database_url), "imported 2 conversation(s)"]
    out, err = run("export", "--user", ALICE, "--db", database_url)
    assert err.strip() == "exported 1 conversation(s)"
    expected = documents[0] | {
        "messages": sorted(documents[0]["messages"], key=lambda m: m["timestamp"])
    }
    assert [orjson.loads(line) for line in out.splitlines()] == [expected]


def test_import_from_stdin(database_url: str) -> None:
    _, err = run("import", "-", "--db", database_url, input=orjson.dumps(conversation()).decode())
    assert err.splitlines() == [*created(database_url), "imported 1 conversation(s)"]


def test_import_refuses_a_file_with_an_invalid_record(database_url: str, tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    good = orjson.dumps(conversation()).decode()
    source.write_text(f"{good}\n{{not json\n{good}\n")
    _, err = run("import", str(source), "--db", database_url, code=1)
    lines = err.splitlines()[len(created(database_url)) :]
    assert lines[0].startswith("line 2: ")
    assert lines[1:] == ["error: 1 invalid record(s); nothing was imported"]
    out, _ = run("export", "--db", database_url)
    assert out == ""


def test_import_of_a_missing_file_is_a_clear_error(sqlite_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    _, err = run("import", str(missing), "--db", sqlite_url, code=2)
    assert err == f"error: cannot read '{missing}': No such file or directory\n"
    assert sorted(tmp_path.iterdir()) == []  # found before the database is created


def test_an_unusable_database_url_is_a_clear_error() -> None:
    _, err = run("keys", "list", "--db", "mysql://somewhere/db", code=2)
    assert err == (
        "error: --db: 'mysql' is not supported; use sqlite:///PATH or postgresql://USER@HOST/NAME\n"
    )

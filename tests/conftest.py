from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ayeto.store import Store, open_store
from tests.processes import LOAD_ENV

REDIS_SERVER = os.environ.get("AYETO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_SERVER = os.environ.get(
    "AYETO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TABLES = "conversations, messages, api_keys, mirror_state, job_runs, web_sessions"


def _admin_conninfo() -> str:
    return make_url(POSTGRES_SERVER).set(drivername="postgresql").render_as_string(False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, for this test session; dropped afterwards.

    Under CI a server that cannot be reached fails the run; elsewhere its tests are skipped.
    """
    admin = _admin_conninfo()
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unreachable(f"PostgreSQL at {POSTGRES_SERVER}", str(exc))
    name = f"ayeto_test_{uuid.uuid4().hex[:12]}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        url = make_url(POSTGRES_SERVER).set(drivername="postgresql", database=name)
        rendered = url.render_as_string(hide_password=False)
        open_store(rendered).close()  # migrate once; tests start from empty tables
        try:
            yield rendered
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def unreachable(what: str, message: str) -> NoReturn:
    """Under CI a service that cannot be reached fails the run; elsewhere its tests are skipped."""
    unavailable(f"{what} is not reachable: {message}")


def unavailable(reason: str) -> NoReturn:
    """Under CI what a test needs must be there, or the run fails; elsewhere the test is skipped."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the rate-limit tests share counts through (keys are unique to each test)."""
    address = make_url(REDIS_SERVER)
    try:
        with socket.create_connection((address.host or "127.0.0.1", address.port or 6379), 2) as c:
            c.sendall(b"PING\r\n")
            answer = c.recv(64)
    except OSError as exc:
        unreachable(f"Redis at {REDIS_SERVER}", str(exc))
    if not answer.startswith(b"+PONG"):
        unreachable(f"Redis at {REDIS_SERVER}", repr(answer))
    return REDIS_SERVER


def empty_postgres(url: str) -> str:
    """`url`'s database with every table emptied."""
    with psycopg.connect(url, autocommit=True) as connection:
        # A store a test left open would block this forever; fail the next test instead.
        connection.execute("SET lock_timeout = '10s'")
        connection.execute(f"TRUNCATE {TABLES}")
    return url


@pytest.fixture
def bare_postgres(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database without ayeto's schema, on the server of `postgres_url`."""
    name = f"ayeto_bare_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ayeto.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for one test: every store and API test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ayeto.db'}"
    return empty_postgres(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def load_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of servers that prove something under load (`processes.LOAD_ENV`)."""
    for name, value in LOAD_ENV.items():
        monkeypatch.setenv(name, value)


def at_revision(url: str, revision: str, documents: list[dict[str, Any]]) -> None:
    """`url`'s database migrated to `revision` (older than 0007), holding `documents` as the
    store of that revision wrote them: the same rows, but no `messages_json`."""
    from alembic import command

    from ayeto.store import SqlStore, dialects, migrations, sql

    readers, writer, inline, dialect = dialects.create(url)
    with writer.begin() as connection:
        command.upgrade(migrations.config(connection), revision)
    row = sql._row
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            sql,
            "_row",
            lambda document, thread: {
                name: value
                for name, value in row(document, thread).items()
                if name != "messages_json"
            },
        )
        old = SqlStore(readers, dialect, writer, inline=inline)
        try:
            old.upsert(documents)
        finally:
            old.close()

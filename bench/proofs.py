"""What bench/crashes.py and bench/load.py share: their servers' environment, the databases they
run on, and the head of their reports."""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

import run

# Both run the suite's own harnesses (in tests/): the bench proves what the tests prove, at scale.
sys.path.insert(0, str(run.ROOT))
from tests.processes import LOAD_ENV

POSTGRES_SERVER = os.environ.get(
    "AYETO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def lift_limits() -> None:
    """The environment of the servers these scripts start, as the suite's."""
    os.environ.update(LOAD_ENV)


def databases(postgres: bool) -> Iterator[tuple[str, str]]:
    """(name, URL) of a fresh SQLite database, then of a fresh PostgreSQL one if `postgres`; each is
    removed when the loop moves on."""
    with tempfile.TemporaryDirectory() as directory:
        yield "SQLite", f"sqlite:///{Path(directory) / 'ayeto.db'}"
    if postgres:
        with postgres_database() as url:
            yield "PostgreSQL", url


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards."""
    admin = make_url(POSTGRES_SERVER).set(drivername="postgresql")
    name = f"ayeto_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def publish(title: str, load_before: float, body: list[str], record: bool) -> None:
    """Print the report `body` under a head naming the time, commit and machine; append it to
    RESULTS.md if `record`."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        f"## {now} — {title}, commit {run.commit()}",
        "",
        f"- Machine: {run.machine()}; load average {load_before:.2f} when the run started "
        "(anything else running skews the figures)",
    ]
    report = "\n".join(head + body) + "\n"
    print(report)
    if record:
        run.record(report)

"""The schema: migrations match the tables, writes are durable, queries stay owner-bound."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ayeto.config import ConnectionOptions
from ayeto.query import SORTABLE, parse_query
from ayeto.store import SqlStore, Store, migrations, open_store
from ayeto.store.dialects import PostgreSQL
from ayeto.store.schema import metadata
from tests.conftest import empty_postgres
from tests.factories import ALICE


def _sql_store(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


def test_the_migrations_create_exactly_the_declared_schema(store: Store) -> None:
    with _sql_store(store).engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": migrations.include_object}
        )
        assert compare_metadata(context, metadata) == []
        assert migrations.is_current(connection)


def test_head_names_the_newest_migration_script() -> None:
    assert migrations.scripts_head() == migrations.HEAD


def test_opening_a_current_database_reads_its_revision_without_alembic(
    database_url: str, store: Store
) -> None:
    # `store` has created the schema: opening it again finds nothing to do.
    code = (
        "import sys; from ayeto.store import open_store; "
        f"open_store({database_url!r}).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout == "[]\n"


def test_a_migration_is_not_bound_by_the_statement_timeout(bare_postgres: str) -> None:
    # Another process holds the migration lock (it is migrating a large database) for far
    # longer than the statement timeout: this one waits at the lock, then finds the schema to
    # create, instead of failing on the timeout meant for requests' queries.
    held, release = threading.Event(), threading.Event()

    def migrating_elsewhere() -> None:
        with psycopg.connect(bare_postgres, autocommit=True) as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (PostgreSQL.migration_lock,))
            held.set()
            release.wait(10)

    other = threading.Thread(target=migrating_elsewhere)
    other.start()
    try:
        assert held.wait(10)
        threading.Timer(1.5, release.set).start()
        store = open_store(bare_postgres, ConnectionOptions(statement_timeout_ms=200))
        store.close()
    finally:
        release.set()
        other.join()
    with psycopg.connect(bare_postgres) as connection:
        found = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert found == [(migrations.HEAD,)]


def test_opening_again_is_a_no_op_and_the_store_is_ready(database_url: str, store: Store) -> None:
    again = open_store(database_url)
    try:
        assert again.is_ready()
    finally:
        again.close()
    assert store.is_ready()


def test_sqlite_keeps_acknowledged_writes(sqlite_url: str) -> None:
    store = _sql_store(open_store(sqlite_url))
    with store.engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys")
        }
    store.close()
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}


QUERIES = [
    {},
    {"filters": [["model", "==", "gpt-4o"]]},
    {"filters": [["assistant_id", "==", "123e4567-e89b-12d3-a456-426614174000"]]},
    {"filters": [["messages.content", "regex", "x"]], "sort_key": "name"},
    {"filters": [["messages.role", "!=", "user"]], "limit_from": 5, "limit_to": 10},
    {"filters": [["id", "==", "550e8400-e29b-41d4-a716-446655440000"]]},
    *({"sort_key": key, "sort_order": 1} for key in SORTABLE),
]


@pytest.mark.parametrize("body", QUERIES)
def test_every_find_reads_through_an_owner_leading_index_on_sqlite(
    sqlite_url: str, body: dict[str, object]
) -> None:
    store = _sql_store(open_store(sqlite_url))
    compiled = store.page_statement(ALICE, parse_query(body)).compile(store.engine)
    assert compiled.positiontup is not None
    parameters = tuple(compiled.params[name] for name in compiled.positiontup)
    with store.engine.connect() as connection:
        explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters)
        plan = [row[3] for row in explained]
    store.close()
    reads = [step for step in plan if step.startswith(("SCAN", "SEARCH"))]
    assert reads, plan
    for step in reads:
        assert step.startswith("SEARCH"), plan
        assert "(owner_id=?" in step, plan


def _scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "Scan" in node["Node Type"]:
        yield node
    for child in node.get("Plans", []):
        yield from _scans(child)


@pytest.mark.parametrize("body", QUERIES)
def test_every_find_reads_through_an_owner_leading_index_on_postgres(
    postgres_url: str, body: dict[str, object]
) -> None:
    store = _sql_store(open_store(empty_postgres(postgres_url)))
    statement = store.page_statement(ALICE, parse_query(body))
    sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        # On tables this small a sequential scan is cheapest; forbid it to see which index the
        # planner would take. Without an owner-leading one, it would have to scan anyway.
        connection.exec_driver_sql("SET enable_seqscan = off")
        plan = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}").scalar_one()
    store.close()
    scans = list(_scans(plan[0]["Plan"]))
    assert scans, plan
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"), plan
        assert "owner_id = " in scan["Index Cond"], plan


def test_a_database_of_revision_0001_is_upgraded_and_its_keys_keep_the_default_limit(
    sqlite_url: str,
) -> None:
    from alembic import command
    from sqlalchemy import create_engine, insert

    from ayeto.store.schema import api_keys

    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        command.upgrade(migrations.config(connection), "0001")
        # Only the columns revision 0001 has.
        connection.execute(
            insert(api_keys).values(
                id="k", digest="d", user_id=ALICE, name="", scopes="*", created_at=1
            )
        )
    engine.dispose()
    store = open_store(sqlite_url)
    try:
        key = store.key_by_digest("d")
    finally:
        store.close()
    assert key is not None
    assert (key.id, key.rate_limit) == ("k", None)

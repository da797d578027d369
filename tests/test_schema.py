"""The schema: migrations match the tables, writes are durable, queries stay owner-bound."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ayeto.query import SORTABLE, parse_query
from ayeto.store import SqlStore, Store, migrations, open_store
from ayeto.store.schema import metadata
from tests.factories import ALICE


def _sql_store(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


def test_the_migrations_create_exactly_the_declared_schema(store: Store) -> None:
    with _sql_store(store).engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert migrations.is_current(connection)


def test_opening_again_is_a_no_op_and_the_store_is_ready(database_url: str, store: Store) -> None:
    again = open_store(database_url)
    try:
        assert again.is_ready()
    finally:
        again.close()
    assert store.is_ready()


def test_sqlite_keeps_acknowledged_writes(store: Store) -> None:
    with _sql_store(store).engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys")
        }
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
def test_every_find_reads_through_an_owner_leading_index(
    store: Store, body: dict[str, object]
) -> None:
    sql_store = _sql_store(store)
    statement = sql_store.page_statement(ALICE, parse_query(body))
    compiled = statement.compile(sql_store.engine)
    assert compiled.positiontup is not None
    parameters = tuple(compiled.params[name] for name in compiled.positiontup)
    with sql_store.engine.connect() as connection:
        explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", parameters)
        plan = [row[3] for row in explained]
    reads = [step for step in plan if step.startswith(("SCAN", "SEARCH"))]
    assert reads, plan
    for step in reads:
        assert step.startswith("SEARCH"), plan
        assert "(owner_id=?" in step, plan

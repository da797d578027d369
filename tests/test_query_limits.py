"""What bounds a query: a statement beyond the database's own limits is the query's fault (400,
never 503), and the statements kept per query shape stay within their caches' bounds."""

from __future__ import annotations

import pytest

from ayeto.errors import BadRequest
from ayeto.query import FIELDS, MAX_FILTERS, Condition, Op, Query
from ayeto.store import SqlStore, Store
from ayeto.store.dialects import STATEMENT_CACHE
from ayeto.store.sql import _SHAPES
from tests.factories import ALICE

# Far more message filters than the parser accepts (a Query built directly gets past it): the
# error must stay a 400 whatever the parser's limit becomes.
TOO_MANY = 10_000
TOO_COMPLEX = {
    "sqlite": "the query is too complex: Expression tree is too large (maximum depth 1000)",
    "postgresql": "the query is too complex: stack depth limit exceeded",
}


def test_a_statement_beyond_the_database_limits_is_a_bad_request(store: Store) -> None:
    assert isinstance(store, SqlStore)
    content = FIELDS["messages.content"]
    query = Query(conditions=tuple(Condition(content, Op.EQ, f"x{i}") for i in range(TOO_MANY)))
    with pytest.raises(BadRequest) as refused:
        list(store.find(ALICE, query))
    assert refused.value.detail == TOO_COMPLEX[store.dialect.name]


def shape(number: int) -> Query:
    """A query of its own shape for each `number`: the operators spell its bits."""
    ops = [Op.EQ if number >> bit & 1 else Op.NE for bit in range(MAX_FILTERS)]
    return Query(conditions=tuple(Condition(FIELDS["name"], op, "a") for op in ops))


def test_the_statement_caches_stay_bounded(store: Store) -> None:
    assert isinstance(store, SqlStore)
    for number in range(2 * STATEMENT_CACHE):
        assert list(store.find(ALICE, shape(number))) == []
    # The store keeps exactly its capacity of shapes, the most recent ones.
    assert store._page_of_shape.cache_info().currsize == _SHAPES
    if store._driver_statement is not None:
        # SQLite's driver runs them, each compiled once: its cache of them fills to its bound
        # and no further.
        compiled_for_driver = store._driver_statement.cache_info()
        assert compiled_for_driver.currsize == compiled_for_driver.maxsize == 2 * _SHAPES + 8
        return
    # SQLAlchemy's cache prunes back to its capacity once it holds half as many again.
    compiled = store.engine._compiled_cache
    assert compiled is not None
    assert STATEMENT_CACHE <= len(compiled) <= STATEMENT_CACHE * 3 // 2

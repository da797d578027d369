"""`Store.delete_matching`: exactly the conversations `find` would return, deleted with their
messages in one transaction, on the dataset of test_store_find (ALICE's A1..A5, BOB's B1, B2, and
the creatorless N1)."""

from __future__ import annotations

from typing import Any

import pytest

from ayeto.errors import MatchesChanged
from ayeto.query import parse_query
from ayeto.store import Store
from tests.factories import ALICE, BOB
from tests.test_store_find import (
    A1,
    A2,
    A3,
    A4,
    A5,
    B1,
    B2,
    DATASET,
    MSG2,
    N1,
    ORG_X,
    UNKNOWN,
    filled,
    message_count,
)

__all__ = ["filled"]  # the fixture, used by name
EVERYONE = [A1, A2, A3, A4, A5, B1, B2, N1]
# Messages per conversation in DATASET.
MESSAGES = {A1: 2, A2: 0, A3: 1, A4: 1, A5: 1, B1: 1, B2: 0, N1: 1}


def stored(store: Store) -> list[str]:
    return sorted(document["id"] for document in store.export())


def query(*filters: list[Any], **rest: Any) -> Any:
    return parse_query({"filters": list(filters), **rest})


@pytest.mark.parametrize(
    ("owner", "filters", "expected"),
    [
        (ALICE, [["model", "==", "gpt-4o"]], [A1, A3, A5]),
        (ALICE, [["organization_id", "==", None]], [A2, A4]),
        (ALICE, [["updated.timestamp", "<", 500]], [A2, A4]),
        (ALICE, [["model", "==", "gpt-4o"], ["organization_id", "==", ORG_X]], [A1, A5]),
        # Message filters; a regex the search index narrows (a literal) and one it cannot.
        (ALICE, [["messages.content", "regex", "Hello"]], [A1, A5]),
        (ALICE, [["messages.content", "regex", "(?i)^hel+o$"]], [A4]),
        (ALICE, [["messages.id", "==", MSG2]], [A1]),
        (ALICE, [["messages.role", "!=", "user"]], [A2, A4, A5]),
        (ALICE, [["name", "regex", "^a"]], [A2, A5]),
        (ALICE, [["name", "==", "nobody has it"]], []),
        (ALICE, [], [A1, A2, A3, A4, A5]),
        (BOB, [["model", "==", "gpt-4o"]], [B1, B2]),
        # Every owner's, the creatorless N1 included.
        (None, [["messages.content", "regex", "Hello world"]], [A1, A5, B1, N1]),
        (None, [["organization_id", "==", ORG_X]], [A1, A5, B1, N1]),
        (None, [["updated.timestamp", ">=", 700]], [B1, B2, N1]),
        (None, [], EVERYONE),
    ],
)
def test_deletes_exactly_what_matches_with_its_messages(
    filled: Store, owner: str | None, filters: list[list[Any]], expected: list[str]
) -> None:
    assert filled.delete_matching(owner, query(*filters)) == expected
    assert stored(filled) == [id_ for id_ in EVERYONE if id_ not in expected]
    for id_ in EVERYONE:
        assert message_count(filled, id_) == (0 if id_ in expected else MESSAGES[id_]), id_


def test_sort_and_slice_are_ignored(filled: Store) -> None:
    sliced = query(["model", "==", "gpt-4o"], sort_key="name", limit_from=1, limit_to=2)
    assert filled.delete_matching(ALICE, sliced) == [A1, A3, A5]
    assert stored(filled) == [A2, A4, B1, B2, N1]


def test_dry_run_deletes_nothing(filled: Store) -> None:
    assert filled.delete_matching(None, query(["model", "==", "gpt-4o"]), dry_run=True) == [
        A1,
        A3,
        A5,
        B1,
        B2,
        N1,
    ]
    assert stored(filled) == EVERYONE
    assert message_count(filled, A1) == 2


@pytest.mark.parametrize("expect", [0, 2, 4])
def test_another_count_than_expected_deletes_nothing(filled: Store, expect: int) -> None:
    with pytest.raises(MatchesChanged) as caught:
        filled.delete_matching(ALICE, query(["model", "==", "gpt-4o"]), expect=expect)
    assert caught.value.count == 3
    assert caught.value.status_code == 409
    assert caught.value.detail == (
        f"3 conversations match now, not the {expect} counted before; nothing was deleted"
    )
    assert stored(filled) == EVERYONE
    assert message_count(filled, A1) == 2


def test_the_expected_count_deletes(filled: Store) -> None:
    assert filled.delete_matching(ALICE, query(["model", "==", "gpt-4o"]), expect=3) == [
        A1,
        A3,
        A5,
    ]
    assert stored(filled) == [A2, A4, B1, B2, N1]


def test_an_id_filter_of_another_owner_deletes_nothing(filled: Store) -> None:
    assert filled.delete_matching(ALICE, query(["id", "==", B1])) == []
    assert filled.delete_matching(ALICE, query(["id", "==", UNKNOWN])) == []
    assert stored(filled) == EVERYONE


def test_a_second_run_finds_nothing_left(filled: Store) -> None:
    assert filled.delete_matching(ALICE, query(["name", "regex", "^a"])) == [A2, A5]
    assert filled.delete_matching(ALICE, query(["name", "regex", "^a"])) == []
    assert len(DATASET) - len(stored(filled)) == 2

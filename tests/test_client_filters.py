"""The client's filter language: its names are the server's, and `F` builds the spec's triples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import get_args
from uuid import UUID

import pytest

from ayeto.client import F, Filter, FilterField, Operator, SortKey
from ayeto.client.filters import encode_value
from ayeto.query import FIELDS, OPERATORS, SORTABLE

ID = "550e8400-e29b-41d4-a716-446655440000"


def test_the_names_are_the_servers() -> None:
    assert get_args(FilterField) == tuple(FIELDS)
    assert get_args(SortKey) == SORTABLE
    assert get_args(Operator) == tuple(OPERATORS)


BUILT = [
    (F.model == "gpt-4o", ("model", "==", "gpt-4o")),
    (F.name.regex("(?i)python"), ("name", "regex", "(?i)python")),
    (F.name != "x", ("name", "!=", "x")),
    (F.summary < "m", ("summary", "<", "m")),
    (F.img_gen_model >= "d", ("img_gen_model", ">=", "d")),
    (F.id == UUID(ID), ("id", "==", UUID(ID))),
    (F.organization_id.is_null(), ("organization_id", "==", None)),
    (F.assistant_id.is_set(), ("assistant_id", "!=", None)),
    (F.created.user_id == ID, ("created.user_id", "==", ID)),
    (F.created.timestamp > 1, ("created.timestamp", ">", 1)),
    (F.updated.timestamp <= 2, ("updated.timestamp", "<=", 2)),
    (F.updated.user_id.regex("^55"), ("updated.user_id", "regex", "^55")),
    (F.accessed.timestamp < 3, ("accessed.timestamp", "<", 3)),
    (F.accessed.user_id == None, ("accessed.user_id", "==", None)),  # noqa: E711
    (F.messages.id == ID, ("messages.id", "==", ID)),
    (F.messages.role == "tool", ("messages.role", "==", "tool")),
    (F.messages.content.regex("kubernetes"), ("messages.content", "regex", "kubernetes")),
    (F.messages.reasoning_content.is_null(), ("messages.reasoning_content", "==", None)),
    (F.messages.model != "o3", ("messages.model", "!=", "o3")),
    (F.messages.timestamp >= 4, ("messages.timestamp", ">=", 4)),
]


@pytest.mark.parametrize(("built", "triple"), BUILT)
def test_builder(built: Filter, triple: tuple[str, str, object]) -> None:
    assert isinstance(built, Filter)
    assert tuple(built) == triple


def test_builder_names_every_field() -> None:
    assert sorted({built.field for built, _ in BUILT}) == sorted(FIELDS)


@pytest.mark.parametrize(
    ("when", "milliseconds"),
    [
        (datetime(2025, 1, 1, tzinfo=UTC), 1_735_689_600_000),
        (datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), 1_735_689_600_000),
        (datetime(2025, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC), 1_735_689_600_999),
        (datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC), -1),
    ],
)
def test_datetimes_become_milliseconds(when: datetime, milliseconds: int) -> None:
    assert encode_value(when) == milliseconds


def test_a_field_compares_only_with_values() -> None:
    with pytest.raises(TypeError, match="cannot compare a field with list"):
        _ = F.model == ["gpt-4o"]
    with pytest.raises(TypeError, match="a filter value is a string"):
        encode_value(True)

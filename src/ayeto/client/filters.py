"""The filter language of `find`, typed: field and operator names, and the `F` builder.

`F.model == "gpt-4o"` is the triple `("model", "==", "gpt-4o")` the API takes; a plain triple
works as well. Datetimes become milliseconds since the epoch and UUIDs their text, as the API wants.
The names below are the server's own (a test holds them equal to its field registry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal, NamedTuple, TypeAlias
from uuid import UUID

# Every field a `find` may sort by: all but the messages' ones.
SortKey: TypeAlias = Literal[
    "id",
    "name",
    "model",
    "img_gen_model",
    "summary",
    "organization_id",
    "assistant_id",
    "created.user_id",
    "created.timestamp",
    "updated.user_id",
    "updated.timestamp",
    "accessed.user_id",
    "accessed.timestamp",
]
# Every field a filter may name.
FilterField: TypeAlias = Literal[
    SortKey,
    "messages.id",
    "messages.role",
    "messages.content",
    "messages.reasoning_content",
    "messages.model",
    "messages.timestamp",
]
Operator: TypeAlias = Literal["==", "!=", "<", ">", "<=", ">=", "regex"]
# 0 ascending, 1 descending.
SortOrder: TypeAlias = Literal[0, 1]
# What a filter may compare with; `encode_value` turns it into what the API takes.
FilterValue: TypeAlias = str | int | UUID | datetime | None


class Filter(NamedTuple):
    """One `[field, operator, value]` condition of `find`."""

    field: FilterField
    op: Operator
    value: FilterValue


def encode_value(value: FilterValue) -> str | int | None:
    """The JSON value the API takes for `value`: a datetime in milliseconds, a UUID as text."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"a filter's datetime must be timezone-aware, got {value!r}")
        # Whole milliseconds, without the float rounding of timestamp() * 1000.
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bool):
        raise TypeError("a filter value is a string, an integer, a UUID, a datetime or None")
    return value


_EPOCH: Final = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


class _Field:
    """A field of a filter; comparing it makes a `Filter`."""

    __slots__ = ("name",)

    def __init__(self, name: FilterField) -> None:
        self.name: FilterField = name

    def __repr__(self) -> str:
        return f"F.{self.name}"

    # A field compared is a condition, not a bool (as in SQLAlchemy's column expressions).
    def __eq__(self, value: object) -> Filter:  # type: ignore[override]
        return Filter(self.name, "==", _checked(value))

    def __ne__(self, value: object) -> Filter:  # type: ignore[override]
        return Filter(self.name, "!=", _checked(value))

    __hash__ = object.__hash__

    def is_null(self) -> Filter:
        return Filter(self.name, "==", None)

    def is_set(self) -> Filter:
        return Filter(self.name, "!=", None)


def _checked(value: object) -> FilterValue:
    if value is None or isinstance(value, str | int | UUID | datetime):
        return value
    raise TypeError(f"cannot compare a field with {type(value).__name__}")


class _Ordered(_Field):
    __slots__ = ()

    def __lt__(self, value: object) -> Filter:
        return Filter(self.name, "<", _checked(value))

    def __gt__(self, value: object) -> Filter:
        return Filter(self.name, ">", _checked(value))

    def __le__(self, value: object) -> Filter:
        return Filter(self.name, "<=", _checked(value))

    def __ge__(self, value: object) -> Filter:
        return Filter(self.name, ">=", _checked(value))


class TextField(_Ordered):
    """A string or UUID field: compared, or searched with an RE2 pattern."""

    __slots__ = ()

    def regex(self, pattern: str) -> Filter:
        """An RE2 pattern found anywhere in the value; `(?i)` makes it case-insensitive."""
        return Filter(self.name, "regex", pattern)


class TimestampField(_Ordered):
    """A timestamp: integer milliseconds since the epoch, or a timezone-aware datetime."""

    __slots__ = ()


class _Meta:
    """`created`, `updated`, `accessed`: who and when."""

    def __init__(self, user_id: FilterField, timestamp: FilterField) -> None:
        self.user_id = TextField(user_id)
        self.timestamp = TimestampField(timestamp)


class _Messages:
    """`messages.*`: a conversation matches when any of its messages does (`!=`: none is equal)."""

    def __init__(self) -> None:
        self.id = TextField("messages.id")
        self.role = TextField("messages.role")
        self.content = TextField("messages.content")
        self.reasoning_content = TextField("messages.reasoning_content")
        self.model = TextField("messages.model")
        self.timestamp = TimestampField("messages.timestamp")


class _Fields:
    """Every field `find` can filter on, by its API name: `F.created.timestamp` is
    `created.timestamp`."""

    def __init__(self) -> None:
        self.id = TextField("id")
        self.name = TextField("name")
        self.model = TextField("model")
        self.img_gen_model = TextField("img_gen_model")
        self.summary = TextField("summary")
        self.organization_id = TextField("organization_id")
        self.assistant_id = TextField("assistant_id")
        self.created = _Meta("created.user_id", "created.timestamp")
        self.updated = _Meta("updated.user_id", "updated.timestamp")
        self.accessed = _Meta("accessed.user_id", "accessed.timestamp")
        self.messages = _Messages()


F: Final = _Fields()

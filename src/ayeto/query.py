"""The filter language of `find`: parse and validate a `DbParams` body into a typed `Query`.

Nothing here knows SQL. Field names and operators come from the two tables below; the store maps
each `Field.column` to a column of its own and each `Op` to an SQL expression.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import orjson

from ayeto.errors import BadRequest
from ayeto.models import INT64_MAX, INT64_MIN, UUID_PATTERN
from ayeto.patterns import PatternError, compile_pattern
from ayeto.pg_regex import to_postgres

_UUID_TEXT = re.compile(UUID_PATTERN)


def parse_uuid(text: str) -> str | None:
    """The canonical lowercase form of a UUID written in any case, or None if `text` is not one."""
    return text.lower() if _UUID_TEXT.fullmatch(text) else None


class Kind(StrEnum):
    STRING = "string"
    UUID = "UUID"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind
    nullable: bool
    column: str
    on_message: bool = False


# Every field a filter or sort may name. `column` is the column in the conversations table, or in
# the messages table for message fields; it is the only way a name reaches SQL.
FIELDS: Final[dict[str, Field]] = {
    f.name: f
    for f in (
        Field("id", Kind.UUID, False, "id"),
        Field("name", Kind.STRING, False, "name"),
        Field("model", Kind.STRING, False, "model"),
        Field("img_gen_model", Kind.STRING, False, "img_gen_model"),
        Field("summary", Kind.STRING, False, "summary"),
        Field("organization_id", Kind.UUID, True, "organization_id"),
        Field("assistant_id", Kind.UUID, True, "assistant_id"),
        Field("created.user_id", Kind.UUID, True, "owner_id"),
        Field("created.timestamp", Kind.TIMESTAMP, False, "created_at"),
        Field("updated.user_id", Kind.UUID, True, "updated_by"),
        Field("updated.timestamp", Kind.TIMESTAMP, False, "updated_at"),
        Field("accessed.user_id", Kind.UUID, True, "accessed_by"),
        Field("accessed.timestamp", Kind.TIMESTAMP, False, "accessed_at"),
        Field("messages.id", Kind.UUID, False, "id", on_message=True),
        Field("messages.role", Kind.STRING, False, "role", on_message=True),
        Field("messages.content", Kind.STRING, True, "content", on_message=True),
        Field("messages.reasoning_content", Kind.STRING, True, "reasoning_content", True),
        Field("messages.model", Kind.STRING, True, "model", on_message=True),
        Field("messages.timestamp", Kind.TIMESTAMP, False, "timestamp", on_message=True),
    )
}
SORTABLE: Final[tuple[str, ...]] = tuple(name for name, f in FIELDS.items() if not f.on_message)
DEFAULT_SORT: Final = FIELDS["updated.timestamp"]


class Op(StrEnum):
    EQ = "=="
    NE = "!="
    LT = "<"
    GT = ">"
    LE = "<="
    GE = ">="
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class OpRule:
    kinds: frozenset[Kind]
    takes_null: bool
    summary: str


_ANY_KIND = frozenset(Kind)
# One row per operator: which field kinds it applies to, whether `null` is a valid value, and the
# sentence the docs show for it.
OPERATORS: Final[dict[Op, OpRule]] = {
    Op.EQ: OpRule(_ANY_KIND, True, "equals; `null` means the field is null"),
    Op.NE: OpRule(_ANY_KIND, True, "differs (a null field differs from any value); `null`: is set"),
    Op.LT: OpRule(_ANY_KIND, False, "less than; never matches a null field"),
    Op.GT: OpRule(_ANY_KIND, False, "greater than; never matches a null field"),
    Op.LE: OpRule(_ANY_KIND, False, "less than or equal; never matches a null field"),
    Op.GE: OpRule(_ANY_KIND, False, "greater than or equal; never matches a null field"),
    Op.REGEX: OpRule(
        frozenset({Kind.STRING, Kind.UUID}), False, "RE2 pattern found anywhere in the value"
    ),
}

Value = str | int | None


@dataclass(frozen=True, slots=True)
class Condition:
    field: Field
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class Query:
    """The matches of all `conditions` (and of at least one of `any_of`, when it has any),
    sorted, sliced to `[offset, offset + limit)`.

    `any_of` serves the web view's search (a text in the name or in any message); the API's
    filter language has no "or", so `parse_query` never sets it.
    """

    conditions: tuple[Condition, ...] = ()
    sort: Field = DEFAULT_SORT
    descending: bool = True
    offset: int = 0
    limit: int | None = None
    any_of: tuple[Condition, ...] = ()


PARAMS: Final = ("sort_key", "sort_order", "limit_from", "limit_to", "filters")
# Every filter is a clause of one SQL statement, and every regex a pattern run on every row it
# reaches: without bounds, a single request can exhaust the database's parser, its stack, or
# the server's time. No real search needs more than these.
MAX_FILTERS: Final = 50
MAX_PATTERNS_TOTAL: Final = 4000


def parse_query(body: object) -> Query:
    """Validate a decoded `find` body (None if absent); BadRequest says what is wrong and where."""
    if body is None:
        return Query()
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {_json_type(body)}")
    unknown = [key for key in body if key not in PARAMS]
    if unknown:
        raise BadRequest(
            f"unknown key {unknown[0]!r} in request body (allowed: {', '.join(PARAMS)})"
        )

    # A null value means "not given", as clients that serialize their unset fields send it.
    sort_key = body.get("sort_key")
    sort_order = body.get("sort_order")
    if sort_key is None:
        sort = DEFAULT_SORT
    elif not isinstance(sort_key, str):
        raise BadRequest(f"sort_key must be a string, got {_json_type(sort_key)}")
    elif sort_key not in FIELDS:
        raise BadRequest(f"sort_key: unknown field {short(sort_key)}")
    elif FIELDS[sort_key].on_message:
        raise BadRequest(f"sort_key: cannot sort by {short(sort_key)}, a message field")
    else:
        sort = FIELDS[sort_key]
    if sort_order is None:
        descending = sort_key is None
    elif _integer(sort_order) in (0, 1):
        descending = sort_order == 1
    else:
        raise BadRequest(
            f"sort_order must be 0 (ascending) or 1 (descending), got {short(sort_order)}"
        )

    offset = _limit(body, "limit_from")
    end = _limit(body, "limit_to")
    if end is not None and end < (offset or 0):
        raise BadRequest(f"limit_to ({end}) must not be less than limit_from ({offset or 0})")

    return Query(
        conditions=_conditions(body.get("filters")),
        sort=sort,
        descending=descending,
        offset=offset or 0,
        limit=None if end is None else end - (offset or 0),
    )


def _limit(body: dict[str, object], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    number = _integer(value)
    if number is None or not 0 <= number <= INT64_MAX:
        raise BadRequest(f"{key} must be an integer from 0 to {INT64_MAX}, got {short(value)}")
    return number


def _conditions(filters: object) -> tuple[Condition, ...]:
    if filters is None:
        return ()
    if not isinstance(filters, list):
        raise BadRequest(
            f"filters must be an array of [field, operator, value], got {short(filters)}"
        )
    if len(filters) > MAX_FILTERS:
        raise BadRequest(f"filters: at most {MAX_FILTERS} filters, got {len(filters)}")
    conditions = tuple(_condition(i, item) for i, item in enumerate(filters))
    total = sum(len(c.value) for c in conditions if c.op is Op.REGEX and isinstance(c.value, str))
    if total > MAX_PATTERNS_TOTAL:
        raise BadRequest(
            f"filters: regex patterns may total at most {MAX_PATTERNS_TOTAL} characters, "
            f"got {total}"
        )
    return conditions


def _condition(index: int, item: object) -> Condition:
    where = f"filters[{index}]"
    if not isinstance(item, list) or len(item) != 3:
        raise BadRequest(f"{where}: expected [field, operator, value], got {short(item)}")
    name, op_text, value = item
    if not isinstance(name, str) or name not in FIELDS:
        raise BadRequest(f"{where}: unknown field {short(name)}")
    if not isinstance(op_text, str) or op_text not in OPERATORS:
        allowed = ", ".join(OPERATORS)
        raise BadRequest(f"{where}: unknown operator {short(op_text)} (expected one of {allowed})")
    field, op = FIELDS[name], Op(op_text)
    rule = OPERATORS[op]
    if field.kind not in rule.kinds:
        raise BadRequest(f"{where}: {op} applies to string and UUID fields, not {name!r}")
    if value is None:
        if not rule.takes_null:
            raise BadRequest(f"{where}: null is only allowed with == and !=, not with {op}")
        if not field.nullable:
            raise BadRequest(f"{where}: {name!r} is never null")
        return Condition(field, op, None)
    return Condition(field, op, _value(where, field, op, value))


def _value(where: str, field: Field, op: Op, value: object) -> str | int:
    if field.kind is Kind.TIMESTAMP:
        number = _integer(value)
        if number is None:
            raise BadRequest(f"{where}: {field.name!r} takes an integer, got {short(value)}")
        if not INT64_MIN <= number <= INT64_MAX:
            raise BadRequest(f"{where}: {short(value)} is out of the 64-bit integer range")
        return number
    if not isinstance(value, str):
        wanted = "a UUID string" if field.kind is Kind.UUID else "a string"
        raise BadRequest(f"{where}: {field.name!r} takes {wanted}, got {short(value)}")
    if "\x00" in value:
        raise BadRequest(f"{where}: the value must not contain NUL characters")
    if op is Op.REGEX:
        try:
            compile_pattern(value)
            # Refused on every backend when PostgreSQL's engine could not mean the same, so that
            # the answer never depends on where the data is stored.
            to_postgres(value)
        except PatternError as exc:
            raise BadRequest(f"{where}: invalid regex: {exc}") from None
        return value
    if field.kind is Kind.UUID:
        canonical = parse_uuid(value)
        if canonical is None:
            raise BadRequest(f"{where}: {field.name!r} takes a UUID string, got {short(value)}")
        return canonical
    return value


_TWO_63: Final = 2.0**63


def _integer(value: object) -> int | None:
    """The integer a JSON number stands for, or None: JSON (and JSON Schema's `integer`) does not
    tell `10` from `10.0`, so neither does the API; a boolean is not a number."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        # A JSON number past 64 bits is read as a double, and rounding can bring it back into
        # range (-2**63 - 1 reads as -2**63): a double this large stands for a number past the
        # range, however it was written, so it is answered as one.
        return int(value) if -_TWO_63 < value < _TWO_63 else int(math.copysign(2**64, value))
    return None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def short(value: object, width: int = 60) -> str:
    """A value from a request as an error message shows it: a string in quotes, anything else as
    the JSON the client sent (`true`, `null`, `[1]`), cut to `width` characters."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # an integer beyond 64 bits
            text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."

"""The filter language: one row per `find` body, with the exact `Query` or the exact 400 detail."""

from __future__ import annotations

import orjson
import pytest

from ayeto.errors import BadRequest
from ayeto.models import INT64_MAX, INT64_MIN
from ayeto.query import FIELDS, Condition, Op, Query, Value, parse_query, parse_uuid

U = "123e4567-e89b-12d3-a456-426614174000"
U_UPPER = U.upper()
OPERATORS = "expected one of ==, !=, <, >, <=, >=, regex"
ALLOWED_KEYS = "allowed: sort_key, sort_order, limit_from, limit_to, filters"
SORT_ORDER = "sort_order must be 0 (ascending) or 1 (descending), got "


def cond(name: str, op: str, value: Value) -> Condition:
    return Condition(FIELDS[name], Op(op), value)


def where(*conditions: Condition) -> Query:
    return Query(conditions=conditions)


def error(body: object) -> str:
    with pytest.raises(BadRequest) as caught:
        parse_query(body)
    return caught.value.detail


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Absent, empty or all-null bodies: updated.timestamp DESC, the whole result.
        (None, Query(sort=FIELDS["updated.timestamp"], descending=True, offset=0, limit=None)),
        ({}, Query()),
        ({"filters": []}, Query()),
        (
            {
                "sort_key": None,
                "sort_order": None,
                "limit_from": None,
                "limit_to": None,
                "filters": None,
            },
            Query(),
        ),
        # A sort key alone sorts ascending; a sort order alone applies to updated.timestamp.
        ({"sort_key": "name"}, Query(sort=FIELDS["name"], descending=False)),
        (
            {"sort_key": "updated.timestamp"},
            Query(sort=FIELDS["updated.timestamp"], descending=False),
        ),
        ({"sort_key": "name", "sort_order": 0}, Query(sort=FIELDS["name"], descending=False)),
        ({"sort_key": "name", "sort_order": 1}, Query(sort=FIELDS["name"], descending=True)),
        ({"sort_key": "name", "sort_order": None}, Query(sort=FIELDS["name"], descending=False)),
        ({"sort_order": 0}, Query(sort=FIELDS["updated.timestamp"], descending=False)),
        ({"sort_order": 1}, Query(sort=FIELDS["updated.timestamp"], descending=True)),
        ({"sort_key": None, "sort_order": 0}, Query(descending=False)),
        # Slices [limit_from, limit_to) become offset and limit.
        ({"limit_from": 5}, Query(offset=5, limit=None)),
        ({"limit_to": 10}, Query(offset=0, limit=10)),
        ({"limit_from": 5, "limit_to": 15}, Query(offset=5, limit=10)),
        ({"limit_from": 5, "limit_to": 5}, Query(offset=5, limit=0)),
        ({"limit_from": 0, "limit_to": 0}, Query(offset=0, limit=0)),
        ({"limit_from": 3, "limit_to": None}, Query(offset=3, limit=None)),
        ({"limit_from": None, "limit_to": 7}, Query(offset=0, limit=7)),
        ({"limit_to": INT64_MAX}, Query(offset=0, limit=INT64_MAX)),
        ({"limit_from": INT64_MAX, "limit_to": INT64_MAX}, Query(offset=INT64_MAX, limit=0)),
        # The spec's own examples.
        ({"filters": [["name", "regex", ".*test.*"]]}, where(cond("name", "regex", ".*test.*"))),
        ({"filters": [["model", "==", "gpt-4o"]]}, where(cond("model", "==", "gpt-4o"))),
        (
            {"filters": [["updated.timestamp", ">", 1735815581000]]},
            where(cond("updated.timestamp", ">", 1735815581000)),
        ),
        ({"filters": [["assistant_id", "==", U]]}, where(cond("assistant_id", "==", U))),
        (
            {
                "sort_key": "updated.timestamp",
                "sort_order": 1,
                "limit_from": 0,
                "limit_to": 20,
                "filters": [["model", "==", "gpt-4o"], ["created.timestamp", ">", 1735689600000]],
            },
            Query(
                conditions=(
                    cond("model", "==", "gpt-4o"),
                    cond("created.timestamp", ">", 1735689600000),
                ),
                sort=FIELDS["updated.timestamp"],
                descending=True,
                offset=0,
                limit=20,
            ),
        ),
        # UUIDs in any case become canonical lowercase; regex patterns are kept as written.
        ({"filters": [["assistant_id", "==", U_UPPER]]}, where(cond("assistant_id", "==", U))),
        ({"filters": [["id", "<", U_UPPER]]}, where(cond("id", "<", U))),
        ({"filters": [["messages.id", "!=", U_UPPER]]}, where(cond("messages.id", "!=", U))),
        (
            {"filters": [["created.user_id", ">=", U_UPPER]]},
            where(cond("created.user_id", ">=", U)),
        ),
        ({"filters": [["id", "regex", "^123E"]]}, where(cond("id", "regex", "^123E"))),
        # Null: is null (==) and is set (!=), on nullable fields only.
        (
            {"filters": [["organization_id", "==", None]]},
            where(cond("organization_id", "==", None)),
        ),
        (
            {"filters": [["accessed.user_id", "!=", None]]},
            where(cond("accessed.user_id", "!=", None)),
        ),
        (
            {"filters": [["messages.content", "==", None]]},
            where(cond("messages.content", "==", None)),
        ),
        (
            {"filters": [["messages.reasoning_content", "!=", None]]},
            where(cond("messages.reasoning_content", "!=", None)),
        ),
        ({"filters": [["messages.model", "==", None]]}, where(cond("messages.model", "==", None))),
        # Strings are taken as they are: empty, non-ASCII, with newlines.
        ({"filters": [["name", "==", ""]]}, where(cond("name", "==", ""))),
        ({"filters": [["summary", ">", "é😀"]]}, where(cond("summary", ">", "é😀"))),
        (
            {"filters": [["messages.content", "<=", "a\nb"]]},
            where(cond("messages.content", "<=", "a\nb")),
        ),
        # Timestamps: any 64-bit integer.
        ({"filters": [["created.timestamp", "==", 0]]}, where(cond("created.timestamp", "==", 0))),
        (
            {"filters": [["accessed.timestamp", "<", -1]]},
            where(cond("accessed.timestamp", "<", -1)),
        ),
        (
            {"filters": [["messages.timestamp", ">=", INT64_MAX]]},
            where(cond("messages.timestamp", ">=", INT64_MAX)),
        ),
        (
            {"filters": [["updated.timestamp", "<=", INT64_MIN]]},
            where(cond("updated.timestamp", "<=", INT64_MIN)),
        ),
        # Regex: RE2 syntax including flags, up to 1000 characters.
        ({"filters": [["name", "regex", "(?i)abc"]]}, where(cond("name", "regex", "(?i)abc"))),
        ({"filters": [["name", "regex", "x" * 1000]]}, where(cond("name", "regex", "x" * 1000))),
        ({"filters": [["name", "regex", "a{255}"]]}, where(cond("name", "regex", "a{255}"))),
        ({"filters": [["name", "regex", "\\bb\\B"]]}, where(cond("name", "regex", "\\bb\\B"))),
        ({"filters": [["name", "regex", "(?m)^a$"]]}, where(cond("name", "regex", "(?m)^a$"))),
        ({"filters": [["name", "regex", "(?U)a+"]]}, where(cond("name", "regex", "(?U)a+"))),
        (
            {"filters": [["messages.role", "regex", "^(user|tool)$"]]},
            where(cond("messages.role", "regex", "^(user|tool)$")),
        ),
        # JSON does not tell 10 from 10.0, nor does JSON Schema's `integer`: neither does the API.
        (
            {"limit_from": 2.0, "limit_to": 10.0, "sort_key": "name", "sort_order": 1.0},
            Query(sort=FIELDS["name"], descending=True, offset=2, limit=8),
        ),
        (
            {"filters": [["created.timestamp", "==", 1735689600000.0]]},
            where(cond("created.timestamp", "==", 1735689600000)),
        ),
        # As many filters, and as much pattern text, as the limits allow.
        (
            {"filters": [["name", "==", "a"]] * 50},
            where(*[cond("name", "==", "a")] * 50),
        ),
        (
            {"filters": [["messages.content", "regex", "x" * 1000]] * 4},
            where(*[cond("messages.content", "regex", "x" * 1000)] * 4),
        ),
        # Filters keep their order; the same field may appear twice.
        (
            {"filters": [["name", ">", "a"], ["name", "<", "m"], ["id", "!=", U]]},
            where(cond("name", ">", "a"), cond("name", "<", "m"), cond("id", "!=", U)),
        ),
    ],
)
def test_valid_body(body: object, expected: Query) -> None:
    assert parse_query(body) == expected


# Which operators apply to which kind of field, written out rather than read from OPERATORS.
STRING_OPS = ("==", "!=", "<", ">", "<=", ">=", "regex")
UUID_OPS = ("==", "!=", "<", ">", "<=", ">=", "regex")
TIMESTAMP_OPS = ("==", "!=", "<", ">", "<=", ">=")


@pytest.mark.parametrize(
    ("name", "ops", "value"),
    [
        ("id", UUID_OPS, U),
        ("name", STRING_OPS, "x"),
        ("model", STRING_OPS, "x"),
        ("img_gen_model", STRING_OPS, "x"),
        ("summary", STRING_OPS, "x"),
        ("organization_id", UUID_OPS, U),
        ("assistant_id", UUID_OPS, U),
        ("created.user_id", UUID_OPS, U),
        ("created.timestamp", TIMESTAMP_OPS, 1),
        ("updated.user_id", UUID_OPS, U),
        ("updated.timestamp", TIMESTAMP_OPS, 1),
        ("accessed.user_id", UUID_OPS, U),
        ("accessed.timestamp", TIMESTAMP_OPS, 1),
        ("messages.id", UUID_OPS, U),
        ("messages.role", STRING_OPS, "x"),
        ("messages.content", STRING_OPS, "x"),
        ("messages.reasoning_content", STRING_OPS, "x"),
        ("messages.model", STRING_OPS, "x"),
        ("messages.timestamp", TIMESTAMP_OPS, 1),
    ],
)
def test_every_operator_of_a_field_kind(name: str, ops: tuple[str, ...], value: Value) -> None:
    body = {"filters": [[name, op, value] for op in ops]}
    assert parse_query(body) == where(*(cond(name, op, value) for op in ops))


@pytest.mark.parametrize(
    "name",
    [
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
    ],
)
def test_every_scalar_field_is_a_sort_key(name: str) -> None:
    assert parse_query({"sort_key": name, "sort_order": 1}) == Query(sort=FIELDS[name])


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        # The body itself.
        ([], "request body must be a JSON object, got an array"),
        ("{}", "request body must be a JSON object, got a string"),
        (1, "request body must be a JSON object, got a number"),
        (1.5, "request body must be a JSON object, got a number"),
        (True, "request body must be a JSON object, got a boolean"),
        ({"foo": 1}, f"unknown key 'foo' in request body ({ALLOWED_KEYS})"),
        ({"filter": [], "limit": 3}, f"unknown key 'filter' in request body ({ALLOWED_KEYS})"),
        (
            {"sort_key": "name", "Sort_order": 1},
            f"unknown key 'Sort_order' in request body ({ALLOWED_KEYS})",
        ),
        # filters is not an array of triples.
        ({"filters": "x"}, "filters must be an array of [field, operator, value], got 'x'"),
        ({"filters": {}}, "filters must be an array of [field, operator, value], got {}"),
        ({"filters": 1}, "filters must be an array of [field, operator, value], got 1"),
        ({"filters": [[]]}, "filters[0]: expected [field, operator, value], got []"),
        (
            {"filters": [["name", "=="]]},
            'filters[0]: expected [field, operator, value], got ["name","=="]',
        ),
        (
            {"filters": [["name", "==", "x", 1]]},
            'filters[0]: expected [field, operator, value], got ["name","==","x",1]',
        ),
        ({"filters": ["name"]}, "filters[0]: expected [field, operator, value], got 'name'"),
        ({"filters": [None]}, "filters[0]: expected [field, operator, value], got null"),
        ({"filters": [{}]}, "filters[0]: expected [field, operator, value], got {}"),
        # The first bad filter is named by its index.
        (
            {"filters": [["name", "==", "x"], ["colour", "==", "x"]]},
            "filters[1]: unknown field 'colour'",
        ),
        # Unknown fields: names are exact and only scalar fields exist.
        ({"filters": [["colour", "==", "x"]]}, "filters[0]: unknown field 'colour'"),
        ({"filters": [["Name", "==", "x"]]}, "filters[0]: unknown field 'Name'"),
        ({"filters": [["messages", "==", "x"]]}, "filters[0]: unknown field 'messages'"),
        ({"filters": [["created", "==", "x"]]}, "filters[0]: unknown field 'created'"),
        (
            {"filters": [["messages.img_gen", "==", None]]},
            "filters[0]: unknown field 'messages.img_gen'",
        ),
        ({"filters": [[1, "==", "x"]]}, "filters[0]: unknown field 1"),
        ({"filters": [[None, "==", "x"]]}, "filters[0]: unknown field null"),
        ({"filters": [[["name"], "==", "x"]]}, 'filters[0]: unknown field ["name"]'),
        (
            {"filters": [["x" * 100, "==", "x"]]},
            "filters[0]: unknown field '" + "x" * 56 + "...",
        ),
        # Unknown operators.
        ({"filters": [["name", "=", "x"]]}, f"filters[0]: unknown operator '=' ({OPERATORS})"),
        ({"filters": [["name", "eq", "x"]]}, f"filters[0]: unknown operator 'eq' ({OPERATORS})"),
        (
            {"filters": [["name", "REGEX", "x"]]},
            f"filters[0]: unknown operator 'REGEX' ({OPERATORS})",
        ),
        ({"filters": [["name", "<>", "x"]]}, f"filters[0]: unknown operator '<>' ({OPERATORS})"),
        (
            {"filters": [["name", None, "x"]]},
            "filters[0]: unknown operator null (expected one of ==, !=, <, >, <=, >=, regex)",
        ),
        ({"filters": [["name", 1, "x"]]}, f"filters[0]: unknown operator 1 ({OPERATORS})"),
        # String fields take strings.
        ({"filters": [["name", "==", 1]]}, "filters[0]: 'name' takes a string, got 1"),
        ({"filters": [["name", "==", True]]}, "filters[0]: 'name' takes a string, got true"),
        ({"filters": [["name", "==", 1.5]]}, "filters[0]: 'name' takes a string, got 1.5"),
        ({"filters": [["name", "==", ["x"]]]}, "filters[0]: 'name' takes a string, got [\"x\"]"),
        (
            {"filters": [["name", "==", {"a": 1}]]},
            "filters[0]: 'name' takes a string, got {\"a\":1}",
        ),
        (
            {"filters": [["messages.role", "regex", 1]]},
            "filters[0]: 'messages.role' takes a string, got 1",
        ),
        # UUID fields take UUID strings.
        (
            {"filters": [["messages.id", "==", 1]]},
            "filters[0]: 'messages.id' takes a UUID string, got 1",
        ),
        (
            {"filters": [["assistant_id", "==", True]]},
            "filters[0]: 'assistant_id' takes a UUID string, got true",
        ),
        ({"filters": [["id", "==", "xyz"]]}, "filters[0]: 'id' takes a UUID string, got 'xyz'"),
        (
            {"filters": [["id", "==", U.replace("-", "")]]},
            "filters[0]: 'id' takes a UUID string, got '123e4567e89b12d3a456426614174000'",
        ),
        (
            {"filters": [["organization_id", "==", "{" + U + "}"]]},
            "filters[0]: 'organization_id' takes a UUID string, "
            "got '{123e4567-e89b-12d3-a456-426614174000}'",
        ),
        (
            {"filters": [["created.user_id", "!=", " " + U]]},
            "filters[0]: 'created.user_id' takes a UUID string, "
            "got ' 123e4567-e89b-12d3-a456-426614174000'",
        ),
        (
            {"filters": [["id", "==", U + "\n"]]},
            "filters[0]: 'id' takes a UUID string, got '123e4567-e89b-12d3-a456-426614174000\\n'",
        ),
        (
            {"filters": [["messages.id", "<", U[:-1] + "g"]]},
            "filters[0]: 'messages.id' takes a UUID string, "
            "got '123e4567-e89b-12d3-a456-42661417400g'",
        ),
        (
            {"filters": [["id", "==", "urn:uuid:" + U]]},
            "filters[0]: 'id' takes a UUID string, "
            "got 'urn:uuid:123e4567-e89b-12d3-a456-426614174000'",
        ),
        # Timestamps take integers: not booleans, fractions or strings; and only 64-bit ones.
        (
            {"filters": [["created.timestamp", "==", True]]},
            "filters[0]: 'created.timestamp' takes an integer, got true",
        ),
        (
            {"filters": [["created.timestamp", "==", False]]},
            "filters[0]: 'created.timestamp' takes an integer, got false",
        ),
        (
            {"filters": [["updated.timestamp", ">", 1.5]]},
            "filters[0]: 'updated.timestamp' takes an integer, got 1.5",
        ),
        (
            {"filters": [["messages.timestamp", "<", "1"]]},
            "filters[0]: 'messages.timestamp' takes an integer, got '1'",
        ),
        (
            {"filters": [["created.timestamp", "==", 2**63]]},
            "filters[0]: 9223372036854775808 is out of the 64-bit integer range",
        ),
        (
            {"filters": [["accessed.timestamp", "<", -(2**63) - 1]]},
            "filters[0]: -9223372036854775809 is out of the 64-bit integer range",
        ),
        # As read from the wire: a number past 64 bits arrives as a double, which may round
        # back to the range's edge.
        (
            orjson.loads(b'{"filters": [["created.timestamp", "<", -9223372036854775809]]}'),
            "filters[0]: -9.223372036854776e+18 is out of the 64-bit integer range",
        ),
        (
            orjson.loads(b'{"filters": [["created.timestamp", "<", 18446744073709551616]]}'),
            "filters[0]: 1.8446744073709552e+19 is out of the 64-bit integer range",
        ),
        (
            orjson.loads(b'{"limit_to": 18446744073709551616}'),
            f"limit_to must be an integer from 0 to {2**63 - 1}, got 1.8446744073709552e+19",
        ),
        # Null: only with == and != and only on nullable fields.
        (
            {"filters": [["organization_id", "<", None]]},
            "filters[0]: null is only allowed with == and !=, not with <",
        ),
        (
            {"filters": [["assistant_id", ">", None]]},
            "filters[0]: null is only allowed with == and !=, not with >",
        ),
        (
            {"filters": [["messages.content", "<=", None]]},
            "filters[0]: null is only allowed with == and !=, not with <=",
        ),
        (
            {"filters": [["created.timestamp", ">=", None]]},
            "filters[0]: null is only allowed with == and !=, not with >=",
        ),
        (
            {"filters": [["name", "regex", None]]},
            "filters[0]: null is only allowed with == and !=, not with regex",
        ),
        (
            {"filters": [["accessed.user_id", "regex", None]]},
            "filters[0]: null is only allowed with == and !=, not with regex",
        ),
        ({"filters": [["id", "==", None]]}, "filters[0]: 'id' is never null"),
        ({"filters": [["name", "!=", None]]}, "filters[0]: 'name' is never null"),
        (
            {"filters": [["created.timestamp", "==", None]]},
            "filters[0]: 'created.timestamp' is never null",
        ),
        ({"filters": [["messages.id", "==", None]]}, "filters[0]: 'messages.id' is never null"),
        ({"filters": [["messages.role", "!=", None]]}, "filters[0]: 'messages.role' is never null"),
        (
            {"filters": [["messages.timestamp", "==", None]]},
            "filters[0]: 'messages.timestamp' is never null",
        ),
        # Regex: on string and UUID fields only, valid RE2, no backreferences or look-around.
        (
            {"filters": [["created.timestamp", "regex", "1"]]},
            "filters[0]: regex applies to string and UUID fields, not 'created.timestamp'",
        ),
        (
            {"filters": [["messages.timestamp", "regex", None]]},
            "filters[0]: regex applies to string and UUID fields, not 'messages.timestamp'",
        ),
        ({"filters": [["name", "regex", "("]]}, "filters[0]: invalid regex: missing ): ("),
        ({"filters": [["id", "regex", "("]]}, "filters[0]: invalid regex: missing ): ("),
        (
            {"filters": [["name", "regex", "[z-a]"]]},
            "filters[0]: invalid regex: invalid character class range: z-a",
        ),
        (
            {"filters": [["name", "regex", "*a"]]},
            "filters[0]: invalid regex: no argument for repetition operator: *",
        ),
        (
            {"filters": [["name", "regex", "a{2,1}"]]},
            "filters[0]: invalid regex: invalid repetition size: {2,1}",
        ),
        ({"filters": [["name", "regex", "\\"]]}, "filters[0]: invalid regex: trailing \\"),
        (
            {"filters": [["name", "regex", "(a)\\1"]]},
            "filters[0]: invalid regex: backreferences are not supported "
            "(invalid escape sequence: \\1)",
        ),
        (
            {"filters": [["name", "regex", "(?P<n>a)(?P=n)"]]},
            "filters[0]: invalid regex: invalid perl operator: (?P",
        ),
        (
            {"filters": [["name", "regex", "a(?=b)"]]},
            "filters[0]: invalid regex: look-around is not supported (invalid perl operator: (?=)",
        ),
        (
            {"filters": [["name", "regex", "a(?!b)"]]},
            "filters[0]: invalid regex: look-around is not supported (invalid perl operator: (?!)",
        ),
        (
            {"filters": [["name", "regex", "(?<=a)b"]]},
            "filters[0]: invalid regex: look-around is not supported (invalid perl operator: (?<=)",
        ),
        (
            {"filters": [["name", "regex", "(?<!a)b"]]},
            "filters[0]: invalid regex: look-around is not supported (invalid perl operator: (?<!)",
        ),
        (
            {"filters": [["name", "regex", "x" * 1001]]},
            "filters[0]: invalid regex: pattern longer than 1000 characters",
        ),
        # Refused on every backend where PostgreSQL could not mean the same.
        (
            {"filters": [["name", "regex", "a\\C"]]},
            "filters[0]: invalid regex: \\C is not supported",
        ),
        (
            {"filters": [["name", "regex", "a{256}"]]},
            "filters[0]: invalid regex: {256} is not supported (repetition counts above 255)",
        ),
        (
            {"filters": [["messages.content", "regex", "a{2,300}"]]},
            "filters[0]: invalid regex: {2,300} is not supported (repetition counts above 255)",
        ),
        (
            {"filters": [["name", "regex", "\\pL" * 40]]},
            "filters[0]: invalid regex: the pattern is too large for PostgreSQL once its classes"
            " are spelled out (over 262144 characters)",
        ),
        # Bounded in number and in total pattern text, whatever each filter is.
        ({"filters": [["name", "==", "a"]] * 51}, "filters: at most 50 filters, got 51"),
        ({"filters": [["name", 1, 2]] * 1000}, "filters: at most 50 filters, got 1000"),
        (
            {"filters": [["name", "regex", "x" * 1000]] * 4 + [["id", "regex", "y"]]},
            "filters: regex patterns may total at most 4000 characters, got 4001",
        ),
        (
            {"filters": [["messages.content", "regex", "x" * 820]] * 5},
            "filters: regex patterns may total at most 4000 characters, got 4100",
        ),
        # No NUL anywhere: PostgreSQL text cannot hold it.
        (
            {"filters": [["name", "==", "a\x00b"]]},
            "filters[0]: the value must not contain NUL characters",
        ),
        (
            {"filters": [["messages.content", "regex", "a\x00"]]},
            "filters[0]: the value must not contain NUL characters",
        ),
        (
            {"filters": [["id", "==", "\x00"]]},
            "filters[0]: the value must not contain NUL characters",
        ),
        # Limits: non-negative 64-bit integers, the end not before the start.
        ({"limit_from": -1}, "limit_from must be an integer from 0 to 9223372036854775807, got -1"),
        ({"limit_to": -1}, "limit_to must be an integer from 0 to 9223372036854775807, got -1"),
        (
            {"limit_from": 1.5},
            "limit_from must be an integer from 0 to 9223372036854775807, got 1.5",
        ),
        (
            {"limit_to": 1e19},
            "limit_to must be an integer from 0 to 9223372036854775807, got 1e+19",
        ),
        (
            {"limit_from": True},
            "limit_from must be an integer from 0 to 9223372036854775807, got true",
        ),
        (
            {"limit_to": False},
            "limit_to must be an integer from 0 to 9223372036854775807, got false",
        ),
        ({"limit_to": "5"}, "limit_to must be an integer from 0 to 9223372036854775807, got '5'"),
        ({"limit_from": []}, "limit_from must be an integer from 0 to 9223372036854775807, got []"),
        (
            {"limit_from": 2**63},
            "limit_from must be an integer from 0 to 9223372036854775807, got 9223372036854775808",
        ),
        ({"limit_from": 5, "limit_to": 3}, "limit_to (3) must not be less than limit_from (5)"),
        ({"limit_from": 1, "limit_to": 0}, "limit_to (0) must not be less than limit_from (1)"),
        # sort_order: exactly the integers 0 and 1.
        ({"sort_order": 2}, SORT_ORDER + "2"),
        ({"sort_order": -1}, SORT_ORDER + "-1"),
        ({"sort_order": True}, "sort_order must be 0 (ascending) or 1 (descending), got true"),
        ({"sort_order": False}, "sort_order must be 0 (ascending) or 1 (descending), got false"),
        ({"sort_order": "1"}, SORT_ORDER + "'1'"),
        ({"sort_order": "0"}, SORT_ORDER + "'0'"),
        ({"sort_order": 1.5}, SORT_ORDER + "1.5"),
        ({"sort_order": 2.0}, SORT_ORDER + "2.0"),
        ({"sort_order": [1]}, SORT_ORDER + "[1]"),
        ({"sort_key": "name", "sort_order": "desc"}, SORT_ORDER + "'desc'"),
        # sort_key: a scalar field's name.
        ({"sort_key": "colour"}, "sort_key: unknown field 'colour'"),
        ({"sort_key": ""}, "sort_key: unknown field ''"),
        ({"sort_key": "Updated.Timestamp"}, "sort_key: unknown field 'Updated.Timestamp'"),
        (
            {"sort_key": "messages.role"},
            "sort_key: cannot sort by 'messages.role', a message field",
        ),
        (
            {"sort_key": "messages.timestamp"},
            "sort_key: cannot sort by 'messages.timestamp', a message field",
        ),
        ({"sort_key": 1}, "sort_key must be a string, got a number"),
        ({"sort_key": True}, "sort_key must be a string, got a boolean"),
        ({"sort_key": ["name"]}, "sort_key must be a string, got an array"),
        ({"sort_key": {}}, "sort_key must be a string, got an object"),
    ],
)
def test_malformed_body(body: object, detail: str) -> None:
    assert error(body) == detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (U, U),
        (U_UPPER, U),
        ("123E4567-e89B-12d3-A456-426614174000", U),
        ("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
        (U.replace("-", ""), None),
        ("{" + U + "}", None),
        (U + "\n", None),
        (U[:-1], None),
        ("", None),
    ],
)
def test_parse_uuid(text: str, expected: str | None) -> None:
    assert parse_uuid(text) == expected

"""The OpenAPI document: what the routes declare, made exact where the framework cannot see.

FastAPI derives the paths and the response models. The body of `find` is read by `ayeto.query`,
not by the framework, so its schema is written here: `DbParams` and the filter language
(`FilterField`, `FilterOperator`, `Filter`, `SortKey`, `SortOrder`), generated from the query
registry so that the document states every rule the parser enforces, and nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from enum import IntEnum
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ayeto.api.security import SCHEME
from ayeto.models import INT64_MAX, INT64_MIN, INT64_SCHEMA, NO_NUL, UUID_PATTERN
from ayeto.patterns import MAX_PATTERN_LENGTH
from ayeto.query import (
    FIELDS,
    MAX_FILTERS,
    MAX_PATTERNS_TOTAL,
    OPERATORS,
    SORTABLE,
    Field,
    Kind,
    Op,
)

JSON: Final = "application/json"
TAGS: Final = [
    {
        "name": "conversation",
        "description": "Search, read and delete the conversations of the key's user.",
    }
]
# Relative, so the document is right behind any host, port or scheme; generators take the base
# URL from their caller.
SERVERS: Final = [{"url": "/", "description": "The server that serves this document."}]


# The examples are the spec's own: its sample conversation, and the body of its example 8.
SAMPLE_ID: Final = "550e8400-e29b-41d4-a716-446655440000"
_SAMPLE_USER: Final = "880e8400-e29b-41d4-a716-446655440003"
SAMPLE: Final[dict[str, Any]] = {
    "id": SAMPLE_ID,
    "name": "My conversation",
    "model": "gpt-4o",
    "img_gen_model": "dall-e-3",
    "summary": "Discussion about Python programming...",
    "organization_id": None,
    "assistant_id": None,
    "messages": [
        {
            "id": "660e8400-e29b-41d4-a716-446655440001",
            "timestamp": 1735815581000,
            "role": "user",
            "content": "Hi, how do I write a function in Python?",
            "reasoning_content": None,
            "model": None,
            "img_gen": None,
        },
        {
            "id": "770e8400-e29b-41d4-a716-446655440002",
            "timestamp": 1735815582000,
            "role": "assistant",
            "content": "You define a function in Python using the `def` keyword...",
            "reasoning_content": None,
            "model": "gpt-4o",
            "img_gen": None,
        },
    ],
    "created": {"user_id": _SAMPLE_USER, "timestamp": 1735815580000},
    "updated": {"user_id": _SAMPLE_USER, "timestamp": 1735815582000},
    "accessed": {"user_id": None, "timestamp": 0},
}
SAMPLE_FIND: Final[dict[str, Any]] = {
    "sort_key": "updated.timestamp",
    "sort_order": 1,
    "limit_from": 0,
    "limit_to": 20,
    "filters": [["model", "==", "gpt-4o"], ["created.timestamp", ">", 1735689600000]],
}

_ANSWERS: Final = {
    "findConversations": [SAMPLE],
    "getConversation": SAMPLE,
    "deleteConversation": SAMPLE_ID,
}


class SortOrder(IntEnum):
    """The values of `sort_order`, as `ayeto.query` reads them."""

    ASC = 0
    DESC = 1


def install(app: FastAPI) -> None:
    app.openapi = lambda: document(app)  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, built once."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=TAGS,
            servers=SERVERS,
        )
        # The framework never validates our input (errors are 400 with our own detail), so the
        # 422 it documents by default cannot happen.
        for path in schema["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schema.setdefault("components", {})["securitySchemes"] = SCHEME
        components = schema["components"].setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components.update(request_schemas())
        _integral(schema)
        # Here rather than on the routes: the framework drops the nulls of what routes declare.
        for path in schema["paths"].values():
            for operation in path.values():
                answer = operation["responses"]["200"]["content"][JSON]
                answer["example"] = _ANSWERS[operation["operationId"]]
        app.openapi_schema = schema
    return app.openapi_schema


def _integral(node: Any) -> None:
    """Bounds back to integers: the framework's model of a schema holds them as floats."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        if isinstance(value, float) and value.is_integer():
            node[key] = int(value)
        else:
            _integral(value)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def request_schemas() -> dict[str, dict[str, Any]]:
    """`DbParams` and the filter language, as named component schemas."""
    return {
        "DbParams": _DB_PARAMS,
        # A generator that reads a `$ref` alone, as OpenAPI 3.0 has it, sees a `FilterTriple` and
        # gives a filter one list type; validators also apply the `oneOf`: what each field takes
        # with each operator.
        "Filter": {**ref("FilterTriple"), "description": _FILTER_RULES, "oneOf": _filter_triples()},
        "FilterTriple": {
            "type": "array",
            "description": "The shape of a filter: `[field, operator, value]`.",
            "prefixItems": [
                ref("FilterField"),
                ref("FilterOperator"),
                {"anyOf": [*_VALUES.values(), {"type": "null"}]},
            ],
            "minItems": 3,
            "maxItems": 3,
        },
        "FilterField": _names(list(FIELDS), "A field a filter can name."),
        "FilterOperator": _names(
            [str(op) for op in OPERATORS],
            "How a filter compares its field with its value:\n\n"
            + "\n".join(f"- `{op}`: {rule.summary}." for op, rule in OPERATORS.items()),
            [op.name for op in OPERATORS],
        ),
        "SortKey": _names(list(SORTABLE), "A field `find` can sort by."),
        "SortOrder": {
            "type": "integer",
            "enum": [order.value for order in SortOrder],
            "x-enum-varnames": [order.name for order in SortOrder],
            "description": "`0` ascending, `1` descending.",
        },
    }


# Request values state their range as numbers too, for validators that know no `int64`.
_INT64: Final = {**INT64_SCHEMA, "minimum": INT64_MIN, "maximum": INT64_MAX}
_INDEX: Final = {**_INT64, "minimum": 0}

# Every key may be left out. The server also takes `null` for a key left out, which the document
# leaves unsaid, so that generated clients leave a key out rather than send `null`.
_DB_PARAMS: Final = {
    "type": "object",
    "description": "The body of `find`: filters, sort and the slice of the sorted matches to "
    "return. Every key may be left out, and so may the body.",
    "properties": {
        "sort_key": {
            **ref("SortKey"),
            "description": "Field to sort by (default `updated.timestamp`).",
        },
        "sort_order": {
            **ref("SortOrder"),
            "description": "`0` ascending, `1` descending; default ascending when `sort_key` is "
            "given, else descending.",
        },
        "limit_from": {**_INDEX, "description": "Index of the first match to return (default 0)."},
        "limit_to": {
            **_INDEX,
            "description": "Index after the last match to return (default: to the end); not "
            "less than `limit_from`.",
        },
        "filters": {
            "type": "array",
            "items": ref("Filter"),
            "maxItems": MAX_FILTERS,
            # JSON Schema cannot sum lengths: the words say it, in those of the 400 (query.py).
            "description": "`[field, operator, value]` conditions, all of which must hold: at "
            f"most {MAX_FILTERS} filters, and regex patterns may total at most "
            f"{MAX_PATTERNS_TOTAL} characters.",
        },
    },
    "additionalProperties": False,
}


def _names(values: list[str], description: str, names: list[str] | None = None) -> dict[str, Any]:
    """A string enum whose generated constants read as the values do (`created.timestamp` is
    `CREATED_TIMESTAMP`)."""
    return {
        "type": "string",
        "enum": values,
        "x-enum-varnames": names or [value.upper().replace(".", "_") for value in values],
        "description": description,
    }


# What a filter's value is, by the field's kind. A `regex` value is a pattern whatever the kind.
_VALUES: Final[dict[Kind, dict[str, Any]]] = {
    Kind.STRING: {"type": "string", "pattern": NO_NUL},
    Kind.UUID: {"type": "string", "format": "uuid", "pattern": f"^{UUID_PATTERN}$"},
    Kind.TIMESTAMP: _INT64,
}
_VALUE_TEXT: Final = {
    Kind.STRING: "a string",
    Kind.UUID: "a UUID string (any case)",
    Kind.TIMESTAMP: "an integer (milliseconds since the Unix epoch)",
}
_PATTERN: Final = {
    "type": "string",
    # Not `regex`, which JSON Schema defines as ECMA 262: RE2 refuses some of those.
    "format": "re2",
    "maxLength": MAX_PATTERN_LENGTH,
    "pattern": NO_NUL,
}
_NULL_OPS: Final = " and ".join(op for op, rule in OPERATORS.items() if rule.takes_null)
_REGEX_KINDS: Final = " and ".join(kind for kind in Kind if kind in OPERATORS[Op.REGEX].kinds)
# Each rule in the words of the 400 that refuses a filter breaking it (`ayeto.query`).
_FILTER_RULES: Final = (
    "A condition `[field, operator, value]`. The value follows the field's type: "
    + ", ".join(f"a {kind} field takes {_VALUE_TEXT[kind]}" for kind in Kind)
    + f". null is only allowed with {_NULL_OPS}, and only on a field that can be null: any "
    f"other field is never null. {Op.REGEX} applies to {_REGEX_KINDS} fields and takes an RE2 "
    f"pattern; a pattern longer than {MAX_PATTERN_LENGTH} characters is refused. Whatever the "
    "field, the value must not contain NUL characters."
)


def _value(field: Field, op: Op) -> tuple[str, bool]:
    """What `op` compares `field` with: a kind (or `pattern`), and whether `null` may stand in."""
    if op is Op.REGEX:
        return "pattern", False
    return field.kind, field.nullable and OPERATORS[op].takes_null


def _filter_triples() -> list[dict[str, Any]]:
    """One typed triple per group of fields and operators that take the same value.

    Every (field, operator) pair the parser accepts lands in exactly one triple, so the triples
    are the `oneOf` of a filter, and any other pair matches none of them.
    """
    ops_by_field: dict[str, dict[tuple[str, bool], list[Op]]] = {}
    for field in FIELDS.values():
        ops_by_field[field.name] = defaultdict(list)
        for op, rule in OPERATORS.items():
            if field.kind in rule.kinds:
                ops_by_field[field.name][_value(field, op)].append(op)
    groups: dict[tuple[tuple[str, bool], tuple[Op, ...]], list[str]] = defaultdict(list)
    for name, by_value in ops_by_field.items():
        for value, ops in by_value.items():
            groups[value, tuple(ops)].append(name)
    return [_triple(fields, ops, *value) for (value, ops), fields in groups.items()]


def _triple(fields: list[str], ops: tuple[Op, ...], kind: str, nullable: bool) -> dict[str, Any]:
    value = _PATTERN if kind == "pattern" else _VALUES[Kind(kind)]
    text = "an RE2 pattern" if kind == "pattern" else _VALUE_TEXT[Kind(kind)]
    if nullable:
        value, text = {"anyOf": [value, {"type": "null"}]}, f"{text}, or `null`"
    return {
        "description": f"{_code(fields)} with {_code(ops)}: the value is {text}.",
        "prefixItems": [{"enum": fields}, {"enum": [str(op) for op in ops]}, value],
    }


def _code(names: Any) -> str:
    return ", ".join(f"`{name}`" for name in names)

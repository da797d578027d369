"""A plain in-memory `find`, written from the contract decisions in DESIGN.md alone.

It shares nothing with the SQL store but the parsed `Query`: it looks fields up by their dotted API
name in `PublicConversationView`-shaped dicts and evaluates every rule in Python, one document at a
time. It is meant to be obviously correct, not fast; the property test compares the store with it.
"""

from __future__ import annotations

from typing import Any

import re2

from ayeto.query import Condition, Op, Query

Document = dict[str, Any]

_MESSAGES = "messages."


def reference_find(documents: list[Document], owner: str, query: Query) -> list[Document]:
    """The documents `find` must return to `owner` for `query`, in order."""
    # Only the caller's own conversations are ever considered; one with no creator is nobody's.
    mine = [d for d in documents if _scalar(d, "created.user_id") == owner]
    matches = [d for d in mine if all(_holds(d, c) for c in query.conditions)]
    # Nulls are the lowest value; ties are broken by `id` in the same direction.
    ordered = sorted(
        matches,
        key=lambda d: (_nulls_lowest(_scalar(d, query.sort.name)), _canonical("id", d["id"])),
        reverse=query.descending,
    )
    end = None if query.limit is None else query.offset + query.limit
    return [_as_returned(d) for d in ordered[query.offset : end]]


def _holds(document: Document, condition: Condition) -> bool:
    name, op, value = condition.field.name, condition.op, condition.value
    if not name.startswith(_MESSAGES):
        return _matches(_scalar(document, name), op, value)
    key = name.removeprefix(_MESSAGES)
    values = [_canonical(name, message[key]) for message in document["messages"]]
    # MongoDB's array semantics: any message matches; `!=` matches when none is equal.
    if op is Op.NE:
        return not any(_matches(v, Op.EQ, value) for v in values)
    return any(_matches(v, op, value) for v in values)


def _matches(actual: Any, op: Op, value: Any) -> bool:
    if op is Op.EQ:
        return actual is None if value is None else actual == value
    if op is Op.NE:
        # `!= null` is "is set"; `!=` against a value also matches null.
        return actual is not None if value is None else actual != value
    if actual is None:
        # `< > <= >=` and `regex` never match a null field.
        return False
    if op is Op.LT:
        return bool(actual < value)
    if op is Op.GT:
        return bool(actual > value)
    if op is Op.LE:
        return bool(actual <= value)
    if op is Op.GE:
        return bool(actual >= value)
    assert op is Op.REGEX
    # Unanchored, case-sensitive, RE2 syntax: what Python's `re.search` would do, in RE2.
    return re2.search(value, actual) is not None


def _scalar(document: Document, name: str) -> Any:
    """The value of a dotted top-level field, e.g. `created.user_id`."""
    value: Any = document
    for part in name.split("."):
        value = value[part]
    return _canonical(name, value)


def _is_uuid_field(name: str) -> bool:
    # DESIGN.md: `id`, `*_id`, `*.user_id` and `messages.id` hold UUIDs.
    return name in ("id", "messages.id") or name.endswith("_id")


def _canonical(name: str, value: Any) -> Any:
    """UUIDs compare, sort and match regexes as their canonical lowercase text."""
    if value is not None and _is_uuid_field(name):
        return str(value).lower()
    return value


def _nulls_lowest(value: Any) -> tuple[bool, Any]:
    # Python compares strings by code point, as the store must.
    return (False, None) if value is None else (True, value)


def _as_returned(document: Document) -> Document:
    """The document as the API returns it: messages in timestamp order, ties in the order given."""
    messages = sorted(document["messages"], key=lambda message: message["timestamp"])
    return document | {"messages": messages}

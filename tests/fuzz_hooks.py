"""Schemathesis hooks for fuzzing a real `ayeto serve` (tests/test_fuzz.py loads them by name).

They tell the fuzzer what the OpenAPI document cannot: which conversations exist, what an RE2
pattern looks like, and the one rule of `find` that JSON Schema cannot state. Nothing here makes a
request valid or invalid that the document says otherwise, except where a comment says why.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

from ayeto.models import UUID_PATTERN
from ayeto.query import MAX_PATTERNS_TOTAL, Op

# Conversation ids for `get` and `delete` to draw from, as JSON `{"get": [...], "delete": [...]}`,
# set by the test that runs the fuzzer: the caller's (each operation its own, so that `delete`
# does not leave `get` nothing to find) and another user's.
ENTITY_IDS_VARIABLE = "AYETO_FUZZ_ENTITY_IDS"
_ENTITY_IDS: dict[str, list[str]] = json.loads(os.environ.get(ENTITY_IDS_VARIABLE, "{}"))
_UUID = re.compile(UUID_PATTERN)

# The document states that a `regex` value has the format `re2`; a fuzzer cannot know that
# language, so patterns are built from pieces every RE2 (and its PostgreSQL translation) accepts.
_ATOMS = (".", r"\d", r"\w", r"\s", r"\W", "[a-z]", "[^0-9]", "[[:alpha:]]", r"\pL", "(ab|c)")
_QUANTIFIERS = ("", "*", "+", "?", "{2}", "{1,3}", "*?")
_META = set(r"\.+*?()|[]{}^$")
_LITERAL = st.characters(
    codec="utf-8",
    exclude_categories=("Cs", "Cc"),
    exclude_characters="".join(_META),
)
_PIECE = st.tuples(
    st.sampled_from(_ATOMS) | st.text(_LITERAL, min_size=1, max_size=3).map(lambda s: f"(?:{s})"),
    st.sampled_from(_QUANTIFIERS),
).map("".join)
schemathesis.openapi.format(
    "re2",
    st.tuples(
        st.sampled_from(("", "(?i)", "(?s)", "^")),
        st.lists(_PIECE, max_size=5).map("".join),
        st.sampled_from(("", "$", r"\b")),
    ).map("".join),
)


@schemathesis.hook
def filter_case(ctx: schemathesis.HookContext, case: schemathesis.Case[Any]) -> bool:
    if not case.operation.path.endswith("/find") or case.meta is None:
        return True
    body: Any = case.body
    if case.meta.generation.mode is schemathesis.GenerationMode.NEGATIVE:
        # The server takes `null` (the body or a key's value) for left out, a courtesy to clients
        # that serialize what they leave unset; the document leaves it unsaid, so the fuzzer
        # would count it as a mistake the server accepted.
        return not (body is None or (isinstance(body, dict) and None in body.values()))
    if not isinstance(body, dict):
        return True
    # Two rules the document states in words, as JSON Schema cannot compare two keys or sum
    # lengths: `limit_to` is not less than `limit_from`, and regex patterns have a total length.
    patterns = [f[2] for f in body.get("filters", []) if f[1] == Op.REGEX]
    if sum(map(len, patterns)) > MAX_PATTERNS_TOTAL:
        return False
    return "limit_to" not in body or bool(body["limit_to"] >= body.get("limit_from", 0))


@schemathesis.hook
def flatmap_query(
    ctx: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """A drawn UUID is mostly one of the known conversations, so `get` and `delete` reach them."""
    known = _ENTITY_IDS.get(ctx.operation.path.rsplit("/", 1)[-1], []) if ctx.operation else []
    drawn = query.get("entity_id") if query else None
    # A drawn value that is not a UUID makes a request that must be refused: left as it is.
    if query is None or not known or not isinstance(drawn, str) or not _UUID.fullmatch(drawn):
        return st.just(query)
    return st.sampled_from([drawn, *known]).map(lambda entity_id: {**query, "entity_id": entity_id})

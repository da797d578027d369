"""`find` agrees with the reference evaluator on random datasets and random `find` bodies.

Values come from small pools so that equal values, ties, nulls and regex matches are common, with
non-ASCII text and case variants among them; every field is filtered with every operator its kind
allows, and every sort key, order and slice is tried. The reference, SQLite and PostgreSQL answer
the same random data and the same random bodies, and must agree exactly. Regex filters get a
second, narrower test: random patterns against a fixed set of tricky texts (newlines, case
folding, non-ASCII), where a single filter decides the whole answer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from ayeto.models import INT64_MAX, INT64_MIN, ROLES
from ayeto.query import FIELDS, SORTABLE, Field, Kind, Op, parse_query
from ayeto.store import Store, open_store
from tests.conftest import empty_postgres
from tests.factories import ALICE, BOB, conversation, img_gen, message
from tests.reference import reference_find

CAROL = "33333333-3333-4333-8333-333333333333"
CALLERS = (ALICE, ALICE, BOB, CAROL)
# A null creator makes a conversation nobody's.
OWNERS = (ALICE, ALICE, ALICE, BOB, CAROL, None)

CONVERSATION_IDS = tuple(f"{c * 8}-0000-4000-8000-00000000000{c}" for c in "0123456789abcdef")
OTHER_UUIDS = (
    "0a0a0a0a-0000-4000-8000-00000000abcd",
    "0f0f0f0f-0000-4000-8000-00000000ffff",
    "5a5a5a5a-0000-4000-8000-000000000000",
)
MESSAGE_IDS = (
    "e0000000-0000-4000-8000-000000000001",
    "e0000000-0000-4000-8000-0000000000b2",
    "e0000000-0000-4000-8000-000000000003",
)
# Every UUID the datasets use, so that UUID filters often hit.
UUID_VALUES = (*CONVERSATION_IDS[:6], *OTHER_UUIDS, *MESSAGE_IDS, ALICE, BOB, CAROL)

STRINGS = (
    "",
    " ",
    "a",
    "A",
    "b",
    "B",
    "ab",
    "aB",
    "z",
    "é",
    "É",
    "😀",
    "\uff5e",
    "a\nb",
    "b\na",
    "\n",
    "gpt-4o",
    "GPT-4o",
    "claude",
)
TIMESTAMPS = (INT64_MIN, -1, 0, 1, 2, 3, 1_735_815_581_000, INT64_MAX)
PATTERNS = (
    "",
    "a",
    "^a",
    "a$",
    "^a$",
    "(?i)a",
    "(?i)^b",
    "é",
    "É",
    "(?i)é",
    ".",
    "^.$",
    "^$",
    "a|b",
    "[A-Z]",
    "[a-f]",
    r"\d",
    r"\d{4}",
    "(?s)a.b",
    "a.b",
    r"a\nb",
    "^.*$",
    "😀",
    r"\x{1F600}",
    r"\x{FF5E}",
    "4o$",
    "^gpt",
    "(?i)GPT",
    "^[0-9a-f]{8}-",
    "-4[0-9a-f]{3}-",
    "AAAA",
    "(?i)aaaa",
    r"\bb",
    r"\pL",
    r"\p{Lu}",
    "[^a]",
    "(a|é)+",
    r"\s",
    r"^\S*$",
    "b{2}",
    ".{3,}",
    "(?m)^b",
)

# Mostly the pool, so that values repeat; now and then any text but NUL (no stored string may
# hold it).
any_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=3)
strings = st.one_of(*[st.sampled_from(STRINGS)] * 3, any_text)
timestamps = st.one_of(st.sampled_from(TIMESTAMPS), st.integers(-2, 5))
uuids = st.sampled_from(UUID_VALUES)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


img_gens = st.sampled_from(
    [
        img_gen(),
        img_gen(
            id=OTHER_UUIDS[0],
            timestamp=7,
            model="gpt-image-1",
            format="16:9",
            hd=True,
            prompt="é😀",
            content="revised",
            response_id="resp_1",
            image_url="https://example.com/1.png",
            image_file_id=OTHER_UUIDS[1],
        ),
    ]
)

messages = st.fixed_dictionaries(
    {
        "id": st.sampled_from(MESSAGE_IDS),
        "timestamp": timestamps,
        "role": st.sampled_from(ROLES),
        "content": maybe(strings),
        "reasoning_content": maybe(strings),
        "model": maybe(strings),
        "img_gen": maybe(img_gens),
    }
)


def metas(user_ids: st.SearchStrategy[str | None]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"user_id": user_ids, "timestamp": timestamps})


def conversations(id_: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.just(id_),
            "name": strings,
            "model": strings,
            "img_gen_model": strings,
            "summary": strings,
            "organization_id": maybe(uuids),
            "assistant_id": maybe(uuids),
            "messages": st.lists(messages, max_size=3),
            "created": metas(st.sampled_from(OWNERS)),
            "updated": metas(maybe(uuids)),
            "accessed": metas(maybe(uuids)),
        }
    )


datasets = (
    st.integers(0, 12)
    .flatmap(lambda n: st.permutations(CONVERSATION_IDS).map(lambda ids: ids[:n]))
    .flatmap(lambda ids: st.tuples(*(conversations(id_) for id_ in ids)).map(list))
)


def in_any_case(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from([text, text.upper()])


def present(dataset: list[dict[str, Any]], field: Field) -> list[Any]:
    """The values `field` takes in `dataset`, so that filters often select some but not all."""
    if field.on_message:
        key = field.name.removeprefix("messages.")
        found = [m[key] for d in dataset for m in d["messages"]]
    else:
        found = []
        for d in dataset:
            value: Any = d
            for part in field.name.split("."):
                value = value[part]
            found.append(value)
    return sorted({v for v in found if v is not None}, key=repr)


@st.composite
def patterns_from(draw: st.DrawFn, seen: list[str]) -> str:
    """A pattern made from a piece of a non-empty value in the dataset, so that it often hits."""
    value = draw(st.sampled_from(seen))
    length = draw(st.integers(1, min(4, len(value))))
    start = draw(st.integers(0, len(value) - length))
    end = start + length
    piece = draw(st.sampled_from([value[start:end], value[start:end].upper()]))
    parts = [re2.escape(char) for char in piece]
    if draw(st.booleans()):
        # `.` in place of a character, a newline where there is one: `.` must not match a
        # newline unless (?s) is given.
        newlines = [i for i, char in enumerate(piece) if char == "\n"]
        parts[draw(st.sampled_from(newlines or range(len(parts))))] = "."
    pattern = "".join(parts)
    if start == 0 and draw(st.booleans()):
        pattern = "^" + pattern
    if end == len(value) and draw(st.booleans()):
        pattern += "$"
    return draw(st.sampled_from(["", "(?i)", "(?s)"])) + pattern


def values(dataset: list[dict[str, Any]], field: Field, op: Op) -> st.SearchStrategy[Any]:
    if op is Op.REGEX:
        texts = [v for v in present(dataset, field) if v]
        patterns = st.sampled_from(PATTERNS)
        return st.one_of(patterns, patterns_from(texts)) if texts else patterns
    pool: st.SearchStrategy[Any] = {
        Kind.TIMESTAMP: timestamps,
        Kind.UUID: uuids,
        Kind.STRING: strings,
    }[field.kind]
    seen = present(dataset, field)
    if seen:
        pool = st.one_of(pool, st.sampled_from(seen))
    if field.kind is Kind.UUID:
        # In any case: the filter still means the canonical lowercase UUID.
        pool = pool.flatmap(in_any_case)
    if field.nullable and op in (Op.EQ, Op.NE):
        return maybe(pool)
    return pool


@st.composite
def filters(draw: st.DrawFn, dataset: list[dict[str, Any]]) -> list[Any]:
    field = FIELDS[draw(st.sampled_from(sorted(FIELDS)))]
    ops = list(Op)
    if field.kind is Kind.TIMESTAMP:
        ops.remove(Op.REGEX)
    else:
        # Regex twice as often as the others: it has the most ways to go wrong.
        ops.append(Op.REGEX)
    op = draw(st.sampled_from(ops))
    return [field.name, op.value, draw(values(dataset, field, op))]


@st.composite
def bodies(draw: st.DrawFn, dataset: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {}

    def put(key: str, strategy: st.SearchStrategy[Any], percent: int) -> Any:
        # A value `percent` times in 100; otherwise absent, or null as clients that serialize
        # their unset fields send it.
        if draw(st.integers(0, 99)) >= percent:
            if draw(st.booleans()):
                body[key] = None
            return None
        body[key] = value = draw(strategy)
        return value

    # Filters mostly, sort often, and slices now and then (a slice hides most of a result).
    put("filters", st.lists(filters(dataset), min_size=1, max_size=2), percent=80)
    put("sort_key", st.sampled_from(SORTABLE), percent=70)
    put("sort_order", st.sampled_from([0, 1]), percent=70)
    start = put("limit_from", st.integers(0, 6), percent=30) or 0
    put("limit_to", st.one_of(st.integers(start, start + 6), st.just(INT64_MAX)), percent=30)
    return body


QUERIES_PER_DATASET = 16
# Each example gets an empty SQLite store and an empty PostgreSQL store, holding the same data.
EmptyStores = Callable[[], AbstractContextManager[tuple[Store, Store]]]


@pytest.fixture(scope="module")
def empty_stores(postgres_url: str) -> Iterator[EmptyStores]:
    """Empty stores per example: function-scoped fixtures are not reset between examples."""
    postgres = open_store(postgres_url)

    @contextmanager
    def both() -> Iterator[tuple[Store, Store]]:
        empty_postgres(postgres_url)
        # A new SQLite database costs milliseconds.
        with tempfile.TemporaryDirectory() as directory:
            sqlite = open_store(f"sqlite:///{Path(directory) / 'ayeto.db'}")
            try:
                yield sqlite, postgres
            finally:
                sqlite.close()

    try:
        yield both
    finally:
        postgres.close()


def found(store: Store, owner: str, body: dict[str, Any]) -> Any:
    documents = [d for batch in store.find(owner, parse_query(body)) for d in batch]
    return orjson.loads(orjson.dumps(documents))


def assert_all_agree(
    stores: tuple[Store, Store], dataset: list[dict[str, Any]], owner: str, body: dict[str, Any]
) -> None:
    """The reference, SQLite and PostgreSQL give the same documents in the same order."""
    expected = reference_find(dataset, owner, parse_query(body))
    sqlite, postgres = stores
    assert found(sqlite, owner, body) == expected, "SQLite differs from the reference"
    assert found(postgres, owner, body) == expected, "PostgreSQL differs from the reference"


@settings(max_examples=150, deadline=None)
@given(dataset=datasets, data=st.data())
def test_find_agrees_with_reference(
    empty_stores: EmptyStores, dataset: list[dict[str, Any]], data: st.DataObject
) -> None:
    with empty_stores() as stores:
        for store in stores:
            store.upsert(dataset)
        # Several queries per dataset: a query costs far less than a database.
        for _ in range(QUERIES_PER_DATASET):
            owner = data.draw(st.sampled_from(CALLERS), label="owner")
            body = data.draw(bodies(dataset), label="body")
            assert_all_agree(stores, dataset, owner, body)


# Texts where regex engines are known to differ: newlines and `.`, `^ $` with and without (?m),
# ASCII-only \w \d \s \b, and (?i) with non-ASCII and special case foldings (the Kelvin sign
# folds to k, the long s to s; ß does not fold to SS, nor İ to i).
REGEX_TEXTS = (
    *STRINGS,
    "line1\nline2",
    "a\r\nb",
    "\t",
    "Hello world",
    "HELLO",
    "x_y",
    "42",
    "٤٢",
    "über",
    "ÜBER",
    "Straße",
    "STRASSE",
    "\u212a",
    "k",
    "\u017f",
    "s",
    "İ",
    "\u0131",
    "ǅ",
    "😀x",
)
# Longer texts, where the search index narrows message filters (a literal of three characters or
# more), with characters special to its query language and case variants outside ASCII.
SEARCH_TEXTS = (
    "Hello world, hello WORLD",
    'say "NEAR" AND * OR x',
    "\u212aelvin ma\u017f\u017fe",
    "ΣΟΦΊΑ σοφίας",
    "Straße STRASSE",
    "one\ntwo three",
)
SEARCH_PATTERNS = (
    "hello",
    "(?i)HELLO",
    "(?i)kelvin",
    "(?i)masse",
    "massive|world",
    "(?i)σοφία",
    "σοφ",
    "(?i)straße",
    '"NEAR"',
    "AND \\*",
    "NEAR|Kelvin",
    "two three$",
    "(?m)^two",
    "wor.d",
    "x{2}yz",
    "abc|a",
)
REGEX_DATASET = [
    conversation(
        ALICE,
        id=f"f0000000-0000-4000-8000-{index:012x}",
        name=text,
        summary=text,
        messages=[message(content=text, reasoning_content=text[::-1])],
    )
    for index, text in enumerate((*REGEX_TEXTS, *SEARCH_TEXTS))
]
ATOMS = (
    ".",
    "hello",
    "(?i:world)",
    "\u212a",
    "a",
    "b",
    "B",
    "k",
    "s",
    "é",
    "É",
    "ü",
    "ß",
    "i",
    "😀",
    "\\n",
    "\\s",
    "\\S",
    "\\w",
    "\\W",
    "\\d",
    "\\D",
    "\\b",
    "\\B",
    "\\pL",
    "\\p{Lu}",
    "\\PL",
    "[a-z]",
    "[^a]",
    "[[:upper:]]",
    "(a|é)",
    "(?s:.)",
    "(?i:k)",
    "^",
    "$",
)
composed = st.builds(
    lambda flags, atoms: flags + "".join(atoms),
    st.sampled_from(["", "(?i)", "(?s)", "(?m)", "(?is)", "(?U)"]),
    st.lists(
        st.builds(str.__add__, st.sampled_from(ATOMS), st.sampled_from(["", "*", "+", "?", "{2}"])),
        min_size=1,
        max_size=4,
    ),
)
regex_patterns = st.one_of(
    st.sampled_from(PATTERNS + SEARCH_PATTERNS),
    patterns_from([text for text in (*REGEX_TEXTS, *SEARCH_TEXTS) if text]),
    composed,
)
PATTERNS_PER_DATASET = 20


@settings(max_examples=60, deadline=None)
@given(
    patterns=st.lists(regex_patterns, min_size=PATTERNS_PER_DATASET, max_size=PATTERNS_PER_DATASET)
)
def test_regex_agrees_with_reference(empty_stores: EmptyStores, patterns: list[str]) -> None:
    with empty_stores() as stores:
        for store in stores:
            store.upsert(REGEX_DATASET)
        for pattern in patterns:
            # The name is scanned; the message fields are narrowed by the search index.
            for field in ("name", "messages.content", "messages.reasoning_content"):
                body = {"filters": [[field, "regex", pattern]], "sort_key": "id"}
                assert_all_agree(stores, REGEX_DATASET, ALICE, body)

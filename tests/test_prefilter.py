"""The literals every match of a pattern must contain (`ayeto.prefilter`), and the FTS5 query
made of them: exact expectations per construct, and properties against RE2 itself."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from ayeto.patterns import compile_pattern
from ayeto.pg_regex import case_variants
from ayeto.prefilter import And, Condition, Or, required
from ayeto.store.dialects import SQLite


def any_of(*parts: str | And | Or) -> Or:
    return Or(frozenset(parts))


def all_of(*parts: str | And | Or) -> And:
    return And(frozenset(parts))


CASES: list[tuple[str, Condition]] = [
    # literals, and the three characters a trigram needs
    ("hello", "hello"),
    ("abc", "abc"),
    ("ab", None),
    ("a", None),
    ("", None),
    ("hello world", "hello world"),
    ("q\\.e\\.d", "q.e.d"),
    ("a\\*b\\+c", "a*b+c"),
    ('say "hi"', 'say "hi"'),
    ("line\\nnext", "line\nnext"),
    ("\\x41\\x{42}C", "ABC"),
    ("\\x{1F600}\\x{1F600}\\x{1F600}", "😀😀😀"),
    ("été", "été"),
    # concatenation with what carries no literal
    ("abc.*def", all_of("abc", "def")),
    ("abc.def", all_of("abc", "def")),
    ("ab.de", None),
    ("^abc$", "abc"),
    ("\\babc\\b", "abc"),
    ("\\Aabc\\z", "abc"),
    ("\\d+abc\\s", "abc"),
    ("\\pLabc\\p{Greek}def", all_of("abc", "def")),
    ("[a-z]+xyz", "xyz"),
    ("[^a]bcd", "bcd"),
    ("[[:alpha:]]bcd", "bcd"),
    # alternation
    ("foo|bar", any_of("foo", "bar")),
    ("fo|bar", None),
    ("foo|bar|", None),
    ("a(bc|de)f", any_of("abcf", "adef")),
    ("(foo|bar)baz", any_of("foobaz", "barbaz")),
    ("(foo.*|bar)baz", all_of(any_of("foo", "bar"), "baz")),
    ("foobar|foo", "foo"),
    # repetition
    ("(abc)+", "abc"),
    ("(abc)*", None),
    ("(abc){2,5}", "abc"),
    ("(abc){0,2}xyz", "xyz"),
    ("a*bcd", "bcd"),
    ("ab?cd", any_of("acd", "abcd")),
    ("abc?", None),
    ("abc??d", any_of("abd", "abcd")),
    ("x{2}yzw", "yzw"),
    ("a{,3}bc", "a{,3}bc"),  # not a repetition in RE2: a literal brace
    ("ab{", "ab{"),
    # small classes are their characters
    ("[Ss]ummary", any_of("Summary", "summary")),
    ("[abcde]xyz", "xyz"),
    ("[ab][cd]ef", any_of("acef", "adef", "bcef", "bdef")),
    # groups and flags
    ("(?P<name>abc)", "abc"),
    ("(?:abc)d", "abcd"),
    ("(?i)Hello", "hello"),
    ("(?i:AB)CD", "abCD"),
    ("(?i)k[^x]ss", None),
    ("(?i)KELVIN", "kelvin"),
    ("(?i)ÉTÉ", any_of(*(a + "t" + b for a in "éÉ" for b in "éÉ"))),
    ("(?i)straße", any_of("straße", "straẞe")),
    ("(?i)123", "123"),
    ("(?s).abc", "abc"),
    ("(?m)^abc$", "abc"),
    ("(?U)a+bcd", "bcd"),
    ("(?i)a|(?-i)BCD", None),
    # not modelled: no condition, so a scan
    ("\\Qabc\\E", None),
    ("\\0abc", None),
    ("abc\\x00", "abc"),
]


@pytest.mark.parametrize(("pattern", "expected"), CASES, ids=[c[0] for c in CASES])
def test_required_literals(pattern: str, expected: Condition) -> None:
    compile_pattern(pattern)  # every case is a valid RE2 pattern
    assert required(pattern) == expected


@pytest.mark.parametrize(
    ("literals", "query"),
    [
        ("abc", '"abc"'),
        ("hello", '("hel" AND "llo")'),
        ("throughput", '("hpu" AND "oug" AND "put" AND "thr")'),
        ('a"bc', '("""bc" AND "a""b")'),
        ("NEAR", '("EAR" AND "NEA")'),
        (all_of("AND", "x*y"), '("AND" AND "x*y")'),
        (any_of("foo", "bar"), '("bar" OR "foo")'),
        (all_of(any_of("foo", "bar"), "baz"), '("baz" AND ("bar" OR "foo"))'),
        ("a" * 40, '"aaa"'),
        (
            "abcdefghijklmnopqrstuvwxyz0123456789",
            '("abc" AND "def" AND "ghi" AND "jkl" AND "mno" AND "pqr" AND "stu" AND "vwx")',
        ),
    ],
)
def test_fts_query(literals: str | And | Or, query: str) -> None:
    assert SQLite().search("content", literals) == query


def test_only_k_and_s_have_case_variants_outside_ascii_among_ascii_letters() -> None:
    # Why an ASCII letter under (?i) may be looked up lowercased: the index folds the Kelvin sign
    # to k and the long s to s (test_index_folds_case_as_the_prefilter_assumes).
    extra = {
        letter: case_variants(letter) - {letter.lower(), letter.upper()}
        for letter in "abcdefghijklmnopqrstuvwxyz"
    }
    assert {k: v for k, v in extra.items() if v} == {"k": {"\u212a"}, "s": {"\u017f"}}


@pytest.fixture(scope="module")
def index() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.execute(
        "CREATE VIRTUAL TABLE search USING fts5(content, tokenize='trigram', detail='none')"
    )
    yield connection
    connection.close()


def found(index: sqlite3.Connection, text: str, condition: Condition) -> bool:
    """Whether the index finds `text` for `condition` (its content column)."""
    assert condition is not None
    index.execute("DELETE FROM search")
    index.execute("INSERT INTO search(content) VALUES (?)", (text,))
    query = SQLite().search("content", condition)
    (count,) = index.execute(
        "SELECT count(*) FROM search WHERE search MATCH ?", (query,)
    ).fetchone()
    return bool(count == 1)


def test_index_folds_case_as_the_prefilter_assumes(index: sqlite3.Connection) -> None:
    assert found(index, "\u212aelvin", "kelvin")
    assert found(index, "ma\u017f\u017five", "massive")
    assert found(index, "HELLO", "hello")
    assert not found(index, "hello", "help")


# Patterns made of pieces where literals, case and special characters meet.
PIECES = (
    "abc",
    "ABC",
    "xyz",
    "Kelvin",
    "\u212a",
    "ss",
    "\u017f",
    "σοφ",
    "Σ",
    "ς",
    "éÉ",
    '"',
    "*",
    " AND ",
    "NEAR",
    ".",
    "\\d",
    "[ab]",
    "[^x]",
    "\\b",
    "^",
    "$",
    "\n",
)
# Classes and assertions stand as they are; other pieces are literal text.
SYNTAX = ("\\d", "[ab]", "[^x]", "\\b", "^", "$", ".")
# What a piece of text may become: itself, or another case of it (the Kelvin sign and the long s
# among them), so that `(?i)` patterns find texts and case-sensitive ones often do not.
VARIANTS = {"k": "\u212a", "K": "k", "s": "\u017f", "S": "s", "Σ": "ς"}


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str]:
    """A pattern of pieces, and a text that mostly repeats them as the pattern says, in varied
    case, so that many texts match."""
    pattern = draw(st.sampled_from(["", "(?i)", "(?s)", "(?is)"]))
    text = draw(st.sampled_from(["", "x", "Kelvin "]))
    for index in range(draw(st.integers(1, 6))):
        piece = draw(st.sampled_from(PIECES))
        times = {"": 1, "?": draw(st.integers(0, 1)), "+": draw(st.integers(1, 2)), "{2}": 2}
        quantifier = draw(st.sampled_from(["", "", "", "?", "+", "{2}"]))
        if index and draw(st.integers(0, 9)) == 0:
            pattern += "|"
        pattern += (piece if piece in SYNTAX else re2.escape(piece)) + quantifier
        if piece in SYNTAX:
            piece = draw(st.sampled_from(["a", "b", "1", " ", "\n", ""]))
        change = draw(st.sampled_from(["same", "same", "same", "upper", "lower", "variants"]))
        if change == "upper":
            piece = piece.upper()
        elif change == "lower":
            piece = piece.lower()
        elif change == "variants":
            piece = "".join(VARIANTS.get(char, char) for char in piece)
        text += piece * times[quantifier]
    return pattern, text + draw(st.sampled_from(["", "y", "\n"]))


def holds(condition: Condition, text: str) -> bool:
    """`condition` on `text`, folding case as the index does (for the characters used here)."""

    def fold(value: str) -> str:
        # Character by character, as the index folds: `str.lower` of a whole string writes a
        # word-final capital sigma as the final sigma, which no index folding does.
        return "".join(char.lower() for char in value).replace("\u017f", "s")

    if condition is None:
        return True
    if isinstance(condition, str):
        return fold(condition) in fold(text)
    if isinstance(condition, And):
        return all(holds(part, text) for part in condition.parts)
    return any(holds(part, text) for part in condition.parts)


@settings(max_examples=500, deadline=None)
@given(case=cases())
def test_every_match_holds_the_required_literals(case: tuple[str, str]) -> None:
    pattern, text = case
    if compile_pattern(pattern).search(text) is not None:
        assert holds(required(pattern), text)


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_the_index_finds_every_match(index: sqlite3.Connection, case: tuple[str, str]) -> None:
    pattern, text = case
    condition = required(pattern)
    if condition is not None and compile_pattern(pattern).search(text) is not None:
        assert found(index, text, condition)

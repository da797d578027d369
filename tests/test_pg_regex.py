"""RE2 patterns translated for PostgreSQL match exactly what RE2 matches.

The translation is checked three ways: its exact text for each construct; one character at a time
over every code point, RE2 against a real PostgreSQL; and whole patterns (a fixed list, then random
ones from a small RE2 grammar) against many subjects, under several collations, since the meaning
must not depend on the database locale.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import chain, product

import psycopg
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.errors import InvalidRegularExpression
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError

from ayeto.errors import QUERY_TIMEOUT, AyetoError, BadRequest, QueryTimeout
from ayeto.patterns import PatternError, compile_pattern, search
from ayeto.pg_regex import to_postgres
from ayeto.store.dialects import PostgreSQL

POSTGRES_URL = os.environ.get(
    "AYETO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# The database default, a byte-order one, and ICU ones (Turkish folds i and I differently).
COLLATIONS = ("default", "C", "und-x-icu", "tr-TR-x-icu")

W = "[0-9A-Z_a-z]"
WORD_BOUNDARY = f"(?:(?<={W})(?!{W})|(?<!{W})(?={W}))"
NOT_WORD_BOUNDARY = f"(?:(?<={W})(?={W})|(?<!{W})(?!{W}))"
NON_ASCII = r"[^\u0001-\u007f]"

TRANSLATIONS = [
    # Literals: ASCII letters and digits as they are, ARE-special characters escaped, everything
    # else by code point.
    ("", ""),
    ("abc", "abc"),
    ("a b_c", "a b_c"),
    (r"\.\*\+\?\(\)\[\]\{\}\|\^\$\\\-", r"\.\*\+\?\(\)\[\]\{\}\|\^\$\\\-"),
    ("#%&'/:;<=>@`~\"!,", "#%&'/:;<=>@`~\"!,"),
    ("é😀", r"\u00e9\U0001f600"),
    (r"\x41\x{1F600}\101\060\n\t\r\f\v\a", r"A\U0001f600A0\n\t\r\f\v\u0007"),
    (r"\Qa.b*\E+", r"a\.b\*+"),
    (r"\Q(unclosed", r"\(unclosed"),
    # `{` that is not a repetition is a literal, as in RE2.
    ("x{,3}", r"x\{,3\}"),
    ("x{01}", r"x\{01\}"),
    ("{", r"\{"),
    # `.` excludes only `\n`, unless (?s).
    ("a.b", r"a[^\n]b"),
    ("(?s)a.b", "a.b"),
    ("(?s:.)(?-s:.)", r".[^\n]"),
    # RE2's classes are ASCII; negated classes include `\n`.
    (r"\d\D", "[0-9][^0-9]"),
    (r"\w\W", "[0-9A-Z_a-z][^0-9A-Z_a-z]"),
    (r"\s\S", r"[\t\n\f\r ][^\t\n\f\r ]"),
    ("[[:alpha:]][[:^alpha:]]", "[A-Za-z][^A-Za-z]"),
    ("[[:space:]]", r"[\t-\r ]"),
    ("[[:punct:]]", r"[!-/:-@\[-`\{-~]"),
    ("[[:word:][:^ascii:]]", r"[^\u0001-/:-@\[-\^`\{-\u007f]"),
    ("[^a]", "[^a]"),
    ("[]a]", r"[\]a]"),
    ("[^]a]", r"[^\]a]"),
    ("[a-]", r"[\-a]"),
    ("[a-b-c]", r"[\-a-c]"),
    (r"[\d\-x]", r"[\-0-9x]"),
    ("[[:alpha]", r"[:\[ahlp]"),
    ("[é-ü]", r"[\u00e9-\u00fc]"),
    (r"[\x00-\x{10FFFF}]", "."),
    (r"[^\x00-\x{10FFFF}]", "(?!)"),
    (r"a\x00", "a(?!)"),
    (r"[\x{D7FF}\x{E000}]", r"[\ud7ff-\ue000]"),
    # Case folding is RE2's (Unicode simple folding), written out.
    ("(?i)hello", "[Hh][Ee][Ll][Ll][Oo]"),
    ("(?i)k", r"[Kk\u212a]"),
    ("(?i)s", r"[Ss\u017f]"),
    ("(?i)é", r"[\u00c9\u00e9]"),
    ("(?i)ǅ", r"[\u01c4-\u01c6]"),
    ("(?i)\u03c3", r"[\u03a3\u03c2\u03c3]"),
    ("(?i)1", "1"),
    ("(?i)[a-c]", "[A-Ca-c]"),
    ("(?i)[^k]", r"[^Kk\u212a]"),
    (r"(?i)\W", r"[^0-9A-Z_a-z\u017f\u212a]"),
    (r"(?i)[[:upper:]]", r"[A-Za-z\u017f\u212a]"),
    ("a(?i)b(?-i)c", "a[Bb]c"),
    ("(a(?i)b)c", "a[Bb]c"),
    ("a(?i)b|c", "a[Bb]|[Cc]"),
    ("(?i:a)b", "[Aa]b"),
    # Anchors.
    ("^a$", "^a$"),
    (r"\Aa\z", "^a$"),
    ("(?m)^a$", r"(?:^|(?<=\n))a(?:$|(?=\n))"),
    ("(?m:^)^", r"(?:^|(?<=\n))^"),
    (r"\bfoo\B", f"{WORD_BOUNDARY}foo{NOT_WORD_BOUNDARY}"),
    # RE2 also tries the positions between the UTF-8 bytes of a character, where only `\B` holds.
    (r"\B", f"{NOT_WORD_BOUNDARY}|{NON_ASCII}"),
    (r"x*\B", f"x*{NOT_WORD_BOUNDARY}|{NON_ASCII}"),
    (r"\B|a", f"{NOT_WORD_BOUNDARY}|a|{NON_ASCII}"),
    (r"(?:\B)+(?:\B|^)", f"{NOT_WORD_BOUNDARY}(?:{NOT_WORD_BOUNDARY}|^)|{NON_ASCII}"),
    (r"\B\b", f"{NOT_WORD_BOUNDARY}{WORD_BOUNDARY}"),
    (r"\B$", f"{NOT_WORD_BOUNDARY}$"),
    (r"x*|\B", f"x*|{NOT_WORD_BOUNDARY}"),
    # Groups become non-capturing, and only where needed.
    ("(a)", "a"),
    ("(ab)", "ab"),
    ("(?P<first>a)(?<second>b)", "ab"),
    ("(a|b)c", "(?:a|b)c"),
    ("a|b|", "a|b|"),
    ("()", ""),
    ("(|a)", "|a"),
    # Quantifiers: greedy, bounded by 255, and dropped on what is only empty-width.
    ("a*b+c?", "a*b+c?"),
    ("a*?b+?c??", "a*b+c?"),
    ("(?U)a+", "a+"),
    ("a{2}b{2,}c{2,5}d{0,1}", "a{2}b{2,}c{2,5}d?"),
    ("a{1}", "a"),
    ("a{0}", ""),
    ("a{0,0}b", "b"),
    ("(ab)*", "(?:ab)*"),
    ("(a*)*", "(?:a*)*"),
    ("(a|b)+", "(?:a|b)+"),
    ("[ab]{3}", "[ab]{3}"),
    ("a(?i)*", "a*"),
    ("a{255}", "a{255}"),
    ("^*a", "a"),
    (r"\b+a", f"{WORD_BOUNDARY}a"),
    ("(?:^$){0,1000}", ""),
    ("(?:^$){1000}", "^$"),
    ("(a{0})+", ""),
]


@pytest.mark.parametrize(("pattern", "expected"), TRANSLATIONS)
def test_translation(pattern: str, expected: str) -> None:
    assert to_postgres(pattern) == expected


REFUSALS = [
    (r"\C", r"\C is not supported"),
    (r"a\C*b", r"\C is not supported"),
    ("a{256}", "{256} is not supported (repetition counts above 255)"),
    ("(ab){2,300}", "{2,300} is not supported (repetition counts above 255)"),
    ("a{1000,}?", "{1000,} is not supported (repetition counts above 255)"),
    (
        "(?i)" + "".join(rf"[\x{{{lo:x}}}-\x{{10FFFE}}]" for lo in range(0x100, 0x104)),
        "(?i) over character ranges this large is not supported",
    ),
    (
        r"\pL" * 30,
        "the pattern is too large for PostgreSQL once its classes are spelled out"
        " (over 262144 characters)",
    ),
    # Not RE2 at all: RE2's own message.
    ("a**", "bad repetition operator: **"),
    ("(?<=a)b", "look-around is not supported (invalid perl operator: (?<=)"),
]


@pytest.mark.parametrize(("pattern", "message"), REFUSALS)
def test_refusal(pattern: str, message: str) -> None:
    with pytest.raises(PatternError) as caught:
        to_postgres(pattern)
    assert str(caught.value) == message


@pytest.fixture(scope="module")
def postgres() -> Iterator[psycopg.Connection]:
    """A connection to the test PostgreSQL; if it cannot be reached, these tests fail."""
    conninfo = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        yield connection


def postgres_matches(
    connection: psycopg.Connection, pairs: list[tuple[str, str]], collation: str = "default"
) -> list[bool]:
    """`subject ~ translation` for each (subject, RE2 pattern) pair, in one query."""
    subjects = [subject for subject, _ in pairs]
    translations = [to_postgres(pattern) for _, pattern in pairs]
    query = sql.SQL(
        "SELECT (s COLLATE {}) ~ p FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY"
        " AS t(s, p, n) ORDER BY n"
    ).format(sql.Identifier(collation))
    rows = connection.execute(query, (subjects, translations)).fetchall()
    return [row[0] for row in rows]


# One character at a time: every code point a text can hold, through RE2 and through PostgreSQL.
SINGLE_CHARACTERS = [
    ".",
    "(?s).",
    "[^a]",
    *(rf"\{c}" for c in "dDwWsS"),
    *(f"[[:{name}:]]" for name in ("alnum", "alpha", "ascii", "blank", "cntrl", "digit")),
    *(f"[[:{name}:]]" for name in ("graph", "lower", "print", "punct", "space", "upper")),
    "[[:word:]]",
    "[[:xdigit:]]",
    "[[:^alpha:]]",
    r"\pL",
    r"\p{Lu}",
    r"\PL",
    r"\pN",
    r"\p{Greek}",
    r"\p{^Greek}",
    r"\P{^Han}",
    r"\p{Any}",
    r"[\p{Greek}\d_]",
    r"[^\p{Cyrillic}\s]",
    r"[\x{80}-\x{10FFFF}]",
    r"[\x00-\x{10FFFF}]",
    r"[\s\S]",
    r"\x{212A}",
    "(?i)k",
    "(?i)s",
    "(?i)é",
    "(?i)ǅ",
    "(?i)\u03c3",
    "(?i)ß",
    "(?i)İ",
    r"(?i)\x{10400}",
    "(?i)[a-z]",
    "(?i)[^a-z]",
    r"(?i)\w",
    r"(?i)\W",
    r"(?i)\S",
    r"(?i)\D",
    "(?i)[[:upper:]]",
    "(?i)[[:^lower:]]",
    r"(?i)\p{Lu}",
    r"(?i)\P{Lu}",
    r"(?i)\p{Greek}",
    r"(?i)[^\p{Lu}k]",
    r"(?i)[\x{100}-\x{10FFFF}]",
    r"(?i)[^\x{80}-\x{24F}]",
    r"(?i)[\s\S]",
]


@pytest.fixture(scope="module")
def every_character(postgres: psycopg.Connection) -> str:
    """Every code point but NUL and the surrogates, in order; also in a temporary table."""
    postgres.execute(
        "CREATE TEMPORARY TABLE every_character AS"
        " SELECT string_agg(chr(c), '' ORDER BY c) AS text FROM generate_series(1, 1114111) AS c"
        " WHERE c NOT BETWEEN 55296 AND 57343"
    )
    return "".join(map(chr, chain(range(1, 0xD800), range(0xE000, 0x110000))))


@pytest.mark.parametrize("pattern", SINGLE_CHARACTERS)
def test_single_character_sets(
    pattern: str, postgres: psycopg.Connection, every_character: str
) -> None:
    # Deleting every match leaves exactly the code points the pattern does not match.
    kept_by_re2 = compile_pattern(f"(?:{pattern})+").sub("", every_character)
    row = postgres.execute(
        "SELECT regexp_replace(text, %s, '', 'g') FROM every_character",
        (f"(?:{to_postgres(pattern)})+",),
    ).fetchone()
    assert row is not None
    kept_by_postgres = row[0]
    if kept_by_postgres != kept_by_re2:
        differing = sorted(set(kept_by_re2) ^ set(kept_by_postgres))
        pytest.fail(f"RE2 and PostgreSQL differ on {[f'U+{ord(c):04X}' for c in differing[:20]]}")


SUBJECTS = [
    "",
    " ",
    "a",
    "A",
    "b",
    "abc",
    "ABC",
    "aBc",
    "xabcx",
    "aaa",
    "aaaaaaaa",
    "ab" * 5,
    "a\nb",
    "a\n",
    "\na",
    "\n",
    "\r\n",
    "a\r\nb",
    "a\r",
    "foo bar",
    "foo_bar",
    "foo-bar",
    "foobar",
    "Foo",
    "x1",
    "123",
    "٣",
    "é",
    "É",
    "café",
    "CAFÉ",
    "aé",
    "éa",
    "ß",
    "ẞ",
    "ǅ",
    "ǆ",
    "k",
    "K",
    "\u212a",
    "s",
    "S",
    "\u017f",
    "\u03c3",
    "Σ",
    "ς",
    "İ",
    "\u0131",
    "i",
    "I",
    "😀",
    "a😀b",
    "\t",
    "\x0b",
    "\f",
    "\u00a0",
    "\u2028",
    "x{,3}",
    "a.b",
    "a*b",
    "[]",
    "\\",
    "日本語",
    "Ωω",
    "ﬀ",
    "\u2160",
    "ⓐ",
    "Ⓐ",
    "_",
    "a_b",
    "é_",
    "foo\n",
    "\nfoo",
    "\x7f",
    "\U0010ffff",
]

PATTERNS = [
    *(pattern for pattern, _ in TRANSLATIONS),
    *SINGLE_CHARACTERS,
    # Anchors and lines.
    "^$",
    "^",
    "$",
    "a$",
    "^a",
    "(?m)^$",
    "(?m)^a$",
    "(?m)^b",
    "(?m)a$",
    "(?m)$\n",
    "(?m)\n^",
    "(?m)^\n$",
    r"\A\z",
    r"(?m)\Aa\z",
    "(?m:^)a",
    "a(?m:$)",
    "^^a$$",
    "a^",
    "$a",
    # Word boundaries are ASCII.
    r"\b",
    r"\B",
    r"\ba",
    r"a\b",
    r"\Ba",
    r"a\B",
    r"\bé",
    r"é\b",
    r"\b\B",
    r"\b.\b",
    r"(?:\ba)+",
    r"(?:a\b|\Bb)*c",
    r"\b_",
    r"(?:\B)*",
    r"x*\B",
    r"\B\B",
    r"\B(?:a|\b)",
    r"\B.",
    r"(?m)\B^",
    # Dots and newlines.
    ".",
    "..",
    "^.$",
    "^.*$",
    "(?s)^.*$",
    "^.+$",
    "a.*b",
    "(?s)a.*b",
    "[^x]",
    "^[^x]$",
    r"^\D$",
    r"^\W$",
    r"^\S$",
    # Case folding.
    "(?i)café",
    "(?i)CAFÉ",
    "(?i)ß",
    "(?i)ẞ",
    "(?i)i",
    "(?i)\u0131",
    "(?i)İ",
    "(?i)ω",
    "(?i)ⓐ",
    "(?i)\u2170",
    "(?i)foo|bar",
    "foo(?i:BAR)",
    "(?i)[é-ü]",
    "(?i)[^é]",
    r"(?i)\bk",
    # Repetition.
    "^a{3}$",
    "^a{2,4}$",
    "^a{2,}$",
    "^(ab){2}$",
    "^(a|b)*$",
    "^(?:a?){5}a{5}$",
    "a{0}b",
    "(a*)+$",
    "^(?:$|a)*a",
    "(?:^|a)+b",
    "(?:a|^)*$",
    # Unicode classes.
    r"^\pL+$",
    r"^\p{Lu}",
    r"\pN",
    r"^\PL",
    r"\p{Han}",
    r"\p{Greek}+",
    r"(?i)^\p{Ll}$",
]


@pytest.mark.parametrize("collation", COLLATIONS)
def test_patterns_agree_with_re2(collation: str, postgres: psycopg.Connection) -> None:
    pairs = list(product(SUBJECTS, [p for p in dict.fromkeys(PATTERNS) if _translatable(p)]))
    expected = [search(pattern, subject) for subject, pattern in pairs]
    got = postgres_matches(postgres, pairs, collation)
    assert [pair for pair, a, b in zip(pairs, expected, got, strict=True) if a != b] == []
    # Both answers are common, so the agreement says something.
    assert 0.1 < sum(expected) / len(expected) < 0.9


def _translatable(pattern: str) -> bool:
    try:
        to_postgres(pattern)
    except PatternError:
        return False
    return True


# Random patterns from a small RE2 grammar, with subjects from the same characters.
LITERALS = [
    "a", "b", "k", "s", "K", "S", "é", "ß", "ǅ", "\u03c3", "٣", "😀", " ", "_", "0", "-", ",", "{",
    "}", r"\n", r"\r", r"\.", r"\*", r"\(", r"\\", r"\x{212A}", r"\x41", r"\101", r"\Q.*\E",
]  # fmt: skip
CLASS_ITEMS = [
    "a", "b-k", "A-Z", "0-9", "k", "é", "ß-ǅ", r"\d", r"\w", r"\s", r"\W", r"\S", r"\D",
    "[:alpha:]", "[:^space:]", "[:upper:]", r"\pL", r"\p{Greek}", r"\PN", r"\n", r"\-", r"\]",
    "_", ".", "^", r"\x{212A}", r"\x{100}-\x{24F}",
]  # fmt: skip
SINGLES = [".", r"\d", r"\w", r"\s", r"\W", r"\S", r"\D", r"\pL", r"\p{Lu}", r"\PL"]
ANCHORS = ["^", "$", r"\A", r"\z", r"\b", r"\B"]
FLAGS = ["(?i)", "(?m)", "(?s)", "(?-i)", "(?U)", "(?im)", "(?is)", "(?-m)"]
GROUPS = ["(", "(?:", "(?i:", "(?m:", "(?s:", "(?-i:", "(?is:"]
QUANTIFIERS = ["*", "+", "?", "*?", "+?", "{2}", "{0,2}", "{1,3}", "{2,}", "{0}", "{1}"]
SUBJECT_CHARACTERS = "aAbBkK\u212asS\u017féÉßẞǅǆ\u03c3Σς٣😀 _0-,{}\n\r.*(\\xyz"

classes = st.builds(
    lambda negated, items: "[" + "^" * negated + "".join(items) + "]",
    st.booleans(),
    st.lists(st.sampled_from(CLASS_ITEMS), min_size=1, max_size=3),
)
atoms = st.one_of(st.sampled_from(LITERALS), st.sampled_from(SINGLES), classes)


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    group = st.builds(lambda opening, body: f"{opening}{body})", st.sampled_from(GROUPS), inner)
    quantified = st.builds(
        lambda body, quantifier: body + quantifier,
        st.one_of(atoms, st.sampled_from(ANCHORS), group),
        st.sampled_from(QUANTIFIERS),
    )
    sequence = st.lists(st.one_of(inner, st.sampled_from(FLAGS)), min_size=2, max_size=4)
    alternation = st.lists(inner, min_size=2, max_size=3)
    return st.one_of(
        group,
        quantified,
        sequence.map("".join),
        alternation.map("|".join),
    )


patterns = st.recursive(st.one_of(atoms, st.sampled_from(ANCHORS)), _extend, max_leaves=8)
subject_lists = st.lists(st.text(alphabet=SUBJECT_CHARACTERS, max_size=6), min_size=10, max_size=20)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pattern=patterns,
    subjects=subject_lists,
    collation=st.sampled_from(COLLATIONS),
)
def test_random_patterns_agree_with_re2(
    pattern: str, subjects: list[str], collation: str, postgres: psycopg.Connection
) -> None:
    try:
        compile_pattern(pattern)
    except PatternError:
        assume(False)
    # Nothing in this grammar is refused: every pattern must translate.
    pairs = [(subject, pattern) for subject in ["", "\n", *subjects]]
    expected = [search(pattern, subject) for subject, _ in pairs]
    event(
        {0: "no subject matches", len(expected): "every subject matches"}.get(
            sum(expected), "some match"
        )
    )
    assert postgres_matches(postgres, pairs, collation) == expected


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        # The statement timeout, reached inside PostgreSQL's regex matcher.
        ("invalid regular expression: operation cancelled", QueryTimeout(QUERY_TIMEOUT)),
        (
            "invalid regular expression: regular expression is too complex",
            BadRequest(
                "invalid regex: PostgreSQL cannot run it: "
                "invalid regular expression: regular expression is too complex"
            ),
        ),
    ],
)
def test_a_regex_postgresql_stops_is_a_timeout_only_when_it_was_cancelled(
    message: str, answer: AyetoError
) -> None:
    failure = DataError("SELECT", {}, InvalidRegularExpression(message))
    translated = PostgreSQL().translate(failure)
    assert (type(translated), getattr(translated, "detail", None)) == (type(answer), answer.detail)

r"""What every match of an RE2 pattern must contain: required literals, for a trigram index.

A `regex` filter over messages is answered by asking a trigram index for the rows that contain
the literals every match must contain, and letting RE2 judge only those (the store, `sql`). The
literals are derived the way RE2's own prefilter does it (re2/prefilter.cc): each part of the
pattern yields either the *exact* set of strings it can match (small sets only), or a *match*
condition, an AND/OR of literals. Concatenation crosses exact sets, alternation unites them; a
set too large, a repetition that may be absent, a wide class or `.` gives up its exactness, and
what is left is a condition every matching text satisfies.

The parser covers RE2's syntax as `ayeto.patterns` accepts it; anything it does not know (octal
escapes, `\Q...\E`, unusual groups) makes the whole pattern "no usable literal", which only costs
a scan, never a wrong answer. Literals shorter than `MIN_LITERAL` characters cannot be looked up
in a trigram index, so they count as no condition at all.

Under `(?i)` an ASCII letter is kept lowercased: the index folds case (SQLite's FTS5 trigram
tokenizer maps each code point to its lowercase, the Kelvin sign to `k` and the long s to `s`, the
other members of RE2's case orbits of `k` and `s`), so one lookup finds every case variant. Any
other character under `(?i)` stands for each member of its RE2 case orbit, as separate strings:
the index need not fold them alike (it keeps the Greek final sigma apart from the sigma).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Final

from ayeto.pg_regex import case_variants

# Trigrams: a shorter literal has no trigram to look up.
MIN_LITERAL: Final = 3
# The largest exact set kept, as in RE2; beyond it the set becomes a condition.
MAX_EXACT: Final = 16
# The largest character class spelled out as an exact set of its characters.
MAX_CLASS: Final = 4


@dataclass(frozen=True, slots=True)
class And:
    parts: frozenset[Required]


@dataclass(frozen=True, slots=True)
class Or:
    parts: frozenset[Required]


# A literal the text must contain (case-folded where the pattern ignores case), or all of some
# conditions, or one of them. `None` is no condition: any text may match.
Required = str | And | Or
Condition = Required | None


class _Unsupported(Exception):
    """Syntax the parser does not model: the pattern gets no condition."""


@lru_cache(maxsize=512)
def required(pattern: str) -> Condition:
    """What every text `pattern` (a valid RE2 pattern) finds a match in must contain."""
    try:
        info = _Parser(pattern).parse()
    except _Unsupported:
        return None
    return _to_condition(info)


# -- conditions ------------------------------------------------------------------------------


def _all(parts: list[Condition]) -> Condition:
    kept: set[Required] = set()
    for part in parts:
        if isinstance(part, And):
            kept |= part.parts
        elif part is not None:
            kept.add(part)
    # A literal inside another literal of the same AND adds nothing.
    literals = {p for p in kept if isinstance(p, str)}
    kept -= {s for s in literals if any(s != t and s in t for t in literals)}
    if not kept:
        return None
    return next(iter(kept)) if len(kept) == 1 else And(frozenset(kept))


def _any(parts: list[Condition]) -> Condition:
    kept: set[Required] = set()
    for part in parts:
        if part is None:
            return None  # one alternative holds for any text
        kept |= part.parts if isinstance(part, Or) else {part}
    # An alternative containing another literal alternative adds nothing.
    literals = {p for p in kept if isinstance(p, str)}
    kept -= {t for t in literals if any(s != t and s in t for s in literals)}
    return next(iter(kept)) if len(kept) == 1 else Or(frozenset(kept))


def _from_exact(strings: frozenset[str]) -> Condition:
    if any(len(s) < MIN_LITERAL for s in strings):
        return None  # a short alternative: some matches hold no usable literal
    return _any(list(strings))


# -- what a part of a pattern matches ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Info:
    """What a part of a pattern matches: a condition on what it settled, then exact strings.

    `exact` is the set of strings the part's match ends with (all of it when `match` is None), or
    None where its end is not exact; the strings are kept open so that the next part's extend
    them (`ab` then `c` is `abc`).
    """

    match: Condition
    exact: frozenset[str] | None


_ANY = _Info(None, None)
_EMPTY = _Info(None, frozenset({""}))


def _to_condition(info: _Info) -> Condition:
    if info.exact is None:
        return info.match
    return _all([info.match, _from_exact(info.exact)])


def _concat(left: _Info, right: _Info) -> _Info:
    if (
        right.match is None
        and left.exact is not None
        and right.exact is not None
        and len(left.exact) * len(right.exact) <= MAX_EXACT
    ):
        return _Info(left.match, frozenset(a + b for a, b in product(left.exact, right.exact)))
    settled = None if left.exact is None else _from_exact(left.exact)
    return _Info(_all([left.match, settled, right.match]), right.exact)


def _alternate(left: _Info, right: _Info) -> _Info:
    if left.match is None is right.match and left.exact is not None and right.exact is not None:
        union = left.exact | right.exact
        if len(union) <= MAX_EXACT:
            return _Info(None, union)
    return _Info(_any([_to_condition(left), _to_condition(right)]), None)


def _optional(info: _Info) -> _Info:
    """`x?`: the exact strings of `x`, or nothing."""
    if info.match is None and info.exact is not None and len(info.exact) < MAX_EXACT:
        return _Info(None, info.exact | {""})
    return _ANY


# -- the parser ------------------------------------------------------------------------------

# What a one-character escape means where it is not a literal: a class (no condition) or a
# zero-width assertion (the empty string).
_CLASS_ESCAPES: Final = frozenset("dDsSwWpPC")
_ASSERTIONS: Final = frozenset("bBAz")
_CONTROL: Final = {"a": "\a", "f": "\f", "t": "\t", "n": "\n", "r": "\r", "v": "\v"}
_PUNCTUATION: Final = frozenset(string.punctuation)
_FLAGS: Final = frozenset("imsU")


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.at = 0

    def parse(self) -> _Info:
        info = self._alternation(fold=False)
        if self.at != len(self.text):
            raise _Unsupported
        return info

    def _peek(self) -> str | None:
        return self.text[self.at] if self.at < len(self.text) else None

    def _take(self) -> str:
        if self.at >= len(self.text):
            raise _Unsupported
        char = self.text[self.at]
        self.at += 1
        return char

    def _alternation(self, fold: bool) -> _Info:
        # Flags set by `(?i)` inside a group last to the group's end, across its alternatives.
        state = [fold]
        info = self._sequence(state)
        while self._peek() == "|":
            self.at += 1
            info = _alternate(info, self._sequence(state))
        return info

    def _sequence(self, state: list[bool]) -> _Info:
        info = _EMPTY
        while (char := self._peek()) is not None and char not in "|)":
            info = _concat(info, self._repeated(state))
        return info

    def _repeated(self, state: list[bool]) -> _Info:
        info = self._atom(state)
        while True:
            char = self._peek()
            if char in ("*", "?", "+"):
                self.at += 1
                bounds = {"*": (0, None), "?": (0, 1), "+": (1, None)}[char]
            elif char == "{" and (found := self._bounds()) is not None:
                bounds = found
            else:
                return info
            if self._peek() == "?":
                self.at += 1  # lazy: which match is found, never whether one is
            if bounds == (0, 1):
                info = _optional(info)
            elif bounds[0] == 0:
                info = _ANY
            else:
                # At least one occurrence: whatever one occurrence must contain.
                info = _Info(_to_condition(info), None)

    def _bounds(self) -> tuple[int, int | None] | None:
        """The bounds of `{n}`, `{n,}` or `{n,m}` here; None where `{` is a literal."""
        end = self.text.find("}", self.at)
        if end < 0:
            return None
        inside = self.text[self.at + 1 : end]
        low, comma, high = inside.partition(",")
        if not _number(low) or (high and not _number(high)):
            return None
        self.at = end + 1
        if not comma:
            return int(low), int(low)
        return int(low), int(high) if high else None

    def _atom(self, state: list[bool]) -> _Info:
        char = self._take()
        if char == "(":
            return self._group(state)
        if char == "[":
            return self._class(state[0])
        if char in "^$":
            return _EMPTY
        if char == ".":
            return _ANY
        if char == "\\":
            return self._escape(state[0])
        if char in "*+?)":
            raise _Unsupported  # refused by RE2 already; not reached for a valid pattern
        return _literal(char, state[0])

    def _group(self, state: list[bool]) -> _Info:
        fold = state[0]
        if self._peek() == "?":
            self.at += 1
            if self._peek() in ("P", "<"):
                if self._take() == "P" and self._take() != "<":
                    raise _Unsupported
                end = self.text.find(">", self.at)
                if end < 0:
                    raise _Unsupported
                self.at = end + 1
            else:
                fold = self._flags(fold)
                if self._take() == ")":
                    state[0] = fold  # `(?i)`: to the end of the enclosing group
                    return _EMPTY
        info = self._alternation(fold)
        if self._take() != ")":
            raise _Unsupported
        return info

    def _flags(self, fold: bool) -> bool:
        """Read `i-m...` up to `:` or `)` (left unread); the case-folding flag after them."""
        on = True
        while (char := self._peek()) not in (":", ")"):
            self.at += 1
            if char == "-":
                on = False
            elif char == "i":
                fold = on
            elif char not in _FLAGS:
                raise _Unsupported
        return fold

    def _escape(self, fold: bool) -> _Info:
        char = self._take()
        if char in _CLASS_ESCAPES:
            if char in "pP" and self._peek() == "{":
                end = self.text.find("}", self.at)
                if end < 0:
                    raise _Unsupported
                self.at = end + 1
            elif char in "pP":
                self._take()
            return _ANY
        if char in _ASSERTIONS:
            return _EMPTY
        return _literal(self._escaped(char), fold)

    def _escaped(self, char: str) -> str:
        """The character `\\` + `char`... stands for, outside or inside a class."""
        if char in _CONTROL:
            return _CONTROL[char]
        if char == "x":
            if self._peek() == "{":
                end = self.text.find("}", self.at)
                digits = self.text[self.at + 1 : end] if end > 0 else ""
                self.at = end + 1
            else:
                digits = self.text[self.at : self.at + 2]
                self.at += 2
            if not digits or not all(d in string.hexdigits for d in digits):
                raise _Unsupported
            return chr(int(digits, 16))
        if char in _PUNCTUATION:
            return char
        raise _Unsupported  # octal, \Q...\E, \z inside a class and the like

    def _class(self, fold: bool) -> _Info:
        """A small class of literal characters is their exact set; any other, no condition."""
        negated = self._peek() == "^"
        if negated:
            self.at += 1
        members: set[str] = set()
        simple = not negated
        first = True
        while True:
            char = self._take()
            if char == "]" and not first:
                break
            first = False
            if char == "[" and self._peek() == ":":
                end = self.text.find(":]", self.at)
                if end < 0:
                    raise _Unsupported
                self.at = end + 2
                simple = False
                continue
            if char == "\\":
                escape = self._take()
                if escape in _CLASS_ESCAPES or escape in "pP":
                    if escape in "pP":
                        if self._peek() == "{":
                            self.at = self.text.index("}", self.at) + 1
                        else:
                            self._take()
                    simple = False
                    continue
                char = self._escaped(escape)
            if self._peek() == "-" and self.text[self.at + 1 : self.at + 2] not in ("]", ""):
                self.at += 1
                if self._take() == "\\":
                    self._escaped(self._take())
                simple = False
                continue
            members.add(char)
        if not simple or len(members) > MAX_CLASS:
            return _ANY
        strings: set[str] = set()
        for member in members:
            info = _literal(member, fold)
            if info.exact is None:
                return _ANY
            strings |= info.exact
        return _Info(None, frozenset(strings))


def _literal(char: str, fold: bool) -> _Info:
    if char == "\0":
        return _ANY  # no stored text holds NUL, and an FTS5 query would end at it
    if not fold:
        return _Info(None, frozenset({char}))
    if char.isascii():
        return _Info(None, frozenset({char.lower()}))
    variants = case_variants(char)
    return _Info(None, variants) if len(variants) <= MAX_CLASS else _ANY


def _number(text: str) -> bool:
    return text.isascii() and text.isdecimal()


__all__ = ["MIN_LITERAL", "And", "Condition", "Or", "Required", "required"]

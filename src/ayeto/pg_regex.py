r"""RE2 patterns as PostgreSQL regular expressions (AREs) that match exactly the same texts.

A `regex` filter means RE2's unanchored search on every backend (DESIGN.md, "Contract decisions").
PostgreSQL's own engine would answer differently in many places: its `.` and `[^...]` match a
newline, its `\w \d \s`, word boundaries and case-insensitive matching follow the database
locale (with `C.UTF-8`, `'é' ~ '\w'` is true), its `\b` is a backspace, and it has no multi-line
anchors. So the translation never leans on a PostgreSQL class, flag or locale:

- every construct that matches one character (literal, `.`, `[...]`, `\d`, `[[:alpha:]]`,
  `\pL`, anything under `(?i)`) becomes an explicit set of code points, by RE2's rules. Unicode
  classes and case folding come from RE2 itself, asked which code points it matches, so they are
  always those of the RE2 that SQLite uses;
- `^ $ \A \z` become `^ $` (start and end of the text in an ARE without flags); the multi-line
  `(?m)^ (?m)$` and the ASCII word boundaries `\b \B` become look-around over explicit sets;
- RE2 works on UTF-8 bytes and also tries the positions inside a character, where `\B` holds:
  a pattern that can match there matches any text with a non-ASCII character;
- groups become non-capturing, and lazy quantifiers (and `(?U)`) greedy: preference decides which
  match is found, never whether there is one.

Refused, with a `PatternError` that names the construct: `\C` (one byte, which may split a
character), repetition counts above PostgreSQL's limit of 255, case folding of ranges so large
that computing it would cost more than the query, and patterns that grow too large once their
classes are spelled out.

The output is for the case-sensitive `~` operator in a UTF8 database, and is plain ASCII: other
characters are written `\uXXXX` / `\UXXXXXXXX`. A PostgreSQL text never holds NUL or a surrogate,
so sets are free to include or leave out those code points.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from itertools import chain
from typing import Final

import re2

from ayeto.patterns import OPTIONS, PatternError, compile_pattern

# A set of code points: sorted, disjoint, non-adjacent inclusive ranges.
Ranges = tuple[tuple[int, int], ...]

MAX_CODE_POINT: Final = 0x10FFFF
# PostgreSQL's DUPMAX: the largest count a bound `{m,n}` may hold.
MAX_REPEAT: Final = 255
# Case folding of a range is computed by scanning the code points RE2 may fold it to. Small ranges
# cost microseconds; this bounds the code points scanned for one pattern (about four times all of
# Unicode, tens of milliseconds), so that no pattern can make the translation expensive.
MAX_FOLD_SCAN: Final = 1 << 22
# A Unicode class is a long list of ranges (`\\pL` is 9 KB). This bounds what one pattern may grow
# to, and so the translations kept in the cache below: about thirty `\\pL`.
MAX_TRANSLATION: Final = 1 << 18

_SURROGATE_LOW, _SURROGATE_HIGH = 0xD800, 0xDFFF
# What a PostgreSQL text can hold: no NUL, no surrogates.
_PG_CHARACTERS: Final[Ranges] = ((1, _SURROGATE_LOW - 1), (_SURROGATE_HIGH + 1, MAX_CODE_POINT))
_NEWLINE: Final[Ranges] = ((0x0A, 0x0A),)

# RE2's ASCII classes (re2/perl_groups.cc), by escape or POSIX name: (ranges, negated).
_WORD: Final[Ranges] = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_DIGIT: Final[Ranges] = ((0x30, 0x39),)
_PERL_SPACE: Final[Ranges] = ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20))
_PERL_CLASSES: Final[dict[str, tuple[Ranges, bool]]] = {
    "\\d": (_DIGIT, False),
    "\\D": (_DIGIT, True),
    "\\s": (_PERL_SPACE, False),
    "\\S": (_PERL_SPACE, True),
    "\\w": (_WORD, False),
    "\\W": (_WORD, True),
}
_POSIX_CLASSES: Final[dict[str, Ranges]] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": _DIGIT,
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": _WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
_C_ESCAPES: Final[dict[str, int]] = {
    "a": 0x07,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
}
# Characters an ARE gives a meaning, in or out of a bracket expression; escaped with a backslash.
_ARE_SPECIAL: Final = frozenset("\\^$.[]|()*+?{}-")
_ARE_ESCAPES: Final[dict[int, str]] = {
    0x09: "\\t",
    0x0A: "\\n",
    0x0B: "\\v",
    0x0C: "\\f",
    0x0D: "\\r",
}

_QUANTIFIERS: Final[dict[str, tuple[int, int | None]]] = {
    "*": (0, None),
    "+": (1, None),
    "?": (0, 1),
}
# RE2's counted repetition: no leading zeros, at most nine digits (re2/parse.cc, ParseInteger).
_BOUNDS: Final = re.compile(r"\{(0|[1-9][0-9]{0,8})(,(0|[1-9][0-9]{0,8})?)?\}")
_OCTAL: Final = "01234567"
_EVERYTHING: Final[Ranges] = ((0, MAX_CODE_POINT),)
_MULTI_BYTE: Final[Ranges] = ((0x80, MAX_CODE_POINT),)


@lru_cache(maxsize=128)
def to_postgres(pattern: str) -> str:
    """The ARE that PostgreSQL's `~` matches against exactly the texts RE2 finds `pattern` in.

    Raises `PatternError` when `pattern` is not valid RE2, or when its meaning cannot be carried
    over; the message names the construct.
    """
    compile_pattern(pattern)
    return _Translator(pattern).translate()


# Set algebra.


def _normalized(ranges: Iterable[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _complement(ranges: Ranges) -> Ranges:
    gaps: list[tuple[int, int]] = []
    start = 0
    for lo, hi in ranges:
        if start < lo:
            gaps.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        gaps.append((start, MAX_CODE_POINT))
    return tuple(gaps)


def _intersection(a: Ranges, b: Ranges) -> Ranges:
    return _complement(_normalized(chain(_complement(a), _complement(b))))


# Asking RE2 which code points a one-character pattern matches.


@cache
def _every_character() -> str:
    """Every code point but the surrogates, in order: the text RE2 is asked about."""
    code_points = array("I", chain(range(_SURROGATE_LOW), range(_SURROGATE_HIGH + 1, 0x110000)))
    return code_points.tobytes().decode("utf-32-le" if sys.byteorder == "little" else "utf-32-be")


def _index(code_point: int) -> int:
    """The position of `code_point` (not a surrogate) in `_every_character()`."""
    return code_point - 0x800 if code_point > _SURROGATE_HIGH else code_point


def _code_point(index: int) -> int:
    return index + 0x800 if index >= _SURROGATE_LOW else index


def _utf8(code_point: int) -> bytes:
    return chr(code_point).encode("utf-8", "surrogatepass")


def _first_at_or_above(bound: bytes) -> int:
    """The lowest code point whose UTF-8 is not below `bound` (UTF-8 keeps code point order)."""
    low, high = 0, MAX_CODE_POINT + 1
    while low < high:
        middle = (low + high) // 2
        if _utf8(middle) < bound:
            low = middle + 1
        else:
            high = middle
    return low


def _last_at_or_below(bound: bytes) -> int:
    low, high = -1, MAX_CODE_POINT
    while low < high:
        middle = (low + high + 1) // 2
        if _utf8(middle) <= bound:
            low = middle
        else:
            high = middle - 1
    return low


@lru_cache(maxsize=4096)
def _re2_set(single: str) -> tuple[Ranges, int]:
    """The code points RE2 matches with `single`, a pattern for one character, and how many code
    points were scanned to find out.

    RE2 bounds its matches (`possiblematchrange`, a documented guarantee); only that window is
    scanned, which for a case-folded letter is a few dozen code points.
    """
    regexp = re2.compile(single, OPTIONS)
    try:
        low, high = regexp.possiblematchrange(8)
        first, last = _first_at_or_above(low), _last_at_or_below(high)
    except re2.error:  # No bound known: scan everything.
        first, last = 0, MAX_CODE_POINT
    if _SURROGATE_LOW <= first <= _SURROGATE_HIGH:
        first = _SURROGATE_HIGH + 1
    if _SURROGATE_LOW <= last <= _SURROGATE_HIGH:
        last = _SURROGATE_LOW - 1
    if first > last:
        return (), 0
    start, end = _index(first), _index(last) + 1
    window = _every_character()[start:end]
    runs = re2.compile(f"(?:{single})+", OPTIONS).finditer(window)
    found = ((_code_point(start + m.start()), _code_point(start + m.end() - 1)) for m in runs)
    return _normalized(found), end - start


def case_variants(character: str) -> frozenset[str]:
    """The characters RE2's `(?i)` matches for `character` (its case orbit, itself included)."""
    ranges, _ = _re2_set(f"(?i:\\x{{{ord(character):x}}})")
    return frozenset(chr(c) for low, high in ranges for c in range(low, high + 1))


# Writing sets and characters in ARE syntax.


def _are_character(code_point: int) -> str:
    character = chr(code_point)
    if code_point in _ARE_ESCAPES:
        return _ARE_ESCAPES[code_point]
    if character in _ARE_SPECIAL:
        return "\\" + character
    if 0x20 <= code_point <= 0x7E:
        return character
    return f"\\u{code_point:04x}" if code_point <= 0xFFFF else f"\\U{code_point:08x}"


def _bracket_body(ranges: Ranges) -> str:
    # A range may run across the surrogates, which no text holds: one range instead of two.
    spans: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if spans and spans[-1][1] == _SURROGATE_LOW - 1 and lo == _SURROGATE_HIGH + 1:
            spans[-1] = (spans[-1][0], hi)
        else:
            spans.append((lo, hi))
    parts = []
    for lo, hi in spans:
        if hi == lo:
            parts.append(_are_character(lo))
        elif hi == lo + 1:
            parts.append(_are_character(lo) + _are_character(hi))
        else:
            parts.append(f"{_are_character(lo)}-{_are_character(hi)}")
    return "".join(parts)


# Translated pieces. `level` says how a piece binds: an ATOM takes a quantifier as it is, a SEQ
# (concatenation or quantified piece) needs a group before a quantifier, an ALT also needs one
# inside a concatenation.
_ALT, _SEQ, _ATOM = 1, 2, 3


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    level: int
    # Matches only the empty string (anchors, look-around), or nothing at all.
    empty_width: bool = False
    # Matches the empty string with no assertion at all, so at any position.
    nullable: bool = False
    # Matches the empty string where RE2 sees only `\B` hold: inside a character. RE2 works on
    # UTF-8 bytes and its unanchored search starts at every byte; between two bytes of one
    # character there is no word boundary, and no anchor holds. So `\B` finds a match in
    # `a😀b`, where no position between characters is one.
    inside_character: bool = False


_EMPTY = _Piece("", _ATOM, empty_width=True, nullable=True, inside_character=True)
_NOTHING = _Piece("(?!)", _ATOM, empty_width=True)


@lru_cache(maxsize=1024)
def _chars(ranges: Ranges) -> _Piece:
    """One character from `ranges`, listed or negated, whichever is shorter."""
    wanted = _intersection(ranges, _PG_CHARACTERS)
    if not wanted:
        return _NOTHING
    if wanted == _PG_CHARACTERS:
        # In an ARE without the `n` flag, `.` is every character, newline included.
        return _Piece(".", _ATOM)
    if wanted[0][0] == wanted[0][1] and len(wanted) == 1:
        return _Piece(_are_character(wanted[0][0]), _ATOM)
    unwanted = _intersection(_complement(wanted), _PG_CHARACTERS)
    if len(_bracket_body(unwanted)) < len(_bracket_body(wanted)):
        return _Piece(f"[^{_bracket_body(unwanted)}]", _ATOM)
    return _Piece(f"[{_bracket_body(wanted)}]", _ATOM)


def _look(text: str, inside_character: bool = False) -> _Piece:
    return _Piece(text, _ATOM, empty_width=True, inside_character=inside_character)


_WORD_ARE = _chars(_WORD).text
_ANCHORS: Final[dict[str, _Piece]] = {
    "text start": _look("^"),
    "text end": _look("$"),
    "line start": _look("(?:^|(?<=\\n))"),
    "line end": _look("(?:$|(?=\\n))"),
    "word boundary": _look(f"(?:(?<={_WORD_ARE})(?!{_WORD_ARE})|(?<!{_WORD_ARE})(?={_WORD_ARE}))"),
    "not word boundary": _look(
        f"(?:(?<={_WORD_ARE})(?={_WORD_ARE})|(?<!{_WORD_ARE})(?!{_WORD_ARE}))",
        inside_character=True,
    ),
}


_ESCAPED_ANCHORS: Final[dict[str, str]] = {
    "\\A": "text start",
    "\\z": "text end",
    "\\b": "word boundary",
    "\\B": "not word boundary",
}


def _check_size(pieces: list[_Piece]) -> None:
    # Checked as pieces are joined, before the text is built.
    if sum(len(piece.text) + 4 for piece in pieces) > MAX_TRANSLATION:
        raise PatternError(
            "the pattern is too large for PostgreSQL once its classes are spelled out"
            f" (over {MAX_TRANSLATION} characters)"
        )


def _sequence(pieces: list[_Piece]) -> _Piece:
    pieces = [piece for piece in pieces if piece.text]
    _check_size(pieces)
    if not pieces:
        return _EMPTY
    if len(pieces) == 1:
        return pieces[0]
    text = "".join(f"(?:{p.text})" if p.level == _ALT else p.text for p in pieces)
    return _Piece(
        text,
        _SEQ,
        empty_width=all(p.empty_width for p in pieces),
        nullable=all(p.nullable for p in pieces),
        inside_character=all(p.inside_character for p in pieces),
    )


def _alternation(branches: list[_Piece]) -> _Piece:
    if len(branches) == 1:
        return branches[0]
    _check_size(branches)
    return _Piece(
        "|".join(branch.text for branch in branches),
        _ALT,
        empty_width=all(branch.empty_width for branch in branches),
        nullable=any(branch.nullable for branch in branches),
        inside_character=any(branch.inside_character for branch in branches),
    )


def _repeat(piece: _Piece, low: int, high: int | None, operator: str) -> _Piece:
    if piece.empty_width:
        # An empty-width piece is as true once as any number of times, and zero times is empty.
        return piece if low > 0 else _EMPTY
    if high == 0:
        return _EMPTY
    if low == high == 1:
        return piece
    if max(low, high or 0) > MAX_REPEAT:
        raise PatternError(f"{operator} is not supported (repetition counts above {MAX_REPEAT})")
    shorthand = {(0, None): "*", (1, None): "+", (0, 1): "?"}
    if (low, high) in shorthand:
        quantifier = shorthand[low, high]
    elif low == high:
        quantifier = f"{{{low}}}"
    else:
        quantifier = f"{{{low},{'' if high is None else high}}}"
    text = piece.text if piece.level == _ATOM else f"(?:{piece.text})"
    return _Piece(
        text + quantifier,
        _SEQ,
        nullable=low == 0 or piece.nullable,
        inside_character=low == 0 or piece.inside_character,
    )


@dataclass(frozen=True, slots=True)
class _Flags:
    fold: bool = False  # (?i)
    multi_line: bool = False  # (?m)
    dot_newline: bool = False  # (?s)


class _Translator:
    """A recursive-descent reading of RE2's syntax (re2/parse.cc), one construct at a time."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0
        self.folded: set[tuple[int, int]] = set()
        self.fold_scan = 0

    def translate(self) -> str:
        piece = self._alternation(_Flags())
        if self.pos != len(self.pattern):
            raise PatternError("unexpected )")
        if piece.inside_character and not piece.nullable:
            # PostgreSQL only tries positions between characters: also accept any text that has
            # a character of two or more UTF-8 bytes.
            piece = _alternation([piece, _chars(_MULTI_BYTE)])
        return piece.text

    # Structure.

    def _alternation(self, flags: _Flags) -> _Piece:
        """Read up to the `)` that closes the current group, or to the end."""
        pattern = self.pattern
        branches: list[_Piece] = []
        items: list[_Piece] = []
        while self.pos < len(pattern) and pattern[self.pos] != ")":
            c = pattern[self.pos]
            if c == "|":
                self.pos += 1
                branches.append(_sequence(items))
                items = []
            elif c == "(":
                # Flags set by `(?i)` last to the end of the group, across `|`, as in RE2.
                flags = self._group(flags, items)
            elif c in _QUANTIFIERS:
                self.pos += 1
                self._quantify(items, *_QUANTIFIERS[c], c)
            elif c == "{" and (bounds := self._bounds()) is not None:
                self._quantify(items, *bounds)
            elif c == "[":
                items.append(_chars(self._class(flags)))
            elif c == "\\":
                self._escape(flags, items)
            elif c == ".":
                self.pos += 1
                items.append(_chars(_EVERYTHING if flags.dot_newline else _complement(_NEWLINE)))
            elif c in "^$":
                self.pos += 1
                line = "line" if flags.multi_line else "text"
                items.append(_ANCHORS[f"{line} {'start' if c == '^' else 'end'}"])
            else:
                self.pos += 1
                items.append(self._literal(ord(c), flags))
        branches.append(_sequence(items))
        return _alternation(branches)

    def _group(self, flags: _Flags, items: list[_Piece]) -> _Flags:
        """Read a group into `items`, or a flag setting; return the flags that now hold."""
        pattern = self.pattern
        inner = flags
        if pattern.startswith("(?", self.pos):
            self.pos += 2
            if pattern.startswith(("P<", "<"), self.pos):
                # A named group; the name does not matter here.
                self.pos = pattern.index(">", self.pos) + 1
            else:
                inner, opens = self._flags(flags)
                if not opens:
                    return inner
        else:
            self.pos += 1
        piece = self._alternation(inner)
        if not pattern.startswith(")", self.pos):
            raise PatternError("missing )")
        self.pos += 1
        items.append(piece)
        return flags

    def _flags(self, flags: _Flags) -> tuple[_Flags, bool]:
        """Read `imsU-` up to `:` (a group with these flags opens) or `)` (they hold from here)."""
        on = True
        while True:
            c = self.pattern[self.pos]
            self.pos += 1
            if c == "-":
                on = False
            elif c == "i":
                flags = replace(flags, fold=on)
            elif c == "m":
                flags = replace(flags, multi_line=on)
            elif c == "s":
                flags = replace(flags, dot_newline=on)
            elif c == "U":
                pass  # Swaps greedy and lazy: which match, never whether one exists.
            else:
                return flags, c == ":"

    def _bounds(self) -> tuple[int, int | None, str] | None:
        """Read `{n}`, `{n,}` or `{n,m}`; anything else leaves `{` a literal (RE2's rule)."""
        found = _BOUNDS.match(self.pattern, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        low = int(found.group(1))
        if found.group(2) is None:
            return low, low, found.group()
        return low, None if found.group(3) is None else int(found.group(3)), found.group()

    def _quantify(self, items: list[_Piece], low: int, high: int | None, operator: str) -> None:
        if self.pattern.startswith("?", self.pos):
            self.pos += 1  # Lazy: which match, never whether one exists.
        if not items:
            raise PatternError(f"missing argument to repetition operator: {operator}")
        items[-1] = _repeat(items[-1], low, high, operator)

    # Characters.

    def _literal(self, code_point: int, flags: _Flags) -> _Piece:
        ranges = ((code_point, code_point),)
        return _chars(self._fold(ranges) if flags.fold else ranges)

    def _escape(self, flags: _Flags, items: list[_Piece]) -> None:
        pattern, pos = self.pattern, self.pos
        two = pattern[pos : pos + 2]
        if two in _ESCAPED_ANCHORS:
            self.pos += 2
            items.append(_ANCHORS[_ESCAPED_ANCHORS[two]])
        elif two == "\\C":
            raise PatternError("\\C is not supported")
        elif two == "\\Q":
            end = pattern.find("\\E", pos + 2)
            end = len(pattern) if end == -1 else end
            for c in pattern[pos + 2 : end]:
                items.append(self._literal(ord(c), flags))
            self.pos = min(end + 2, len(pattern))
        elif two in ("\\p", "\\P"):
            items.append(_chars(self._unicode_class(flags)))
        elif two in _PERL_CLASSES:
            self.pos += 2
            items.append(_chars(self._class_set(*_PERL_CLASSES[two], flags)))
        else:
            items.append(self._literal(self._escaped_character(), flags))

    def _escaped_character(self) -> int:
        """Read an escape for one character: `\\n`, `\\x41`, `\\x{1F600}`, `\\101`, `\\.`."""
        pattern = self.pattern
        self.pos += 1
        c = pattern[self.pos]
        self.pos += 1
        if c in _OCTAL:
            # Up to three octal digits (a lone \\1-\\7 is a backreference, which RE2 refuses).
            digits = c
            while len(digits) < 3 and self.pos < len(pattern) and pattern[self.pos] in _OCTAL:
                digits += pattern[self.pos]
                self.pos += 1
            return int(digits, 8)
        if c == "x":
            if pattern.startswith("{", self.pos):
                end = pattern.index("}", self.pos)
                value = int(pattern[self.pos + 1 : end], 16)
                self.pos = end + 1
                return value
            self.pos += 2
            return int(pattern[self.pos - 2 : self.pos], 16)
        if c in _C_ESCAPES:
            return _C_ESCAPES[c]
        if c.isascii() and not c.isalnum():
            return ord(c)
        raise PatternError(f"invalid escape sequence: \\{c}")

    def _class(self, flags: _Flags) -> Ranges:
        """Read `[...]`: items are folded one by one under (?i), then the whole is negated."""
        pattern = self.pattern
        self.pos += 1
        negated = pattern.startswith("^", self.pos)
        self.pos += negated
        parts: list[Ranges] = []
        first = True
        while self.pos < len(pattern) and (pattern[self.pos] != "]" or first):
            first = False
            pos = self.pos
            if pattern.startswith("[:", pos) and len(pattern) - pos > 2:
                end = pattern.find(":]", pos + 2)
                if end != -1:
                    name = pattern[pos + 2 : end]
                    self.pos = end + 2
                    named = _POSIX_CLASSES[name.removeprefix("^")]
                    parts.append(self._class_set(named, name.startswith("^"), flags))
                    continue
            if pattern.startswith(("\\p", "\\P"), pos) and len(pattern) - pos > 2:
                parts.append(self._unicode_class(flags))
                continue
            if pattern[pos : pos + 2] in _PERL_CLASSES:
                self.pos += 2
                parts.append(self._class_set(*_PERL_CLASSES[pattern[pos : pos + 2]], flags))
                continue
            low = high = self._class_character()
            # `a-z` is a range; in `[a-]` the `-` is a character.
            follow = pattern[self.pos : self.pos + 2]
            if len(follow) == 2 and follow[0] == "-" and follow[1] != "]":
                self.pos += 1
                high = self._class_character()
            parts.append(self._fold(((low, high),)) if flags.fold else ((low, high),))
        if not pattern.startswith("]", self.pos):
            raise PatternError("missing ]")
        self.pos += 1
        ranges = _normalized(chain.from_iterable(parts))
        return _complement(ranges) if negated else ranges

    def _class_character(self) -> int:
        if self.pattern[self.pos] == "\\":
            return self._escaped_character()
        self.pos += 1
        return ord(self.pattern[self.pos - 1])

    def _class_set(self, ranges: Ranges, negated: bool, flags: _Flags) -> Ranges:
        """A named class: folded first under (?i), then negated (RE2's AddUGroup)."""
        if flags.fold:
            ranges = self._fold(ranges)
        return _complement(ranges) if negated else ranges

    def _unicode_class(self, flags: _Flags) -> Ranges:
        """Read `\\pL`, `\\p{Greek}`, `\\PL`, `\\p{^Greek}`; RE2 says which code points they are."""
        pattern = self.pattern
        negated = pattern[self.pos + 1] == "P"
        self.pos += 2
        if pattern.startswith("{", self.pos):
            end = pattern.index("}", self.pos)
            name = pattern[self.pos + 1 : end]
            self.pos = end + 1
        else:
            name = pattern[self.pos]
            self.pos += 1
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        # Class names are a fixed list, so this cache stays small; no budget is needed.
        ranges, _ = _re2_set(f"(?i:\\p{{{name}}})" if flags.fold else f"\\p{{{name}}}")
        return _complement(ranges) if negated else ranges

    def _fold(self, ranges: Ranges) -> Ranges:
        """`ranges` with every code point RE2's (?i) folds them to (Unicode simple case folding)."""
        folded: list[tuple[int, int]] = []
        for lo, hi in ranges:
            found, scanned = _re2_set(f"(?i:[\\x{{{lo:x}}}-\\x{{{hi:x}}}])")
            if (lo, hi) not in self.folded:
                self.folded.add((lo, hi))
                self.fold_scan += scanned
                if self.fold_scan > MAX_FOLD_SCAN:
                    raise PatternError("(?i) over character ranges this large is not supported")
            folded.extend(found)
        return _normalized(folded)

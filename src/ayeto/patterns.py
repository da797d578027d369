"""Regular expressions with RE2 semantics: linear time, no backreferences or look-around.

One compiled-pattern cache serves the filter validator and the SQLite `regexp` function, so a
pattern is compiled once per process, not once per row.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN_LENGTH = 1000


class PatternError(ValueError):
    pass


OPTIONS = re2.Options()
# A refused pattern is the caller's mistake, reported in the 400; it is not worth a log line.
OPTIONS.log_errors = False


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """Compile `pattern` with RE2's default options (case-sensitive, `.` excludes newline)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"pattern longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else b"not a valid RE2 pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(_plainly(str(reason))) from None


# RE2 refuses these by design (they cannot run in linear time); its own words only hint at it.
_UNSUPPORTED = (
    (re.compile(r"invalid escape sequence: \\[1-9]"), "backreferences are not supported"),
    (re.compile(r"invalid perl operator: \(\?<?[=!]"), "look-around is not supported"),
)


def _plainly(reason: str) -> str:
    for wording, plain in _UNSUPPORTED:
        if wording.match(reason):
            return f"{plain} ({reason})"
    return reason


def search(pattern: str, text: str | bytes | None) -> bool:
    """True when `pattern` matches anywhere in `text` (unanchored, like `re.search`).

    `text` may also be given as its UTF-8 bytes, as SQLite hands over a TEXT value cast to a
    BLOB: the same answer (RE2 reads UTF-8; a str is encoded to it first), without SQLite
    decoding each value to a str and RE2's wrapper encoding it back, which is about half the
    time of a search that reads every message.
    """
    return text is not None and compile_pattern(pattern).search(text) is not None

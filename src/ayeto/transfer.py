"""Conversations in and out of a store, as files: what `ayeto import` and `ayeto export` do.

Export writes JSON Lines: one `PublicConversationView` document per line, streamed from the store.
Import reads, told apart by the start of the input:
- JSON Lines (blank lines ignored), streamed line by line in constant memory;
- one JSON array of documents (the first non-blank byte is `[`);
- one or more pretty-printed documents, as `jq .` or `json.dumps(indent=2)` write them (the first
  non-blank line is a lone `{`).
An array or pretty-printed documents are read whole (their bytes, then their text); a syntax error
between their elements ends the reading, since past it the elements' boundaries are unknown. Every
record is validated with the API's own model, so every document the API could return is accepted,
and upserted by id in one transaction: re-importing a file changes nothing, and
`import(export(db))` reproduces `db` exactly.

A file with any invalid record imports nothing. Validation goes on past the first invalid record,
so that `InvalidRecords` counts every one and names the first `REPORTED`, each by its line (JSON
Lines) or by its number and id (an array, pretty-printed documents), with a one-line reason. When
nothing in the input is a valid document, or too much of it is not, it is more likely not
conversations at all: `InvalidRecords.hint` then says what is read. An SQLite database or a gzip
file is recognized by its first bytes and refused at once (`NotConversations`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO, NamedTuple

import orjson
from pydantic import ValidationError

from ayeto.models import PublicConversationView
from ayeto.query import parse_uuid
from ayeto.store.base import Document, Store

#: `on_progress` is called each time at least this many more bytes have been read, and at the end.
PROGRESS_STEP = 1 << 20
#: At most this many invalid records are named; the others are only counted.
REPORTED = 10
HINT = (
    "ayeto import reads conversations in the API's PublicConversationView shape: JSONL (one per "
    "line), a JSON array, or pretty-printed (as jq . writes them)"
)

# At most this many faults are named per record, so that a reason stays one readable line.
_FAULTS_PER_RECORD = 5

_BOM = b"\xef\xbb\xbf"
# JSON's whitespace (RFC 8259), narrower than Python's: a form feed is not blank.
_BLANK = b" \t\r\n"
_SPACE = re.compile(r"[ \t\r\n]*")
# Where pydantic's JSON parser puts the position in its message.
_POSITION = re.compile(r"(?P<message>.*) at line (?P<line>\d+) column (?P<column>\d+)")
_JSON_KINDS = {"[": "an array", '"': "a string", "t": "a boolean", "f": "a boolean", "n": "null"}
# Files that are plainly something else, by their first bytes, and what to do instead.
_FORMATS = (
    (
        b"SQLite format 3\x00",
        "the input is an SQLite database, not conversations; to copy an ayeto database, "
        "export it: ayeto export --db sqlite:///PATH | ayeto import -",
    ),
    (
        b"\x1f\x8b",
        "the input is gzip-compressed; decompress it as you import: "
        "gunzip -c FILE | ayeto import -",
    ),
)


@dataclass(frozen=True, slots=True)
class RecordError:
    """An invalid record, where it is (`line 3`, `record 2 (id …)`), and why it is invalid."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class InvalidRecords(Exception):
    """The input holds `count` invalid records, so nothing was imported.

    `errors` names the first `REPORTED` in order; `hint` (or None) says what the input should be.
    """

    def __init__(self, errors: list[RecordError], count: int, hint: str | None = None) -> None:
        self.errors = errors
        self.count = count
        self.hint = hint
        super().__init__("\n".join(self.report()))

    def report(self) -> list[str]:
        """One line per named record, then how many more there are, then the hint."""
        lines = [str(error) for error in self.errors]
        if self.count > len(self.errors):
            more = self.count - len(self.errors)
            lines.append(f"... and {more} more invalid record{'s' if more > 1 else ''}")
        if self.hint is not None:
            lines.append(f"hint: {self.hint}")
        return lines


class NotConversations(ValueError):
    """The input is plainly not conversations (a database, a compressed file); nothing was read."""


def import_documents(
    store: Store, source: BinaryIO, *, on_progress: Callable[[int], None] | None = None
) -> int:
    """Validate and upsert every document of `source`, all or nothing; returns how many were read.

    A document whose id is already stored replaces it, as does a later one with the same id in the
    file (each counts). `on_progress(bytes_read)` is called now and then, and once at the end with
    the size of the input. If any record is invalid, raises `InvalidRecords`, and if the input is
    plainly something else, `NotConversations`; either way the store is as it was.
    """
    return store.upsert(_valid(_records(source, _Progress(on_progress))))


def export_documents(store: Store, sink: BinaryIO, *, user: str | None = None) -> int:
    """Write every conversation (or only those `user` created) to `sink` as JSON Lines.

    Returns how many were written. The order is the store's stable one, so exporting the same data
    twice gives the same bytes. Raises ValueError if `user` is not a UUID.
    """
    owner = None
    if user is not None:
        owner = parse_uuid(user)
        if owner is None:
            raise ValueError(f"not a UUID: {user!r}")
    count = 0
    for document in store.export(owner):
        sink.write(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE))
        count += 1
    return count


class _Record(NamedTuple):
    """The JSON text of one document and where it starts in the input (1-based).

    `number` counts the documents of an array or of pretty-printed ones, from 1; in JSON Lines it is
    None, since the line names the record.
    """

    line: int
    column: int
    text: str
    number: int | None = None

    def where(self) -> str:
        if self.number is None:
            return f"line {self.line}"
        id_ = _id_of(self.text)
        return f"record {self.number}" + ("" if id_ is None else f" (id {id_})")


class _Progress:
    """Calls `callback` with the bytes read so far, at most once per `PROGRESS_STEP`."""

    def __init__(self, callback: Callable[[int], None] | None) -> None:
        self._callback = callback
        self._reported = 0

    def update(self, done: int) -> None:
        if self._callback is not None and done - self._reported >= PROGRESS_STEP:
            self._reported = done
            self._callback(done)

    def finish(self, total: int) -> None:
        if self._callback is not None:
            self._callback(total)


def _valid(records: Iterable[_Record | RecordError]) -> Iterator[Document]:
    """The documents in store form, as long as every record so far is valid.

    After the first invalid record it yields nothing more but validates the rest, then raises
    `InvalidRecords`; raising inside `Store.upsert` rolls back what it already wrote.
    """
    errors: list[RecordError] = []
    count = valid = 0
    for record in records:
        if isinstance(record, _Record):
            try:
                view = PublicConversationView.model_validate_json(record.text)
            except ValidationError as error:
                record = RecordError(record.where(), _reason(error, record))
            else:
                valid += 1
                if not count:
                    yield view.model_dump(mode="json")
                continue
        count += 1
        if len(errors) < REPORTED:
            errors.append(record)
    if count:
        # Nothing, or too much, of the input is a conversation: it is likely another format.
        likely_other = not valid or count > REPORTED
        raise InvalidRecords(errors, count, HINT if likely_other else None)


def _records(source: BinaryIO, progress: _Progress) -> Iterator[_Record | RecordError]:
    """Split the input into records: JSON Lines, a JSON array or pretty-printed documents."""
    head: list[bytes] = []
    first = b""
    for raw in source:
        if not head:
            for magic, message in _FORMATS:
                if raw.startswith(magic):
                    raise NotConversations(message)
        head.append(raw)
        first = (raw.removeprefix(_BOM) if len(head) == 1 else raw).strip(_BLANK)
        if first:
            break
    if first.startswith(b"[") or first == b"{":
        yield from _document(b"".join(head) + source.read(), progress, array=first != b"{")
    else:
        yield from _lines(chain(head, source), progress)


def _lines(lines: Iterable[bytes], progress: _Progress) -> Iterator[_Record | RecordError]:
    done = 0
    for number, raw in enumerate(lines, start=1):
        done += len(raw)
        progress.update(done)
        if number == 1:
            raw = raw.removeprefix(_BOM)
        if not raw.strip(_BLANK):
            continue
        try:
            # Without its line end, the record is one line: JSON errors are placed on it.
            text = raw.decode().rstrip("\r\n")
        except UnicodeDecodeError as error:
            yield RecordError(f"line {number}", _not_utf8(raw, error.start))
            continue
        yield _Record(number, 1, text)
    progress.finish(done)


def _document(data: bytes, progress: _Progress, *, array: bool) -> Iterator[_Record | RecordError]:
    """The elements of a JSON array, or pretty-printed documents one after another.

    A fault between the elements ends the reading, as the last record.
    """
    size = len(data)
    body = data.removeprefix(_BOM)
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        line_start = body.rfind(b"\n", 0, error.start) + 1
        line = body.count(b"\n", 0, line_start) + 1
        yield RecordError(f"line {line}", _not_utf8(body[line_start:], error.start - line_start))
        return
    # Only the text is needed from here on; a big array is not held twice.
    del data, body
    cursor = _Cursor(text)
    decoder = json.JSONDecoder()
    index = _skip_space(text, text.index("[") + 1 if array else 0)
    closed = array and text.startswith("]", index)
    number = 0
    while not closed:
        if index == len(text):
            line, _ = cursor.at(len(text.rstrip(" \t\r\n")))
            yield RecordError(f"line {line}", "not valid JSON: the file ends inside the array")
            return
        number += 1
        line, column = cursor.at(index)
        try:
            end = decoder.raw_decode(text, index)[1]
        except json.JSONDecodeError as error:
            # The stdlib writes "Unterminated string starting at", then the position.
            message = error.msg.removesuffix(" at")
            yield RecordError(f"record {number}", _not_json(message, error.lineno, error.colno))
            return
        except RecursionError:
            yield RecordError(f"record {number}", "not valid JSON: nested too deeply")
            return
        yield _Record(line, column, text[index:end], number)
        progress.update(size * end // len(text))
        index = _skip_space(text, end)
        if not array:
            closed = index == len(text)
        elif text.startswith(",", index):
            index = _skip_space(text, index + 1)
        elif text.startswith("]", index):
            closed = True
        elif index < len(text):
            line, column = cursor.at(index)
            yield RecordError(f"line {line}", _not_json("expected ',' or ']'", line, column, line))
            return
    if array and (index := _skip_space(text, index + 1)) < len(text):
        line, column = cursor.at(index)
        yield RecordError(f"line {line}", _not_json("data after the array", line, column, line))
        return
    progress.finish(size)


def _skip_space(text: str, index: int) -> int:
    match = _SPACE.match(text, index)
    assert match is not None  # the pattern matches the empty string
    return match.end()


class _Cursor:
    """Line and column (1-based, in characters) of positions met in increasing order."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._index = 0
        self._line = 1
        self._line_start = 0

    def at(self, index: int) -> tuple[int, int]:
        newlines = self._text.count("\n", self._index, index)
        if newlines:
            self._line += newlines
            self._line_start = self._text.rindex("\n", self._index, index) + 1
        self._index = index
        return self._line, index - self._line_start + 1


def _reason(error: ValidationError, record: _Record) -> str:
    """One line naming where in the document each fault is, as `messages.0.role: <what>`."""
    faults = error.errors(include_url=False, include_input=False)
    first = faults[0]
    if first["type"] == "json_invalid":
        return _json_reason(first["ctx"]["error"], record)
    if first["type"] == "model_type" and not first["loc"]:
        kind = _JSON_KINDS.get(record.text.lstrip(" \t\r\n")[:1], "a number")
        return f"{first['msg']}, not {kind}"
    parts = [f"{'.'.join(map(str, fault['loc']))}: {fault['msg']}" for fault in faults]
    if len(parts) > _FAULTS_PER_RECORD:
        more = len(parts) - _FAULTS_PER_RECORD
        parts[_FAULTS_PER_RECORD:] = [f"and {more} more"]
    # A message never spans lines, whatever pydantic writes: one record, one line.
    return "; ".join(parts).replace("\n", " ")


def _json_reason(message: str, record: _Record) -> str:
    """pydantic's JSON error, with its position moved from the record into the file."""
    match = _POSITION.fullmatch(message)
    if match is None:
        return f"not valid JSON: {message}"
    line_in_record = int(match["line"])
    # pydantic counts columns in UTF-8 bytes; people and editors count characters.
    text_line = record.text.split("\n")[line_in_record - 1].encode()
    column = len(text_line[: int(match["column"]) - 1].decode(errors="ignore")) + 1
    if line_in_record == 1:
        column += record.column - 1
    line = record.line + line_in_record - 1
    # A numbered record is not named by its line, so the position says it.
    return _not_json(match["message"], line, column, record.line if record.number is None else None)


def _not_json(message: str, line: int, column: int, record_line: int | None = None) -> str:
    """The JSON error `message` at `line` and `column`; the line goes without saying on
    `record_line`, the line that names the record."""
    where = f"column {column}" if line == record_line else f"line {line} column {column}"
    return f"not valid JSON: {message} at {where}"


def _id_of(text: str) -> str | None:
    """The `id` a record gives, if it is a JSON object with a string id, to name it by."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    id_ = document.get("id") if isinstance(document, dict) else None
    return id_ if isinstance(id_, str) else None


def _not_utf8(line: bytes, start: int) -> str:
    """Names the byte at `start`, the first of `line` that is not UTF-8, and its column."""
    column = len(line[:start].decode()) + 1
    return f"not valid UTF-8: byte 0x{line[start]:02x} at column {column}"


__all__ = [
    "HINT",
    "PROGRESS_STEP",
    "REPORTED",
    "InvalidRecords",
    "NotConversations",
    "RecordError",
    "export_documents",
    "import_documents",
]

"""Conversations in and out of a store, as files: what `ayeto import` and `ayeto export` do.

Export writes JSON Lines: one `PublicConversationView` document per line, streamed from the store.
Import reads JSON Lines (blank lines ignored) or one JSON array of such documents, told apart by the
first non-whitespace byte (`[` is an array). Every record is validated with the API's own model, so
every document the API could return is accepted, and upserted by id in one transaction: re-importing
a file changes nothing, and `import(export(db))` reproduces `db` exactly.

A file with any invalid record imports nothing. Validation goes on past the first invalid record, so
that `InvalidRecords` lists every one, each with the line where it starts and a one-line reason.
JSON Lines are streamed line by line, in constant memory. A JSON array is one JSON value, read
whole (its bytes, then its text); a syntax error in it ends the reading, since past it the
elements' boundaries are unknown.
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

# At most this many faults are named per record, so that a reason stays one readable line.
_FAULTS_PER_RECORD = 5

_BOM = b"\xef\xbb\xbf"
# JSON's whitespace (RFC 8259), narrower than Python's: a form feed is not blank.
_BLANK = b" \t\r\n"
_SPACE = re.compile(r"[ \t\r\n]*")
# Where pydantic's JSON parser puts the position in its message.
_POSITION = re.compile(r"(?P<message>.*) at line (?P<line>\d+) column (?P<column>\d+)")
_JSON_KINDS = {"[": "an array", '"': "a string", "t": "a boolean", "f": "a boolean", "n": "null"}


@dataclass(frozen=True, slots=True)
class RecordError:
    """An invalid record: the line where it starts (1-based) and why it is invalid."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class InvalidRecords(Exception):
    """The input holds invalid records, so nothing was imported; `errors` names them in order."""

    def __init__(self, errors: list[RecordError]) -> None:
        self.errors = errors
        count = f"{len(errors)} invalid record{'s' if len(errors) > 1 else ''}"
        super().__init__("\n".join([f"{count}, nothing imported:", *map(str, errors)]))


def import_documents(
    store: Store, source: BinaryIO, *, on_progress: Callable[[int], None] | None = None
) -> int:
    """Validate and upsert every document of `source`, all or nothing; returns how many were read.

    A document whose id is already stored replaces it, as does a later one with the same id in the
    file (each counts). `on_progress(bytes_read)` is called now and then, and once at the end with
    the size of the input. If any record is invalid, raises `InvalidRecords` and the store is as it
    was.
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
    """The JSON text of one document and where it starts in the input (1-based)."""

    line: int
    column: int
    text: str


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
    for record in records:
        if isinstance(record, RecordError):
            errors.append(record)
            continue
        try:
            view = PublicConversationView.model_validate_json(record.text)
        except ValidationError as error:
            errors.append(RecordError(record.line, _reason(error, record)))
            continue
        if not errors:
            yield view.model_dump(mode="json")
    if errors:
        raise InvalidRecords(errors)


def _records(source: BinaryIO, progress: _Progress) -> Iterator[_Record | RecordError]:
    """Split the input into records, JSON Lines or a JSON array by its first non-blank byte."""
    head: list[bytes] = []
    first = b""
    for raw in source:
        head.append(raw)
        first = (raw.removeprefix(_BOM) if len(head) == 1 else raw).lstrip(_BLANK)
        if first:
            break
    if first.startswith(b"["):
        yield from _array(b"".join(head) + source.read(), progress)
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
            yield RecordError(number, _not_utf8(raw, error.start))
            continue
        yield _Record(number, 1, text)
    progress.finish(done)


def _array(data: bytes, progress: _Progress) -> Iterator[_Record | RecordError]:
    """The elements of a JSON array; a fault in the array itself is its last record."""
    size = len(data)
    body = data.removeprefix(_BOM)
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        line_start = body.rfind(b"\n", 0, error.start) + 1
        line = body.count(b"\n", 0, line_start) + 1
        yield RecordError(line, _not_utf8(body[line_start:], error.start - line_start))
        return
    # Only the text is needed from here on; a big array is not held twice.
    del data, body
    cursor = _Cursor(text)
    decoder = json.JSONDecoder()
    index = _skip_space(text, text.index("[") + 1)
    closed = text.startswith("]", index)
    while not closed:
        if index == len(text):
            line, _ = cursor.at(len(text.rstrip(" \t\r\n")))
            yield RecordError(line, "not valid JSON: the file ends inside the array")
            return
        line, column = cursor.at(index)
        try:
            end = decoder.raw_decode(text, index)[1]
        except json.JSONDecodeError as error:
            # The stdlib writes "Unterminated string starting at", then the position.
            message = error.msg.removesuffix(" at")
            yield RecordError(line, _not_json(message, error.lineno, error.colno, line))
            return
        except RecursionError:
            yield RecordError(line, "not valid JSON: nested too deeply")
            return
        yield _Record(line, column, text[index:end])
        progress.update(size * end // len(text))
        index = _skip_space(text, end)
        if text.startswith(",", index):
            index = _skip_space(text, index + 1)
        elif text.startswith("]", index):
            closed = True
        elif index < len(text):
            line, column = cursor.at(index)
            yield RecordError(line, _not_json("expected ',' or ']'", line, column, line))
            return
    index = _skip_space(text, index + 1)
    if index < len(text):
        line, column = cursor.at(index)
        yield RecordError(line, _not_json("data after the array", line, column, line))
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
    return _not_json(match["message"], line, column, record.line)


def _not_json(message: str, line: int, column: int, record_line: int) -> str:
    where = f"column {column}" if line == record_line else f"line {line} column {column}"
    return f"not valid JSON: {message} at {where}"


def _not_utf8(line: bytes, start: int) -> str:
    """Names the byte at `start`, the first of `line` that is not UTF-8, and its column."""
    column = len(line[:start].decode()) + 1
    return f"not valid UTF-8: byte 0x{line[start]:02x} at column {column}"


__all__ = ["PROGRESS_STEP", "InvalidRecords", "RecordError", "export_documents", "import_documents"]

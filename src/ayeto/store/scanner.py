"""SQLite's scans, run in a process of their own: the reads that judge every message of their
owner with a regex, because the search index could not narrow them (`SqlStore._scan`).

SQLite calls RE2 through a Python function for each message such a read judges, and each call
takes the interpreter lock. Run in a server's worker thread, a scan took that lock from the event
loop in turns, and every request waited behind it; in a process of its own it takes a core, not
the interpreter. One process serves a store's scans, one at a time. It starts with the first
scan (`python -m ayeto.store.scanner`, which imports little), opens the database file on a
connection of its own that can only read, and stops each statement at the deadline it is given.
It reads its requests from its stdin and answers on its stdout, and ends with its stdin: when the
store closes, or its server dies.
"""

from __future__ import annotations

import math
import os
import pickle
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any, Final

from ayeto.errors import Unavailable
from ayeto.patterns import search

UNAVAILABLE: Final = "the search process stopped; try again shortly"

# How far below the server the scanning process runs for the CPU (`nice`): a tenth of its share.
NICENESS: Final = 10
_LENGTH = struct.Struct("!I")
_READY: Final = "ready"


def _send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next message on `stream`; EOFError once it has ended."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    size = _LENGTH.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    # Only ever from the other end of this module's own pipe.
    return pickle.loads(data)  # noqa: S301


class Scanner:
    """Runs a store's scans in one process of its own (see the module's docstring)."""

    def __init__(self, path: str, function: str, busy_timeout_ms: int, instructions: int) -> None:
        # Absolute: the process resolves it as this one did when the store opened.
        self._command = [sys.executable, "-m", __name__, os.path.abspath(path), function]
        self._command += [str(busy_timeout_ms), str(instructions)]
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the scanning process, if it is not running, and wait until it can scan."""
        with self._lock:
            self._running()

    def rows(self, sql: str, parameters: Sequence[Any], deadline: float) -> list[tuple[Any, ...]]:
        """Every row of `sql`, read in the scanning process; past `deadline` (a
        `time.monotonic()` instant: one clock for every process) the `sqlite3.OperationalError`
        of an interrupted statement."""
        with self._lock:
            process = self._running()
            assert process.stdin is not None
            assert process.stdout is not None
            try:
                _send(process.stdin, (sql, list(parameters), deadline))
                answer = _receive(process.stdout)
            except (OSError, EOFError):
                self._stop()
                raise Unavailable(UNAVAILABLE) from None
        if answer[0] == "error":
            _kind, name, text = answer
            error = getattr(sqlite3, name, sqlite3.Error)
            raise error(text)
        rows: list[tuple[Any, ...]] = answer[1]
        return rows

    def close(self) -> None:
        """Stop the scanning process; a scan it is running is left unanswered."""
        with self._lock:
            self._stop()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._stop()
        process = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert process.stdout is not None
        try:
            if _receive(process.stdout) != _READY:
                raise EOFError
        except EOFError:
            process.kill()
            process.wait()
            raise Unavailable(UNAVAILABLE) from None
        self._process = process
        return process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


# -- the scanning process --------------------------------------------------------------------------

_deadline = math.inf


def _spent() -> bool:
    """SQLite's progress handler: true (stop the statement) once past the deadline."""
    return time.monotonic() > _deadline


def _serve(path: str, function: str, busy_timeout_ms: int, instructions: int) -> None:
    global _deadline
    # Below the server's requests for the CPU: where cores are short, they go first.
    os.nice(NICENESS)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("query_only = ON", f"busy_timeout = {busy_timeout_ms}"):
        connection.execute(f"PRAGMA {pragma}")
    connection.create_function(function, 2, search, deterministic=True)
    connection.set_progress_handler(_spent, instructions)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    _send(answers, _READY)
    while True:
        try:
            sql, parameters, _deadline = _receive(requests)
        except EOFError:
            return
        try:
            answer: tuple[Any, ...] = ("rows", connection.execute(sql, parameters).fetchall())
        except sqlite3.Error as exc:
            answer = ("error", type(exc).__name__, str(exc))
        finally:
            _deadline = math.inf
        _send(answers, answer)


if __name__ == "__main__":
    database, name, busy, steps = sys.argv[1:]
    _serve(database, name, int(busy), int(steps))

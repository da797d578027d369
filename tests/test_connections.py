"""What one client connection may hold of a real `ayeto serve`: a head must arrive within its
timeout and its size limit, a body must not stall, and past the concurrency limit the answer is
a JSON 503. None of it depends on the database, so these run on SQLite."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import orjson
import pytest

from ayeto.api.protocol import HEAD_TOO_LARGE, TOO_BUSY
from tests.factories import ALICE
from tests.processes import Server, new_key, serving, stop
from tests.test_abuse import access_lines

pytestmark = pytest.mark.e2e

FIND = "/api/v3/conversation/find"
# How long a test waits for the server to close a connection: far past the timeouts under test
# (1 s), so a server that never closes fails the test instead of passing by luck.
PATIENCE = 20.0
HALF_SENT = 300
HEAD = b"GET /livez HTTP/1.1\r\nHost: ayeto\r\n\r\n"


def _connect(server: Server) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def _closed_by_server(connection: socket.socket, deadline: float | None = None) -> bool:
    """True once the server ends the connection (EOF or reset); False if it is still open at
    `deadline` (a `time.monotonic()`; PATIENCE from now by default)."""
    left = PATIENCE if deadline is None else deadline - time.monotonic()
    if left <= 0:
        return False
    connection.settimeout(left)
    try:
        while chunk := connection.recv(65536):
            assert not chunk, f"unexpected answer: {chunk[:200]!r}"
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def _answer(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer read from `connection`, up to the end of its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = connection.recv(65536)
        assert chunk
        body += chunk
    return int(status_line.split()[1]), headers, body


@contextmanager
def _server(database_url: str, *options: str) -> Iterator[Server]:
    with serving(database_url, "--header-timeout", "1", "--body-timeout", "1", *options) as server:
        yield server


def test_half_sent_heads_are_closed_and_the_server_keeps_answering(sqlite_url: str) -> None:
    with _server(sqlite_url) as server, ExitStack() as stack:
        stalled = [stack.enter_context(_connect(server)) for _ in range(HALF_SENT)]
        for number, connection in enumerate(stalled):
            # Nothing at all, a part of the request line, or all but the head's last line.
            connection.sendall(HEAD[: number % 3 * 17])
        assert httpx.get(f"{server.base_url}/livez").json() == {"status": "ok"}
        deadline = time.monotonic() + PATIENCE
        closed = sum(_closed_by_server(connection, deadline) for connection in stalled)
        assert closed == HALF_SENT
        assert httpx.get(f"{server.base_url}/livez").json() == {"status": "ok"}


def test_a_head_that_arrives_in_time_is_answered(sqlite_url: str) -> None:
    with _server(sqlite_url) as server, _connect(server) as connection:
        # A keep-alive connection: each request's head is timed from its own first byte.
        for _ in range(3):
            connection.sendall(HEAD)
            status, _, body = _answer(connection)
            assert (status, orjson.loads(body)) == (200, {"status": "ok"})


def test_a_stalled_body_is_closed(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key(sqlite_url, ALICE)
    monkeypatch.setenv("AYETO_LOG_FORMAT", "json")
    # A head may take long here: the body's own, shorter, timeout is what closes the connection.
    slow_heads = ("--header-timeout", "60")
    with _server(sqlite_url, *slow_heads) as server, _connect(server) as connection:
        head = (
            f"POST {FIND} HTTP/1.1\r\nHost: ayeto\r\nuni-api-key: {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        connection.sendall(head.encode() + b'{"filters": [')
        assert _closed_by_server(connection)
        assert httpx.post(f"{server.base_url}{FIND}", headers={"uni-api-key": key}).json() == []
        output = stop(server)
    assert "Traceback" not in output
    # Logged as a client that left (499), then the next request as usual.
    assert [(line["path"], line["status"]) for line in access_lines(output)] == [
        (FIND, 499),
        (FIND, 200),
    ]


def test_an_oversized_head_is_a_431_before_it_is_read_through(sqlite_url: str) -> None:
    total = 8 * 1024 * 1024
    piece = b"a" * 16384
    with _server(sqlite_url) as server, _connect(server) as connection:
        connection.sendall(b"GET /livez HTTP/1.1\r\nHost: ayeto\r\nX-Endless: ")
        sent = 0
        while sent < total and not select.select([connection], [], [], 0)[0]:
            connection.sendall(piece)
            sent += len(piece)
        status, headers, body = _answer(connection)
        assert (status, orjson.loads(body)) == (431, {"detail": HEAD_TOO_LARGE.format(limit=65536)})
        assert (headers["content-type"], headers["connection"]) == ("application/json", "close")
        # The server stopped reading long before the header's end.
        assert sent < total
        assert _closed_by_server(connection)


def test_a_large_head_in_one_piece_is_a_431(sqlite_url: str) -> None:
    small = ("--max-header-bytes", "2048")
    with _server(sqlite_url, *small) as server, _connect(server) as connection:
        connection.sendall(b"GET /livez HTTP/1.1\r\nX-Large: " + b"a" * 3000 + b"\r\n\r\n")
        status, _, body = _answer(connection)
        assert (status, orjson.loads(body)) == (431, {"detail": HEAD_TOO_LARGE.format(limit=2048)})
        # Just under the limit is served.
        assert httpx.get(f"{server.base_url}/livez", headers={"X-Large": "a" * 1900}).is_success


def test_past_the_concurrency_limit_the_answer_is_a_json_503(sqlite_url: str) -> None:
    limit = 3
    with (
        _server(sqlite_url, f"--limit-concurrency={limit}", "--timeout-keep-alive=60") as server,
        ExitStack() as stack,
    ):
        # Connections the server holds open after answering them (keep-alive).
        held = [stack.enter_context(_connect(server)) for _ in range(limit - 1)]
        for connection in held:
            connection.sendall(HEAD)
            assert _answer(connection)[0] == 200
        refused = httpx.get(f"{server.base_url}/livez")
        assert (refused.status_code, refused.json()) == (503, {"detail": TOO_BUSY})
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/json"
        held.pop().close()
        assert _served_again(server)


def _served_again(server: Server) -> bool:
    """The server answers 200 once it has seen a held connection close (it may take a moment)."""
    for _ in range(100):
        if httpx.get(f"{server.base_url}/livez").status_code == 200:
            return True
        time.sleep(0.05)
    return False

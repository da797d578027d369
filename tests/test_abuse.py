"""What a hostile or careless client can do to a real `ayeto serve`, and what the operator sees.

A real server, since the wiring under test is uvicorn's: which peer's `X-Forwarded-For` it takes,
and how a connection that goes away mid-request surfaces.
"""

from __future__ import annotations

import socket
import time

import httpx
import orjson
import pytest

from ayeto.auth import digest
from ayeto.store import open_store
from tests.factories import ALICE
from tests.processes import Server, new_key, serving, stop

FIND = "/api/v3/conversation/find"
INVALID_KEY = {"uni-api-key": "ayeto-" + "0" * 64}
FORWARDED = ["203.0.113.1", "203.0.113.2", "2001:db8::3"]


def access_lines(output: str) -> list[dict[str, object]]:
    """The access log lines of a server that logged JSON (after its note of a new database)."""
    entries = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [entry for entry in entries if entry["logger"] == "ayeto.access"]


@pytest.fixture(autouse=True)
def json_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AYETO_LOG_FORMAT", "json")
    monkeypatch.setenv("AYETO_LOG_LEVEL", "info")
    monkeypatch.delenv("AYETO_FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)


def forwarded_clients(sqlite_url: str, *options: str) -> list[object]:
    """The client each access line names, for invalid keys sent from 127.0.0.1 as `FORWARDED`."""
    with serving(sqlite_url, *options) as server, httpx.Client(base_url=server.base_url) as http:
        for address in FORWARDED:
            response = http.post(FIND, headers=INVALID_KEY | {"X-Forwarded-For": address})
            assert response.status_code == 401
        output = stop(server)
    return [entry["client"] for entry in access_lines(output)]


# -- X-Forwarded-For -------------------------------------------------------------------------------


@pytest.mark.e2e
def test_by_default_a_local_client_cannot_name_its_own_address(sqlite_url: str) -> None:
    # uvicorn alone trusts 127.0.0.1: a local guesser could rotate past the invalid-key throttle.
    assert forwarded_clients(sqlite_url) == ["127.0.0.1"] * len(FORWARDED)


@pytest.mark.e2e
def test_a_configured_proxy_names_the_client(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AYETO_FORWARDED_ALLOW_IPS", "127.0.0.1")
    assert forwarded_clients(sqlite_url) == FORWARDED


@pytest.mark.e2e
def test_the_option_names_proxies_by_network(sqlite_url: str) -> None:
    assert forwarded_clients(sqlite_url, "--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.0/8") == (
        FORWARDED
    )


# -- a client that goes away -----------------------------------------------------------------------


def key_id(database_url: str, key: str) -> str:
    store = open_store(database_url, create=False)
    try:
        record = store.key_by_digest(digest(key))
    finally:
        store.close()
    assert record is not None
    return record.id


def logged(server: Server, text: str) -> str:
    """Everything the server wrote, once it has written `text` (or given up waiting for it)."""
    deadline = time.monotonic() + 10
    while text not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    return stop(server)


@pytest.mark.e2e
def test_a_client_that_leaves_mid_body_is_logged_as_gone_not_as_an_error(sqlite_url: str) -> None:
    key = new_key(sqlite_url, ALICE)
    with serving(sqlite_url) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(
                f"POST {FIND} HTTP/1.1\r\nHost: ayeto\r\nuni-api-key: {key}\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
                + b'{"filters"'
            )
        output = logged(server, '"logger":"ayeto.access"')

    assert "Traceback" not in output
    lines = [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [line["message"] for line in lines if line["level"] != "info"] == []
    [access] = access_lines(output)
    assert {field: access[field] for field in ("method", "path", "status", "key_id", "client")} == {
        "method": "POST",
        "path": FIND,
        "status": 499,
        "key_id": key_id(sqlite_url, key),
        "client": "127.0.0.1",
    }

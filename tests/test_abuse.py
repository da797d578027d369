"""What a hostile or careless client can do to a real `ayeto serve`, and what the operator sees.

A real server, since the wiring under test is uvicorn's: which peer's `X-Forwarded-For` it takes,
and how a connection that goes away mid-request surfaces.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.processes import serving, stop

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

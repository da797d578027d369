"""Every request leaves a trace: its `X-Request-ID`, one access log line, the id in every log line.

In process for the ids and headers; a real `ayeto serve` for the log lines as an operator reads
them. Also the interactive docs, which must work on a machine without internet.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from asgi_correlation_id import CorrelationIdFilter
from starlette.testclient import TestClient

from ayeto.api import create_app
from ayeto.auth import create_key
from ayeto.query import Query
from ayeto.store import Document, SqlStore, Store, open_store
from tests.factories import ALICE, conversation
from tests.processes import cli, serving, stop

BASE = "/api/v3/conversation"
FIND, GET = f"{BASE}/find", f"{BASE}/get"
UNKNOWN = "deadbeef-dead-4bee-8fee-deadbeefcafe"
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = open_store(sqlite_url)
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as client:
        yield client


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record, each with the request id `ayeto serve`'s log filter gives it."""
    caplog.handler.addFilter(CorrelationIdFilter())
    with caplog.at_level(logging.DEBUG):
        yield caplog


def records(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == logger]


def request_id(response: httpx.Response) -> str:
    return response.headers["x-request-id"]


# -- the request id --------------------------------------------------------------------------------


def test_a_request_without_an_id_gets_a_new_one(client: TestClient) -> None:
    first, second = client.get("/livez"), client.get("/livez")
    assert GENERATED.fullmatch(request_id(first)), request_id(first)
    assert GENERATED.fullmatch(request_id(second)), request_id(second)
    assert request_id(first) != request_id(second)


@pytest.mark.parametrize(
    "incoming",
    [
        "a",
        "x" * 128,
        "550e8400-e29b-41d4-a716-446655440000",
        "f3b1c2d4e5f60718293a4b5c6d7e8f90",  # nginx's $request_id
        "edge-7.Frankfurt_01",
    ],
)
def test_a_sane_incoming_id_is_kept(client: TestClient, incoming: str) -> None:
    response = client.get("/livez", headers={"X-Request-ID": incoming})
    assert request_id(response) == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "",
        "x" * 129,
        "two words",
        "a;b",
        "a/b",
        "id\r\nSet-Cookie: session=stolen",
    ],
)
def test_an_insane_incoming_id_is_replaced(client: TestClient, incoming: str) -> None:
    response = client.get("/livez", headers={"X-Request-ID": incoming})
    assert GENERATED.fullmatch(request_id(response)), request_id(response)
    assert response.headers.get_list("x-request-id") == [request_id(response)]
    assert "set-cookie" not in response.headers


# -- the access log, in process --------------------------------------------------------------------


def test_each_request_has_one_access_record_with_its_id(
    store: Store, client: TestClient, logged: pytest.LogCaptureFixture
) -> None:
    key, record = create_key(store, ALICE)
    alice, stranger = {"uni-api-key": key}, {"uni-api-key": "ayeto-" + "0" * 64}
    unknown = {"entity_id": UNKNOWN}
    expected = [
        (client.post(FIND, headers=alice, json={}), "POST", FIND, 200, record.id),
        (client.post(GET, headers=alice, params=unknown), "POST", GET, 404, record.id),
        (client.post(FIND, headers=stranger), "POST", FIND, 401, "-"),
        (client.post(FIND), "POST", FIND, 401, "-"),
        (client.get("/no/such/path"), "GET", "/no/such/path", 404, "-"),
        (client.get(FIND, headers=alice), "GET", FIND, 405, "-"),
        (client.get("/", follow_redirects=False), "GET", "/", 307, "-"),
        (client.get("/livez"), "GET", "/livez", 200, "-"),
    ]
    lines = records(logged, "ayeto.access")
    assert len(lines) == len(expected)
    for (answer, method, path, status, key_id), line in zip(expected, lines, strict=True):
        fields = line.__dict__["fields"]
        assert answer.status_code == status
        assert line.__dict__["correlation_id"] == request_id(answer)
        assert fields == {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": fields["duration_ms"],
            "key_id": key_id,
            "client": "testclient",
        }
        assert fields["duration_ms"] >= 0
        # Load balancers poll health checks: their lines are for debugging only.
        assert line.levelno == (logging.DEBUG if path == "/livez" else logging.INFO)


def test_a_path_cannot_forge_a_log_line(
    client: TestClient, logged: pytest.LogCaptureFixture
) -> None:
    client.get("/x%0A2026-01-01 00:00:00,000 INFO    ayeto.access [-] GET /admin 200")
    [line] = records(logged, "ayeto.access")
    assert line.__dict__["fields"]["path"] == (
        "/x%0A2026-01-01%2000%3A00%3A00%2C000%20INFO%20%20%20%20ayeto.access%20%5B-%5D%20GET%20/admin%20200"
    )
    assert "\n" not in line.getMessage()


# -- a server fault --------------------------------------------------------------------------------


class BrokenStore(SqlStore):
    """The real store, but every read fails unexpectedly."""

    def find(self, owner: str, query: Query) -> Iterator[list[Document]]:
        raise RuntimeError("connection to /var/lib/secret.db lost")

    def get(self, owner: str, conversation_id: str, now: int) -> Document:
        raise RuntimeError("connection to /var/lib/secret.db lost")


@pytest.mark.parametrize("path", [FIND, GET])
def test_a_500_names_its_request_id_in_body_header_and_log(
    store: Store, logged: pytest.LogCaptureFixture, path: str
) -> None:
    assert isinstance(store, SqlStore)
    key, record = create_key(store, ALICE)
    app = create_app(BrokenStore(store.engine, store.dialect))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            path, headers={"uni-api-key": key}, params={"entity_id": UNKNOWN}, json={}
        )
    id_ = request_id(response)
    assert GENERATED.fullmatch(id_), id_
    assert (response.status_code, response.json()) == (
        500,
        {"detail": f"internal server error (request id {id_})"},
    )
    [line] = records(logged, "ayeto.access")
    fields = line.__dict__["fields"]
    assert (fields["status"], fields["key_id"]) == (500, record.id)
    [error] = records(logged, "ayeto.api")
    assert error.getMessage() == f"unhandled error in POST {path} (request id {id_})"
    assert [line.__dict__["correlation_id"], error.__dict__["correlation_id"]] == [id_, id_]


# -- the access log of a real server ---------------------------------------------------------------

# A fault no request can cause: the database refuses to record an access to one conversation.
PLANTED_FAULT = """
CREATE TRIGGER planted_fault BEFORE UPDATE ON conversations WHEN OLD.id = '{id}'
BEGIN SELECT RAISE(ABORT, 'planted fault'); END
"""
ACCESS_FIELDS = {"method", "path", "status", "duration_ms", "key_id", "client"}
JSON_FIELDS = {"time", "level", "logger", "message", "request_id"}


def log_as(monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    """The servers started next log in `style`, at the default level."""
    monkeypatch.setenv("AYETO_LOG_FORMAT", style)
    monkeypatch.setenv("AYETO_LOG_LEVEL", "info")


def keys_create(database_url: str) -> tuple[str, str]:
    """The id and the plain key that `ayeto keys create` prints (first line and last)."""
    lines = cli("keys", "create", "--user", ALICE, "--db", database_url).stdout.splitlines()
    assert lines[0].startswith("key id:  "), lines
    return lines[0].removeprefix("key id:  "), lines[-1]


@pytest.mark.e2e
def test_the_server_writes_one_json_line_per_request(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_as(monkeypatch, "json")
    own, faulty = conversation(), conversation()
    cli("import", "-", "--db", sqlite_url, stdin=orjson.dumps([own, faulty]))
    key_id, key = keys_create(sqlite_url)
    with sqlite3.connect(Path(sqlite_url.removeprefix("sqlite:///"))) as database:
        database.execute(PLANTED_FAULT.format(id=faulty["id"]))
    database.close()

    alice = {"uni-api-key": key}
    # Its last digit changed: one in 16 keys ends in the digit a fixed one would put there.
    wrong = key[:-1] + ("1" if key.endswith("0") else "0")
    # uvicorn closes the connection of a 500: no request reuses one.
    fresh = {"Connection": "close"}
    with (
        serving(sqlite_url) as server,
        httpx.Client(base_url=server.base_url, headers=fresh) as http,
    ):
        answers = [
            (http.post(FIND, headers=alice, json={}), FIND, 200, key_id),
            (http.post(GET, headers=alice, params={"entity_id": own["id"]}), GET, 200, key_id),
            (http.post(GET, headers=alice, params={"entity_id": faulty["id"]}), GET, 500, key_id),
            (http.post(FIND, headers={"uni-api-key": wrong}), FIND, 401, "-"),
            (http.post(FIND), FIND, 401, "-"),
            (http.post("/no/such/path"), "/no/such/path", 404, "-"),
            (http.post(FIND, headers=alice | {"X-Request-ID": "edge.7_a-1"}), FIND, 200, key_id),
        ]
        assert http.get("/livez").status_code == 200  # a health check, logged at debug only
        output = stop(server)

    assert key not in output
    assert key.removeprefix("ayeto-") not in output
    entries = [orjson.loads(line) for line in output.splitlines()]  # every line is JSON
    access = [entry for entry in entries if entry["logger"] == "ayeto.access"]
    exact = ACCESS_FIELDS - {"duration_ms"}
    assert [{field: entry[field] for field in exact} for entry in access] == [
        {"method": "POST", "path": path, "status": status, "key_id": key_id, "client": "127.0.0.1"}
        for _, path, status, key_id in answers
    ]
    assert [answer.status_code for answer, *_ in answers] == [status for _, _, status, _ in answers]
    assert [entry["request_id"] for entry in access] == [request_id(a) for a, *_ in answers]
    assert request_id(answers[-1][0]) == "edge.7_a-1"
    for entry in access:
        assert set(entry) == JSON_FIELDS | ACCESS_FIELDS
        assert entry["level"] == "info"
        assert isinstance(entry["duration_ms"], int | float)
        assert entry["duration_ms"] >= 0

    # The 500: the same id in its body, its header, its access line and its error line.
    failed = answers[2][0]
    id_ = request_id(failed)
    assert failed.json() == {"detail": f"internal server error (request id {id_})"}
    [error] = [entry for entry in entries if entry["logger"] == "ayeto.api"]
    assert (error["level"], error["message"], error["request_id"]) == (
        "error",
        f"unhandled error in POST {GET} (request id {id_})",
        id_,
    )
    assert "planted fault" in error["exception"]
    # uvicorn reports the same exception once more; it is the same request.
    assert {entry["request_id"] for entry in entries if entry["level"] == "error"} == {id_}


@pytest.mark.e2e
def test_the_server_writes_console_lines_with_the_request_id(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_as(monkeypatch, "console")
    key_id, key = keys_create(sqlite_url)
    with serving(sqlite_url) as server, httpx.Client(base_url=server.base_url) as http:
        found = http.post(FIND, headers={"uni-api-key": key})
        refused = http.post(FIND)
        output = stop(server)

    access = [line for line in output.splitlines() if " ayeto.access " in line]
    assert len(access) == 2
    time = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(
        rf"{time} INFO    ayeto\.access \[{request_id(found)}\] POST {FIND} 200 \d+\.\d\dms "
        rf"key={key_id} client=127\.0\.0\.1",
        access[0],
    ), access[0]
    assert re.fullmatch(
        rf"{time} INFO    ayeto\.access \[{request_id(refused)}\] POST {FIND} 401 \d+\.\d\dms "
        r"key=- client=127\.0\.0\.1",
        access[1],
    ), access[1]
    # Lines written outside any request carry `-` in its place.
    startup = rf"^{time} INFO    uvicorn\.error \[-\] Application startup complete\.$"
    assert re.search(startup, output, re.MULTILINE)


# -- the interactive docs --------------------------------------------------------------------------

ASSETS = {
    "/docs": [
        "/openapi.json",
        "/static-offline-docs/favicon.png",
        "/static-offline-docs/swagger-ui-bundle.js",
        "/static-offline-docs/swagger-ui.css",
    ],
    "/redoc": [
        "/openapi.json",
        "/static-offline-docs/favicon.png",
        "/static-offline-docs/redoc.standalone.js",
    ],
}
CONTENT_TYPES = {
    ".json": "application/json",
    ".png": "image/png",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_need_no_internet(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert (html.status_code, html.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert "http://" not in html.text
    assert "https://" not in html.text
    # Swagger UI names its document in `url: '...'`, ReDoc in `spec-url="..."`.
    referenced = re.findall(r"""(?:src|href|spec-url)="([^"]+)"|url: '([^']+)'""", html.text)
    assert sorted("".join(groups) for groups in referenced) == ASSETS[page]
    for asset in ASSETS[page]:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert answer.headers["content-type"] == CONTENT_TYPES[Path(asset).suffix], asset


def test_the_root_leads_to_the_docs(client: TestClient) -> None:
    answer = client.get("/", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (307, "/docs")
    assert client.get(answer.headers["location"]).status_code == 200
    refused = client.post("/")
    assert (refused.status_code, refused.json()) == (405, {"detail": "Method Not Allowed"})
    assert "/" not in client.get("/openapi.json").json()["paths"]

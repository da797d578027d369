"""The HTTP API, in process: per endpoint, who may call it, what it answers, and every error."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from httpx import Response
from sqlalchemy import func, select
from starlette.testclient import TestClient
from starlette.types import Message

from ayeto.api import create_app
from ayeto.auth import create_key
from ayeto.clock import now_ms
from ayeto.config import Settings
from ayeto.query import Query
from ayeto.store import Document, SqlStore, Store
from ayeto.store.schema import messages
from ayeto.store.sql import BATCH
from tests.factories import ALICE, BOB, conversation, img_gen, message
from tests.processes import UNLIMITED

BASE = "/api/v3/conversation"
FIND, GET, DELETE = f"{BASE}/find", f"{BASE}/get", f"{BASE}/delete"
ENDPOINTS = ("find", "get", "delete")

WWW_AUTHENTICATE = 'ApiKey realm="ayeto", header="uni-api-key"'
NOT_PROVIDED = {"detail": "API key not provided"}
INVALID = {"detail": "API key is invalid"}
ALLOWED_KEYS = "allowed: sort_key, sort_order, limit_from, limit_to, filters"

CAROL = "33333333-3333-4333-8333-333333333333"
ASSISTANT = "123e4567-e89b-12d3-a456-426614174000"
ORGANIZATION = "550e8400-e29b-41d4-a716-446655440000"
UNKNOWN = "deadbeef-dead-4bee-8fee-deadbeefcafe"


def uid(n: int) -> str:
    """A fixed UUID, with letters in it, whose order among the others is the order of `n`."""
    return f"{n:08x}-abcd-4ef0-8abc-{n:012x}"


def api_key(store: Store, user_id: str, scopes: tuple[str, ...] = ("ayeto.conversation",)) -> str:
    return create_key(store, user_id, scopes=scopes)[0]


def auth(key: str) -> dict[str, str]:
    return {"uni-api-key": key}


def names(response: Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [document["name"] for document in response.json()]


def exported(store: Store) -> list[Document]:
    """Every stored conversation, as plain JSON values (the store embeds image data pre-encoded)."""
    return list(orjson.loads(orjson.dumps(list(store.export()))))


def assert_error(response: Response, status: int, detail: str) -> None:
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert response.headers["content-type"] == "application/json"


def assert_unauthorized(response: Response, body: dict[str, str]) -> None:
    assert (response.status_code, response.json()) == (401, body)
    assert response.headers["www-authenticate"] == WWW_AUTHENTICATE


@pytest.fixture
def sql_store(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, Settings(rate_limit=UNLIMITED))) as client:
        yield client


@pytest.fixture
def alice(store: Store) -> dict[str, str]:
    return auth(api_key(store, ALICE))


@pytest.fixture
def bob(store: Store) -> dict[str, str]:
    return auth(api_key(store, BOB))


@pytest.fixture
def own(store: Store) -> Document:
    """One conversation of Alice's, with messages and generated image data."""
    document = conversation(
        ALICE,
        id=uid(1),
        name="Python functions",
        summary="Discussion about Python programming...",
        organization_id=ORGANIZATION,
        assistant_id=ASSISTANT,
        messages=[
            message(1_735_815_581_000, id=uid(101)),
            message(
                1_735_815_582_000,
                id=uid(102),
                role="assistant",
                content="You define a function in Python using the `def` keyword...",
                reasoning_content="The user asks about syntax.",
                model="gpt-4o",
                img_gen=img_gen(id=uid(103), timestamp=1_735_815_582_500, hd=True),
            ),
        ],
    )
    store.upsert([document])
    return document


def accessed(document: Document, user_id: str, before: int, after: int, response: Response) -> None:
    """`response` is `document` with the access by `user_id` recorded within [before, after]."""
    assert response.status_code == 200, response.text
    stamp = response.json()["accessed"]["timestamp"]
    assert before <= stamp <= after
    assert response.json() == document | {"accessed": {"user_id": user_id, "timestamp": stamp}}


# -- authentication, the same for every endpoint ---------------------------------------------------


def call(client: TestClient, endpoint: str, headers: dict[str, str], entity_id: str) -> Response:
    response: Response
    if endpoint == "find":
        response = client.post(FIND, headers=headers, json={})
    else:
        response = client.post(
            f"{BASE}/{endpoint}", headers=headers, params={"entity_id": entity_id}
        )
    return response


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("headers", [{}, {"uni-api-key": ""}], ids=["no header", "empty header"])
def test_anonymous_is_401_not_provided(
    client: TestClient, own: Document, endpoint: str, headers: dict[str, str]
) -> None:
    assert_unauthorized(call(client, endpoint, headers, own["id"]), NOT_PROVIDED)


def _revoked(store: Store) -> str:
    key, record = create_key(store, ALICE)
    assert store.revoke_key(record.id, None, now_ms()) is not None
    return key


INVALID_KEYS: dict[str, Callable[[Store], str]] = {
    "too short": lambda _: "ayeto-" + "a" * 63,
    "too long": lambda _: "ayeto-" + "a" * 65,
    "no prefix": lambda _: "a" * 64,
    "other prefix": lambda _: "ayato-" + "a" * 64,
    "not hex": lambda _: "ayeto-" + "g" * 64,
    "uppercase hex": lambda store: "ayeto-" + api_key(store, ALICE)[6:].upper(),
    "bearer": lambda store: "Bearer " + api_key(store, ALICE),
    "unknown": lambda _: "ayeto-" + "0" * 64,
    "revoked": _revoked,
    "expired": lambda store: create_key(store, ALICE, expires_at=now_ms() - 1)[0],
    "other scope": lambda store: api_key(store, ALICE, ("ayeto.images",)),
    "no scope": lambda store: api_key(store, ALICE, ()),
    "scope prefix": lambda store: api_key(store, ALICE, ("ayeto",)),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("make_key", list(INVALID_KEYS.values()), ids=list(INVALID_KEYS))
def test_invalid_key_is_401_invalid(
    client: TestClient,
    store: Store,
    own: Document,
    endpoint: str,
    make_key: Callable[[Store], str],
) -> None:
    assert_unauthorized(call(client, endpoint, auth(make_key(store)), own["id"]), INVALID)
    # Nothing happened to the conversation.
    assert exported(store) == [own]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_revoking_a_key_refuses_its_very_next_request(
    client: TestClient, store: Store, own: Document, endpoint: str
) -> None:
    key, record = create_key(store, ALICE)
    assert call(client, endpoint, auth(key), UNKNOWN).status_code == (
        200 if endpoint == "find" else 404
    )
    assert store.revoke_key(record.id, None, now_ms()) is not None
    assert_unauthorized(call(client, endpoint, auth(key), own["id"]), INVALID)
    assert exported(store) == [own]


VALID_KEYS: dict[str, Callable[[Store], str]] = {
    "conversation scope": lambda store: api_key(store, ALICE),
    "wildcard scope": lambda store: api_key(store, ALICE, ("*",)),
    "among other scopes": lambda store: api_key(
        store, ALICE, ("ayeto.images", "ayeto.conversation", "ayeto.files")
    ),
    "not yet expired": lambda store: create_key(store, ALICE, expires_at=now_ms() + 3_600_000)[0],
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("make_key", list(VALID_KEYS.values()), ids=list(VALID_KEYS))
def test_valid_key_is_served(
    client: TestClient,
    store: Store,
    own: Document,
    endpoint: str,
    make_key: Callable[[Store], str],
) -> None:
    headers = auth(make_key(store))
    before = now_ms()
    response = call(client, endpoint, headers, own["id"])
    after = now_ms()
    if endpoint == "find":
        assert (response.status_code, response.json()) == (200, [own])
    elif endpoint == "get":
        accessed(own, ALICE, before, after, response)
    else:
        assert (response.status_code, response.json()) == (200, own["id"])


def test_auth_comes_before_the_body(store: Store, own: Document) -> None:
    bad = auth("ayeto-" + "0" * 64)
    app = create_app(store, Settings(max_body_bytes=64))
    with TestClient(app) as client:
        assert_unauthorized(client.post(FIND, headers=bad, content=b"{"), INVALID)
        assert_unauthorized(client.post(FIND, headers=bad, json={"colour": 1}), INVALID)
        assert_unauthorized(client.post(FIND, headers=bad, content=b" " * 65), INVALID)
        assert_unauthorized(client.post(FIND, content=b"[]"), NOT_PROVIDED)
    # Not a byte of the body is read for a caller that is not authenticated.
    assert post_chunks(app, bad, [b"{", b"}"]) == (401, orjson.dumps(INVALID), 0)


@pytest.mark.parametrize("endpoint", ["get", "delete"])
def test_auth_comes_before_the_entity_id(
    client: TestClient, bob: dict[str, str], own: Document, endpoint: str
) -> None:
    path, bad = f"{BASE}/{endpoint}", auth("ayeto-" + "0" * 64)
    assert_unauthorized(client.post(path, headers=bad), INVALID)
    assert_unauthorized(client.post(path, headers=bad, params={"entity_id": "x"}), INVALID)
    assert_unauthorized(client.post(path, params={"entity_id": "x"}), NOT_PROVIDED)
    # Neither a 404 nor a 403 tells an invalid key whether an id exists.
    assert_unauthorized(client.post(path, headers=bad, params={"entity_id": UNKNOWN}), INVALID)
    assert_unauthorized(client.post(path, headers=bad, params={"entity_id": own["id"]}), INVALID)


# -- find ------------------------------------------------------------------------------------------


@pytest.fixture
def shelf(store: Store) -> list[Document]:
    """Alice's conversations, named by their place in the default order, and one of Bob's."""
    documents = [
        conversation(ALICE, id=uid(11), name="3 Rust lifetimes", model="o1"),
        conversation(
            ALICE,
            id=uid(12),
            name="1 python basics",
            assistant_id=ASSISTANT,
            messages=[message(1_000, role="user"), message(1_001, role="assistant")],
        ),
        conversation(ALICE, id=uid(13), name="4 Python packaging", model="gpt-4o-mini"),
        conversation(ALICE, id=uid(14), name="2 Shopping list"),
        conversation(BOB, id=uid(15), name="Bob's python notes"),
    ]
    updated = {uid(11): 2_000, uid(12): 3_000, uid(13): 1_000, uid(14): 2_000, uid(15): 5_000}
    for document in documents:
        owner = document["created"]["user_id"]
        document["updated"] = {"user_id": owner, "timestamp": updated[document["id"]]}
    store.upsert(documents)
    return documents


# Without sort_key: updated.timestamp descending, the tie (2_000) broken by id descending.
DEFAULT_ORDER = ["1 python basics", "2 Shopping list", "3 Rust lifetimes", "4 Python packaging"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b" \n",
        b"{}",
        b"null",
        b'{"sort_key": null, "sort_order": null, "limit_from": null, "limit_to": null, '
        b'"filters": null}',
        b'{"filters": []}',
    ],
    ids=["no body", "blank body", "empty object", "null", "null values", "no filters"],
)
def test_find_without_parameters_is_everything_newest_first(
    client: TestClient, alice: dict[str, str], shelf: list[Document], content: bytes
) -> None:
    by_id = {document["id"]: document for document in shelf}
    for _ in range(2):
        response = client.post(FIND, headers=alice, content=content)
        assert names(response) == DEFAULT_ORDER
        assert response.headers["content-type"] == "application/json"
        # The documents are exactly as stored: finding them does not record an access.
        assert response.json() == [by_id[document["id"]] for document in response.json()]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"filters": [["model", "==", "gpt-4o"]]}, ["1 python basics", "2 Shopping list"]),
        ({"filters": [["name", "regex", "(?i)python"]]}, ["1 python basics", "4 Python packaging"]),
        ({"filters": [["name", "regex", "python"]]}, ["1 python basics"]),
        ({"filters": [["messages.role", "==", "assistant"]]}, ["1 python basics"]),
        ({"filters": [["assistant_id", "==", ASSISTANT.upper()]]}, ["1 python basics"]),
        (
            {"filters": [["updated.timestamp", ">=", 2_000], ["model", "!=", "gpt-4o"]]},
            ["3 Rust lifetimes"],
        ),
        (
            {"sort_key": "name", "sort_order": 0},
            ["1 python basics", "2 Shopping list", "3 Rust lifetimes", "4 Python packaging"],
        ),
        (
            {"sort_key": "updated.timestamp", "sort_order": 1, "limit_from": 1, "limit_to": 3},
            ["2 Shopping list", "3 Rust lifetimes"],
        ),
        (
            {"sort_key": "id", "sort_order": 0, "limit_to": 2},
            ["3 Rust lifetimes", "1 python basics"],
        ),
        ({"limit_from": 4}, []),
        ({"limit_from": 2, "limit_to": 2}, []),
        ({"filters": [["model", "==", "gpt-5"]]}, []),
    ],
)
def test_find_filters_sorts_and_slices(
    client: TestClient,
    alice: dict[str, str],
    shelf: list[Document],
    body: dict[str, Any],
    expected: list[str],
) -> None:
    assert names(client.post(FIND, headers=alice, json=body)) == expected


def test_find_with_nothing_to_find_is_an_empty_array(
    client: TestClient, store: Store, shelf: list[Document]
) -> None:
    response = client.post(FIND, headers=auth(api_key(store, CAROL)), json={})
    assert (response.status_code, response.content) == (200, b"[]")
    assert response.headers["content-length"] == "2"


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"{", "request body is not valid JSON: unexpected end of data: line 1 column 2 (char 1)"),
        (
            b"\xff",
            "request body is not valid JSON: str is not valid UTF-8: surrogates not allowed: "
            "line 1 column 1 (char 0)",
        ),
        (
            b"[" * 2000 + b"]" * 2000,
            "request body is not valid JSON: depth limit exceeded: line 1 column 1026 (char 1025)",
        ),
        (
            b'{"limit_from": 1e400}',
            "request body is not valid JSON: number is infinity when parsed as double: "
            "line 1 column 16 (char 15)",
        ),
        (b"[]", "request body must be a JSON object, got an array"),
        (b'"sort_key"', "request body must be a JSON object, got a string"),
        (b"42", "request body must be a JSON object, got a number"),
        (b'{"sort": "name"}', f"unknown key 'sort' in request body ({ALLOWED_KEYS})"),
        (b'{"filters": [["colour", "==", "red"]]}', "filters[0]: unknown field 'colour'"),
        (
            b'{"filters": [["model", "==", "o1"], ["name", "regex", "(a"]]}',
            "filters[1]: invalid regex: missing ): (a",
        ),
        (
            b'{"filters": [["assistant_id", "==", "nope"]]}',
            "filters[0]: 'assistant_id' takes a UUID string, got 'nope'",
        ),
        (
            b'{"filters": "model == o1"}',
            "filters must be an array of [field, operator, value], got 'model == o1'",
        ),
        (b'{"sort_order": 2}', "sort_order must be 0 (ascending) or 1 (descending), got 2"),
        (b'{"limit_from": 5, "limit_to": 2}', "limit_to (2) must not be less than limit_from (5)"),
        (
            b'{"limit_from": -1}',
            "limit_from must be an integer from 0 to 9223372036854775807, got -1",
        ),
        (
            orjson.dumps({"filters": [["messages.content", "regex", "a"]] * 51}),
            "filters: at most 50 filters, got 51",
        ),
        (
            orjson.dumps({"filters": [["messages.content", "regex", "a" * 1000]] * 5}),
            "filters: regex patterns may total at most 4000 characters, got 5000",
        ),
    ],
    ids=[
        "truncated",
        "not UTF-8",
        "too deep",
        "infinite number",
        "array",
        "string",
        "number",
        "unknown key",
        "unknown field",
        "invalid regex",
        "not a UUID",
        "filters not an array",
        "sort order",
        "limits reversed",
        "negative limit",
        "too many filters",
        "too much pattern text",
    ],
)
def test_find_with_a_malformed_body_is_400(
    client: TestClient, alice: dict[str, str], content: bytes, detail: str
) -> None:
    assert_error(client.post(FIND, headers=alice, content=content), 400, detail)


LIMIT = 64
TOO_LARGE = {"detail": f"request body larger than {LIMIT} bytes"}


@pytest.fixture
def small_client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, Settings(max_body_bytes=LIMIT))) as client:
        yield client


def padded(size: int) -> bytes:
    """A valid `find` body of exactly `size` bytes."""
    return b"{}".ljust(size)


def test_find_body_at_the_limit_is_read(
    small_client: TestClient, alice: dict[str, str], shelf: list[Document]
) -> None:
    assert names(small_client.post(FIND, headers=alice, content=padded(LIMIT))) == DEFAULT_ORDER


def test_find_body_over_the_limit_is_413(small_client: TestClient, alice: dict[str, str]) -> None:
    response = small_client.post(FIND, headers=alice, content=padded(LIMIT + 1))
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


def test_find_streamed_body_over_the_limit_is_413(
    small_client: TestClient, alice: dict[str, str]
) -> None:
    def chunks() -> Iterator[bytes]:
        # A generator is sent chunked, without Content-Length.
        yield b"{}"
        yield b" " * LIMIT

    response = small_client.post(FIND, headers=alice, content=chunks())
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


def post_chunks(
    app: FastAPI, headers: dict[str, str], chunks: list[bytes]
) -> tuple[int, bytes, int]:
    """POST `find` straight through ASGI, the body in `chunks`; also how many chunks were read."""
    pending = list(chunks)
    answer: dict[str, Any] = {"body": b""}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": FIND,
        "raw_path": FIND.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.7", 50000),
        "server": ("testserver", 80),
    }

    async def receive() -> Message:
        if not pending:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["body"], len(chunks) - len(pending)


def test_find_reading_stops_as_soon_as_the_body_is_over_the_limit(
    store: Store, alice: dict[str, str]
) -> None:
    app = create_app(store, Settings(max_body_bytes=LIMIT))
    chunks = [b"{}"] + [b" " * 31] * 10
    # After 2, 33, 64 (the limit: still fine) and 95 bytes, the rest is never read.
    assert post_chunks(app, alice, chunks) == (413, orjson.dumps(TOO_LARGE), 4)
    # A declared length over the limit is refused before a byte is read.
    declared = alice | {"content-length": "1000"}
    assert post_chunks(app, declared, chunks) == (413, orjson.dumps(TOO_LARGE), 0)
    # Under the limit, every chunk is read.
    assert post_chunks(app, alice, [b"{", b"}"]) == (200, b"[]", 2)


@pytest.fixture
def many(store: Store) -> list[Document]:
    """More than two store batches of Alice's conversations, in the default order."""
    count = 2 * BATCH + 57
    documents = [
        conversation(
            ALICE,
            id=uid(1_000 + n),
            name=f"conversation {n}",
            # Every third timestamp is shared, so ties are broken by id across batch boundaries.
            updated={"user_id": ALICE, "timestamp": 1_735_000_000_000 + n // 3},
            messages=[message(1_735_000_000_000 + n, id=uid(100_000 + n), content=f"hello {n}")],
        )
        for n in range(count)
    ]
    store.upsert(documents)
    return sorted(documents, key=lambda d: (d["updated"]["timestamp"], d["id"]), reverse=True)


def test_find_streams_a_large_result_exactly_as_pages_give_it(
    client: TestClient, alice: dict[str, str], many: list[Document]
) -> None:
    page = 150
    pages: list[Document] = []
    for start in range(0, len(many), page):
        response = client.post(
            FIND, headers=alice, json={"limit_from": start, "limit_to": start + page}
        )
        # A page within one batch is answered whole, with its length.
        assert response.headers["content-length"] == str(len(response.content))
        pages += response.json()
    assert pages == many

    streamed = client.post(FIND, headers=alice, json={})
    assert streamed.status_code == 200
    assert streamed.headers["content-type"] == "application/json"
    # Streamed: the length is not known when the answer starts.
    assert "content-length" not in streamed.headers
    assert streamed.content == orjson.dumps(many)

    window = client.post(FIND, headers=alice, json={"limit_from": 7, "limit_to": 7 + 2 * BATCH + 1})
    assert "content-length" not in window.headers
    assert window.content == orjson.dumps(many[7 : 7 + 2 * BATCH + 1])


# -- get -------------------------------------------------------------------------------------------


def test_get_answers_the_conversation_and_records_the_access(
    client: TestClient, alice: dict[str, str], own: Document
) -> None:
    before = now_ms()
    response = client.post(GET, headers=alice, params={"entity_id": own["id"]})
    after = now_ms()
    accessed(own, ALICE, before, after, response)
    assert response.headers["content-type"] == "application/json"
    # The access is stored, and find shows it without recording another.
    assert client.post(FIND, headers=alice).json() == [response.json()]


def test_get_takes_an_uppercase_id_and_answers_the_lowercase_one(
    client: TestClient, alice: dict[str, str], own: Document
) -> None:
    before = now_ms()
    response = client.post(GET, headers=alice, params={"entity_id": own["id"].upper()})
    accessed(own, ALICE, before, now_ms(), response)


@pytest.mark.parametrize(
    "query",
    [
        "entity_id={id}",
        "entity_id={ID}",
        "entity_id={quoted}",
        "entity_id={id}&other=1",
        "other=1&entity_id={ID}",
        "entity_id=x&entity_id={id}",
    ],
)
def test_get_reads_the_entity_id_however_the_query_is_written(
    client: TestClient, alice: dict[str, str], own: Document, query: str
) -> None:
    # The last `entity_id` counts; `%2D` is a `-`.
    id_ = own["id"]
    written = query.format(id=id_, ID=id_.upper(), quoted=id_.replace("-", "%2D"))
    before = now_ms()
    response = client.post(f"{GET}?{written}", headers=alice)
    accessed(own, ALICE, before, now_ms(), response)


@pytest.mark.parametrize("path", [GET, DELETE])
def test_missing_entity_id_is_400(client: TestClient, alice: dict[str, str], path: str) -> None:
    assert_error(client.post(path, headers=alice), 400, "entity_id: query parameter is required")


@pytest.mark.parametrize("path", [GET, DELETE])
@pytest.mark.parametrize(
    "entity_id",
    [
        "",
        "xyz",
        "550e8400e29b41d4a716446655440000",
        "{550e8400-e29b-41d4-a716-446655440000}",
        " 550e8400-e29b-41d4-a716-446655440000",
        "550e8400-e29b-41d4-a716-44665544000g",
        "550e8400-e29b-41d4-a716-4466554400000",
    ],
)
def test_malformed_entity_id_is_400(
    client: TestClient, alice: dict[str, str], path: str, entity_id: str
) -> None:
    response = client.post(path, headers=alice, params={"entity_id": entity_id})
    assert_error(response, 400, f"entity_id: not a UUID: {entity_id!r}")


@pytest.mark.parametrize("path", [GET, DELETE])
def test_unknown_entity_id_is_404(
    client: TestClient, alice: dict[str, str], own: Document, path: str
) -> None:
    response = client.post(path, headers=alice, params={"entity_id": UNKNOWN})
    assert_error(response, 404, f"not found, id: {UNKNOWN}")
    response = client.post(path, headers=alice, params={"entity_id": UNKNOWN.upper()})
    assert_error(response, 404, f"not found, id: {UNKNOWN}")


# -- delete ----------------------------------------------------------------------------------------


def message_count(store: SqlStore, conversation_id: str) -> int:
    statement = select(func.count()).where(messages.c.conversation_id == conversation_id)
    with store.engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def test_delete_removes_the_conversation_and_its_messages(
    client: TestClient, sql_store: SqlStore, alice: dict[str, str], own: Document
) -> None:
    other = conversation(ALICE, id=uid(2), messages=[message(id=uid(201))])
    sql_store.upsert([other])
    assert message_count(sql_store, own["id"]) == 2

    response = client.post(DELETE, headers=alice, params={"entity_id": own["id"].upper()})
    assert (response.status_code, response.content) == (200, f'"{own["id"]}"'.encode())
    assert response.headers["content-type"] == "application/json"

    assert client.post(FIND, headers=alice).json() == [other]
    by_message = {"filters": [["messages.id", "==", uid(101)]]}
    assert client.post(FIND, headers=alice, json=by_message).json() == []
    assert message_count(sql_store, own["id"]) == 0
    assert message_count(sql_store, other["id"]) == 1
    missing = f"not found, id: {own['id']}"
    assert_error(client.post(GET, headers=alice, params={"entity_id": own["id"]}), 404, missing)
    assert_error(client.post(DELETE, headers=alice, params={"entity_id": own["id"]}), 404, missing)


# -- permissions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"filters": [["created.user_id", "==", ALICE]]},
        {"filters": [["created.user_id", "!=", BOB]]},
        {"filters": [["created.user_id", "==", None]]},
        {"filters": [["name", "regex", ".*"]]},
        {"filters": [["id", "regex", ".*"]]},
        {"filters": [["id", "==", uid(1)]]},
    ],
)
def test_another_user_never_finds_alices_conversations(
    client: TestClient, store: Store, bob: dict[str, str], own: Document, body: dict[str, Any]
) -> None:
    nobodys = conversation(None, id=uid(3))
    store.upsert([nobodys])
    assert client.post(FIND, headers=bob, json=body).json() == []


def test_a_filter_on_the_creator_cannot_widen_the_result(
    client: TestClient, bob: dict[str, str], shelf: list[Document]
) -> None:
    everyone = {"filters": [["name", "regex", ".*"]]}
    assert names(client.post(FIND, headers=bob, json=everyone)) == ["Bob's python notes"]
    mine = {"filters": [["created.user_id", "==", BOB]]}
    assert names(client.post(FIND, headers=bob, json=mine)) == ["Bob's python notes"]


@pytest.mark.parametrize("path", [GET, DELETE])
def test_someone_elses_conversation_is_403_and_left_alone(
    client: TestClient,
    alice: dict[str, str],
    bob: dict[str, str],
    own: Document,
    path: str,
) -> None:
    response = client.post(path, headers=bob, params={"entity_id": own["id"]})
    assert_error(response, 403, f"conversation {own['id']} belongs to another user")
    # Still there for its owner, and Bob's attempt was not recorded as an access.
    assert client.post(FIND, headers=alice).json() == [own]


@pytest.mark.parametrize("path", [GET, DELETE])
def test_a_conversation_without_creator_is_nobodys(
    client: TestClient, store: Store, alice: dict[str, str], path: str
) -> None:
    nobodys = conversation(None, id=uid(3))
    store.upsert([nobodys])
    response = client.post(path, headers=alice, params={"entity_id": nobodys["id"]})
    assert_error(response, 403, f"conversation {nobodys['id']} belongs to another user")
    assert exported(store) == [nobodys]


# -- routing and unexpected errors -----------------------------------------------------------------


@pytest.mark.parametrize("path", [FIND, GET, DELETE])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_wrong_method_is_405(
    client: TestClient, alice: dict[str, str], path: str, method: str
) -> None:
    response = client.request(method, path, headers=alice)
    assert_error(response, 405, "Method Not Allowed")
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "path", ["/api", f"{BASE}/list", BASE, f"{FIND}x", "/api/v2/conversation/find"]
)
def test_unknown_path_is_404(client: TestClient, alice: dict[str, str], path: str) -> None:
    assert_error(client.post(path, headers=alice, json={}), 404, "Not Found")


class BrokenStore(SqlStore):
    """The real store, but every read fails the way a lost database connection does."""

    def find(self, owner: str, query: Query) -> Iterator[list[Document]]:
        raise RuntimeError("connection to /var/lib/secret.db lost")

    def get(self, owner: str, conversation_id: str, now: int) -> Document:
        raise RuntimeError("connection to /var/lib/secret.db lost")


class FailsWhileReading(SqlStore):
    """Fails on the first batch, after the query has been accepted."""

    def find(self, owner: str, query: Query) -> Iterator[list[Document]]:
        raise RuntimeError("connection to /var/lib/secret.db lost")
        yield []


@pytest.mark.parametrize(
    ("broken", "path", "params"),
    [
        (BrokenStore, FIND, {}),
        (BrokenStore, GET, {"entity_id": UNKNOWN}),
        (FailsWhileReading, FIND, {}),
    ],
)
def test_unexpected_error_is_500_with_a_request_id_and_no_trace(
    sql_store: SqlStore,
    caplog: pytest.LogCaptureFixture,
    broken: type[SqlStore],
    path: str,
    params: dict[str, str],
) -> None:
    key = api_key(sql_store, ALICE)
    app = create_app(broken(sql_store.engine, sql_store.dialect))
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        caplog.at_level(logging.ERROR, logger="ayeto.api"),
    ):
        response = client.post(path, headers=auth(key), params=params, json={})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    match = re.fullmatch(
        r'\{"detail":"internal server error \(request id ([0-9a-f]{32})\)"\}', response.text
    )
    assert match is not None, response.text
    # The request id in the answer finds the full error in the log, and only there.
    [record] = [r for r in caplog.records if r.name == "ayeto.api"]
    assert match[1] in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


# -- health ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/livez", b'{"status":"ok"}'),
        ("/healthz", b'{"status":"ok"}'),
        ("/readyz", b'{"status":"ready"}'),
    ],
)
def test_health_needs_no_key(client: TestClient, path: str, body: bytes) -> None:
    response = client.get(path)
    assert (response.status_code, response.content) == (200, body)
    assert response.headers["content-type"] == "application/json"


class NotReadyStore(SqlStore):
    def is_ready(self) -> bool:
        return False


def test_readyz_is_503_when_the_store_is_not_ready(sql_store: SqlStore) -> None:
    app = create_app(NotReadyStore(sql_store.engine, sql_store.dialect))
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert_error(response, 503, "database unavailable or schema not current")
        # The process itself is alive.
        assert client.get("/livez").status_code == 200

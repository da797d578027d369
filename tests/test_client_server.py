"""`ayeto.client` against a real `ayeto serve` over HTTP: every method, every error a server
answers, and walks over thousands of conversations while they change."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ayeto.auth import create_key
from ayeto.client import (
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    Conversation,
    F,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from ayeto.store import Store, open_store
from tests import factories
from tests.processes import Server, serving

pytestmark = pytest.mark.e2e

BASE = 1_750_000_000_000


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('client') / 'ayeto.db'}"


@pytest.fixture(scope="module")
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def server(database_url: str, store: Store) -> Iterator[Server]:
    with serving(database_url) as running:
        yield running


def user_with_key(store: Store, rate_limit: str | None = None) -> tuple[str, str]:
    """A new user, who owns nothing yet, and a key of theirs."""
    user = str(uuid.uuid4())
    return user, create_key(store, user, rate_limit=rate_limit)[0]


def conversations(owner: str, count: int, tie: int = 1) -> list[dict[str, Any]]:
    """`count` conversations of `owner`, updated in groups of `tie` at one timestamp."""
    return [
        factories.conversation(
            owner,
            name=f"conversation {i}",
            model="gpt-4o" if i % 2 else "o3",
            updated={"user_id": owner, "timestamp": BASE + (i // tie) * 1000},
            messages=[factories.message(content=f"about kubernetes {i}" if i % 5 == 0 else "hi")],
        )
        for i in range(count)
    ]


def test_find_get_delete(server: Server, store: Store) -> None:
    user, key = user_with_key(store)
    documents = conversations(user, 10)
    store.upsert(documents)
    with Client(api_key=key, base_url=server.base_url) as client:
        found = client.find(
            [F.model == "gpt-4o", F.messages.content.regex("kubernetes")],
            sort_key="name",
            sort_order=1,
        )
        assert [c.name for c in found] == ["conversation 5"]
        everything = client.find(sort_key="updated.timestamp", limit_from=2, limit_to=5)
        assert [str(c.id) for c in everything] == [d["id"] for d in documents[2:5]]
        assert everything[0] == Conversation.model_validate(documents[2])
        assert client.find_raw(limit_from=2, limit_to=3, sort_key="updated.timestamp") == [
            documents[2]
        ]

        got = client.get(uuid.UUID(documents[0]["id"]))
        assert got.id == uuid.UUID(documents[0]["id"])
        assert str(got.accessed.user_id) == user
        assert got.accessed.timestamp > 0

        assert client.delete(documents[0]["id"].upper()) == documents[0]["id"]
        with pytest.raises(NotFoundError) as deleted:
            client.delete(documents[0]["id"])
        assert deleted.value.status_code == 404
        assert deleted.value.detail == f"not found, id: {documents[0]['id']}"
        assert len(client.find()) == 9


def test_filter_builder_against_the_server(server: Server, store: Store) -> None:
    user, key = user_with_key(store)
    documents = conversations(user, 20)
    store.upsert(documents)
    after = datetime.fromtimestamp((BASE + 15_000) / 1000, UTC)
    with Client(api_key=key, base_url=server.base_url) as client:
        assert [c.name for c in client.find([F.updated.timestamp > after], sort_key="name")] == [
            f"conversation {i}" for i in (16, 17, 18, 19)
        ]
        assert len(client.find([("model", "==", "o3"), F.name.regex(r"(?i)CONVERSATION 1\d")])) == 5
        assert len(client.find([F.assistant_id.is_null(), F.id != documents[0]["id"]])) == 19


def test_every_error_a_server_answers(server: Server, store: Store) -> None:
    _, key = user_with_key(store)
    theirs = factories.conversation(str(uuid.uuid4()))
    store.upsert([theirs])
    with Client(api_key=key, base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(BadRequestError) as bad:
            client.find(limit_from=5, limit_to=1)
        assert (bad.value.status_code, bad.value.detail) == (
            400,
            "limit_to (1) must not be less than limit_from (5)",
        )
        assert re.fullmatch(r"[0-9a-f]{32}", bad.value.request_id or "")
        assert bad.value.request_id == bad.value.response.headers["X-Request-ID"]

        with pytest.raises(PermissionDeniedError) as denied:
            client.get(theirs["id"])
        assert (denied.value.status_code, denied.value.detail) == (
            403,
            f"conversation {theirs['id']} belongs to another user",
        )
        missing = str(uuid.uuid4())
        with pytest.raises(NotFoundError) as not_found:
            client.get(missing)
        assert not_found.value.detail == f"not found, id: {missing}"

    with Client(api_key="ayeto-" + "0" * 64, base_url=server.base_url) as client:
        with pytest.raises(AuthenticationError) as unauthorized:
            client.find()
        assert (unauthorized.value.status_code, unauthorized.value.detail) == (
            401,
            "API key is invalid",
        )

    _, limited = user_with_key(store, rate_limit="1/minute")
    with Client(api_key=limited, base_url=server.base_url, max_retries=0) as client:
        assert client.find() == []
        with pytest.raises(RateLimitError) as limit:
            client.find()
        assert limit.value.status_code == 429
        assert limit.value.retry_after is not None
        assert limit.value.detail == (
            f"rate limit exceeded: 1 per 1 minute; retry in {int(limit.value.retry_after)} s"
        )


@pytest.mark.parametrize("tie", [1, 7, 5000])
def test_iter_find_walks_thousands(server: Server, store: Store, tie: int) -> None:
    """Every match once, in order, whether timestamps differ, tie in groups, or are all equal."""
    user, key = user_with_key(store)
    documents = conversations(user, 2500, tie)
    store.upsert(documents)
    with Client(api_key=key, base_url=server.base_url) as client:
        walked = [str(c.id) for c in client.iter_find(page_size=200)]
        assert walked == [d["id"] for d in sorted(documents, key=_order)]
        wanted = [d["id"] for d in sorted(documents, key=_order) if d["model"] == "o3"]
        assert [d["id"] for d in client.iter_find_raw([F.model == "o3"], page_size=99)] == wanted


def _order(document: dict[str, Any]) -> tuple[int, str]:
    return document["updated"]["timestamp"], document["id"]


def test_iter_find_with_writes_during_the_walk(server: Server, store: Store) -> None:
    """Conversations updated, deleted and created mid-walk: nothing missed, nothing twice.

    Offset paging over the same writes misses conversations: the walk is what makes the
    difference.
    """

    def walk(paged_by_offset: bool) -> tuple[list[str], set[str]]:
        user, key = user_with_key(store)
        documents = conversations(user, 100, tie=3)
        store.upsert(documents)
        ordered = sorted(documents, key=_order)
        yielded: list[str] = []
        with Client(api_key=key, base_url=server.base_url) as client:
            pages = _offset_pages(client) if paged_by_offset else _walk_pages(client, page_size=10)
            for number, page in enumerate(pages):
                yielded += page
                if number == 1:
                    # Two already seen and two ahead move to the end; two ahead are deleted.
                    moved = [ordered[0], ordered[15], ordered[40], ordered[70]]
                    store.upsert(
                        d | {"updated": {"user_id": user, "timestamp": BASE + 10**6 + i}}
                        for i, d in enumerate(moved)
                    )
                    for gone in (ordered[50], ordered[51]):
                        store.delete(user, gone["id"])
                    new = conversations(user, 3)
                    store.upsert(
                        d | {"updated": {"user_id": user, "timestamp": BASE + 2 * 10**6}}
                        for d in new
                    )
        expected = {d["id"] for d in documents} - {ordered[50]["id"], ordered[51]["id"]}
        return yielded, expected | {d["id"] for d in new}

    yielded, expected = walk(paged_by_offset=False)
    assert len(yielded) == len(set(yielded)) == 101
    assert set(yielded) == expected
    by_offset, expected = walk(paged_by_offset=True)
    assert expected - set(by_offset)


def _walk_pages(client: Client, page_size: int) -> Iterator[list[str]]:
    page: list[str] = []
    for conversation in client.iter_find(page_size=page_size):
        page.append(str(conversation.id))
        if len(page) == page_size:
            yield page
            page = []
    yield page


def _offset_pages(client: Client) -> Iterator[list[str]]:
    start = 0
    while page := client.find(sort_key="updated.timestamp", limit_from=start, limit_to=start + 10):
        yield [str(c.id) for c in page]
        start += 10


def test_async_client(server: Server, store: Store) -> None:
    user, key = user_with_key(store)
    documents = conversations(user, 450, tie=4)
    store.upsert(documents)

    async def main() -> tuple[list[str], list[str], str, str]:
        async with AsyncClient(api_key=key, base_url=server.base_url) as client:
            walked = [str(c.id) async for c in client.iter_find(page_size=100)]
            raw = [d["id"] async for d in client.iter_find_raw([F.model == "o3"])]
            got = await client.get(documents[3]["id"])
            deleted = await client.delete(documents[3]["id"])
            with pytest.raises(NotFoundError):
                await client.get(documents[3]["id"])
            assert len(await client.find(limit_to=7)) == 7
            assert len(await client.find_raw(limit_to=3)) == 3
            return walked, raw, str(got.id), deleted

    walked, raw, got, deleted = asyncio.run(main())
    ordered = sorted(documents, key=_order)
    assert walked == [d["id"] for d in ordered]
    assert raw == [d["id"] for d in ordered if d["model"] == "o3"]
    assert got == deleted == documents[3]["id"]


def test_environment_names_key_and_server(
    server: Server, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, key = user_with_key(store)
    store.upsert(conversations(user, 3))
    monkeypatch.setenv("AYETO_API_KEY", key)
    monkeypatch.setenv("AYETO_BASE_URL", server.base_url + "/")
    with Client() as client:
        assert len(client.find()) == 3

"""`delete_where` (sync and async): over `httpx.MockTransport`, the requests it sends and what it
makes of each answer; against a real `ayeto serve`, exactly what it deletes, under a rate limit."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ayeto.auth import create_key
from ayeto.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    DeleteResult,
    F,
    InternalServerError,
)
from ayeto.store import Store, open_store
from tests import factories
from tests.processes import Server as Serving
from tests.processes import serving
from tests.test_client_http import KEY, Server, client, sleeps, status

__all__ = ["sleeps"]  # the fixture, used by name

IDS = [f"a0000000-0000-4000-8000-00000000000{i}" for i in range(1, 5)]
PAGE = [
    factories.conversation(id=id_, updated={"user_id": None, "timestamp": t})
    for t, id_ in enumerate(IDS)
]
NO_FILTER = (
    "delete_where takes at least one filter; to delete every conversation, say so: "
    "[F.created.timestamp >= -2**63]"
)


def sent(server: Server) -> list[str]:
    """Each request as `endpoint` or `endpoint id`."""
    return [
        r.url.path.rsplit("/", 1)[1] + (f" {r.url.params['entity_id']}" if r.url.params else "")
        for r in server.requests
    ]


def test_dry_run_only_finds() -> None:
    # A full page, the rest of its last timestamp (none), then the page after it.
    server = Server(status(200, PAGE[:2]), status(200, []), status(200, PAGE[2:3]))
    result = client(server).delete_where([F.model == "gpt-4o"], dry_run=True, page_size=2)
    assert result == DeleteResult(matched=IDS[:3])
    assert sent(server) == ["find", "find", "find"]
    assert json.loads(server.requests[0].content)["filters"] == [["model", "==", "gpt-4o"]]


def test_each_match_is_deleted_or_accounted_for(sleeps: list[float]) -> None:
    server = Server(
        status(200, PAGE),
        status(200, IDS[0]),
        status(429, {"detail": "rate limit exceeded"}, **{"Retry-After": "2"}),
        status(200, IDS[1]),
        status(404, {"detail": f"not found, id: {IDS[2]}"}),
        status(500, {"detail": "internal error"}),
    )
    result = client(server).delete_where([("model", "==", "gpt-4o")])
    assert sent(server) == [
        "find",
        f"delete {IDS[0]}",
        f"delete {IDS[1]}",
        f"delete {IDS[1]}",
        f"delete {IDS[2]}",
        f"delete {IDS[3]}",
    ]
    assert sleeps == [2.0]
    assert (result.matched, result.deleted, result.gone) == (IDS, IDS[:2], [IDS[2]])
    assert list(result.failed) == [IDS[3]]
    error = result.failed[IDS[3]]
    assert isinstance(error, InternalServerError)
    assert (error.status_code, error.detail) == (500, "internal error")


def test_an_invalid_key_is_raised() -> None:
    server = Server(status(200, PAGE[:1]), status(401, {"detail": "invalid API key"}))
    with pytest.raises(AuthenticationError) as raised:
        client(server).delete_where([F.model == "gpt-4o"])
    assert raised.value.detail == "invalid API key"


def test_no_filter_is_refused_before_any_request() -> None:
    server = Server()
    with pytest.raises(ValueError, match=r"^delete_where takes at least one filter") as refused:
        client(server).delete_where([])
    assert str(refused.value) == NO_FILTER
    with pytest.raises(TypeError, match=r"a filter is a \(field, operator, value\) triple"):
        client(server).delete_where([("model", "==")])  # type: ignore[list-item]
    assert server.requests == []


def test_async_twin(sleeps: list[float]) -> None:
    server = Server(
        status(200, PAGE[:2]),
        status(429, {"detail": "rate limit exceeded"}, **{"Retry-After": "1"}),
        status(200, IDS[0]),
        status(404, {"detail": f"not found, id: {IDS[1]}"}),
    )

    async def main() -> tuple[DeleteResult, DeleteResult]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(server))
        async with AsyncClient(api_key=KEY, http_client=http) as api:
            result = await api.delete_where([F.model == "gpt-4o"])
            server.answers.append(status(200, PAGE[2:]))
            dry = await api.delete_where([F.model == "gpt-4o"], dry_run=True)
            with pytest.raises(ValueError, match=r"^delete_where takes at least one filter"):
                await api.delete_where([])
        await http.aclose()
        return result, dry

    result, dry = asyncio.run(main())
    assert result == DeleteResult(matched=IDS[:2], deleted=IDS[:1], gone=IDS[1:2])
    assert dry == DeleteResult(matched=IDS[2:])
    assert sleeps == [1.0]


# -- against `ayeto serve` -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('delete_where') / 'ayeto.db'}"
    opened = open_store(url)
    try:
        yield opened, url
    finally:
        opened.close()


@pytest.fixture(scope="module")
def server(store: tuple[Store, str]) -> Iterator[Serving]:
    with serving(store[1]) as running:
        yield running


def owned(store: Store, count: int) -> tuple[str, list[dict[str, Any]]]:
    user = str(uuid.uuid4())
    documents = [
        factories.conversation(
            user,
            model="gpt-4o" if i % 2 else "o3",
            updated={"user_id": user, "timestamp": 1_750_000_000_000 + i},
        )
        for i in range(count)
    ]
    store.upsert(documents)
    return user, documents


@pytest.mark.e2e
def test_against_the_server_within_its_rate_limit(
    server: Serving, store: tuple[Store, str]
) -> None:
    opened = store[0]
    user, documents = owned(opened, 12)
    other, theirs = owned(opened, 2)
    # 5 requests a second: the 6 deletions and the finds go past it, and wait their turn.
    key = create_key(opened, user, rate_limit="5/second")[0]
    gpt = [d["id"] for d in documents if d["model"] == "gpt-4o"]
    with Client(api_key=key, base_url=server.base_url, max_retries=10) as api:
        dry = api.delete_where([F.model == "gpt-4o"], dry_run=True, page_size=4)
        assert dry == DeleteResult(matched=gpt)
        result = api.delete_where([F.model == "gpt-4o"], page_size=4)
        assert result == DeleteResult(matched=gpt, deleted=gpt)
        assert [str(c.id) for c in api.iter_find()] == [
            d["id"] for d in documents if d["model"] == "o3"
        ]
        assert api.delete_where([F.model == "gpt-4o"]) == DeleteResult(matched=[])
    assert sorted(d["id"] for d in opened.export(other)) == sorted(d["id"] for d in theirs)

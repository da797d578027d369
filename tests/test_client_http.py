"""`ayeto.client` over `httpx.MockTransport`: requests sent, retries, `Retry-After`, timeouts,
and answers that are not what the API sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from ayeto.client import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AyetoError,
    Client,
    F,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    aio,
    sync,
)
from ayeto.client.core import KEEPALIVE_EXPIRY
from tests import factories

KEY = "ayeto-" + "a" * 64
ID = "550e8400-e29b-41d4-a716-446655440000"
Answer = httpx.Response | Exception


class Server:
    """Answers requests from a script, one item per request; records what it was sent."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []

    async def asleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(sync, "_sleep", waited.append)
    monkeypatch.setattr(aio, "_sleep", asleep)
    return waited


def client(server: Server, **options: Any) -> Client:
    http = httpx.Client(transport=httpx.MockTransport(server))
    return Client(api_key=KEY, base_url="http://ayeto.test/", http_client=http, **options)


def status(code: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(code, json=body, headers=headers)


def test_find_sends_the_spec_body_and_headers() -> None:
    server = Server(status(200, []))
    when = datetime(2025, 1, 1, tzinfo=UTC)
    assert (
        client(server).find(
            [F.model == "gpt-4o", F.created.timestamp > when, ("messages.role", "!=", None)],
            sort_key="updated.timestamp",
            sort_order=1,
            limit_from=0,
            limit_to=10,
        )
        == []
    )
    [request] = server.requests
    assert (request.method, str(request.url)) == (
        "POST",
        "http://ayeto.test/api/v3/conversation/find",
    )
    assert request.headers["uni-api-key"] == KEY
    assert request.headers["user-agent"] == "ayeto-python/0.1.0"
    assert json.loads(request.content) == {
        "filters": [
            ["model", "==", "gpt-4o"],
            ["created.timestamp", ">", 1735689600000],
            ["messages.role", "!=", None],
        ],
        "sort_key": "updated.timestamp",
        "sort_order": 1,
        "limit_from": 0,
        "limit_to": 10,
    }


def test_get_and_delete_send_the_id_as_entity_id() -> None:
    document = factories.conversation(id=ID)
    server = Server(status(200, document), status(200, ID))
    with client(server) as api:
        assert str(api.get(ID.upper()).id) == ID
        assert api.delete(ID) == ID
    assert [str(r.url) for r in server.requests] == [
        f"http://ayeto.test/api/v3/conversation/get?entity_id={ID.upper()}",
        f"http://ayeto.test/api/v3/conversation/delete?entity_id={ID}",
    ]


def test_no_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AYETO_API_KEY", raising=False)
    with pytest.raises(AyetoError) as missing:
        Client()
    assert str(missing.value) == "no API key: pass api_key=... or set AYETO_API_KEY"


def test_retries_503_then_succeeds_with_backoff(sleeps: list[float]) -> None:
    server = Server(
        status(503, {"detail": "down"}), status(503, {"detail": "down"}), status(200, [])
    )
    assert client(server).find() == []
    assert len(server.requests) == 3
    assert 0.375 <= sleeps[0] <= 0.5
    assert 0.75 <= sleeps[1] <= 1.0


def test_retry_after_is_honoured(sleeps: list[float]) -> None:
    server = Server(status(429, {"detail": "slow down"}, **{"Retry-After": "3"}), status(200, []))
    assert client(server).find() == []
    assert sleeps == [3.0]


def test_gives_up_after_max_retries(sleeps: list[float]) -> None:
    limited = status(429, {"detail": "rate limit exceeded"}, **{"Retry-After": "2"})
    server = Server(limited, limited, limited)
    with pytest.raises(RateLimitError) as error:
        client(server, max_retries=2).find()
    assert (error.value.status_code, error.value.detail, error.value.retry_after) == (
        429,
        "rate limit exceeded",
        2.0,
    )
    assert (len(server.requests), sleeps) == (3, [2.0, 2.0])


def test_a_retry_after_past_the_bound_is_not_waited_for(sleeps: list[float]) -> None:
    server = Server(status(429, {"detail": "rate limit exceeded"}, **{"Retry-After": "3600"}))
    with pytest.raises(RateLimitError) as error:
        client(server).find()
    assert (error.value.retry_after, len(server.requests), sleeps) == (3600.0, 1, [])


def test_no_retries_when_max_retries_is_zero(sleeps: list[float]) -> None:
    server = Server(status(503, {"detail": "the database is unavailable; try again shortly"}))
    with pytest.raises(InternalServerError) as error:
        client(server, max_retries=0).find()
    assert (error.value.status_code, len(server.requests)) == (503, 1)


def test_other_statuses_are_not_retried(sleeps: list[float]) -> None:
    server = Server(status(500, {"detail": "internal server error (request id abc)"}))
    with pytest.raises(InternalServerError) as error:
        client(server).find()
    assert error.value.detail == "internal server error (request id abc)"
    assert len(server.requests) == 1


def test_connection_errors_are_retried(sleeps: list[float]) -> None:
    """A connection the server closed while idle fails the next request: it is sent again."""
    server = Server(
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("refused"),
        status(200, []),
    )
    assert client(server).find() == []
    assert len(server.requests) == 3
    assert KEEPALIVE_EXPIRY < 5


def test_connection_error_after_retries(sleeps: list[float]) -> None:
    server = Server(*[httpx.ConnectError("refused")] * 3)
    with pytest.raises(APIConnectionError) as error:
        client(server).get(ID)
    assert str(error.value) == "connection error: refused"
    assert not isinstance(error.value, APITimeoutError)


def test_timeouts(sleeps: list[float]) -> None:
    server = Server(*[httpx.ReadTimeout("slow")] * 2)
    with pytest.raises(APITimeoutError) as error:
        client(server, max_retries=1, timeout=2.5).find()
    assert str(error.value) == "request timed out"
    assert len(server.requests) == 2
    assert server.requests[0].extensions["timeout"] == {
        "connect": 2.5,
        "read": 2.5,
        "write": 2.5,
        "pool": 2.5,
    }


DELETE_RULE = [
    # The first answer was lost after the request was sent: the 404 that follows means it was
    # deleted by that first attempt.
    (httpx.ReadTimeout("slow"), ID),
    (httpx.RemoteProtocolError("closed"), ID),
    (status(503, {"detail": "the database is unavailable; try again shortly"}), ID),
    # The first attempt was refused before being carried out: the 404 is the answer.
    (httpx.ConnectError("refused"), None),
    (status(429, {"detail": "rate limit exceeded"}, **{"Retry-After": "0"}), None),
]


@pytest.mark.parametrize(("first", "answer"), DELETE_RULE)
def test_delete_after_a_lost_answer(first: Answer, answer: str | None, sleeps: list[float]) -> None:
    server = Server(first, status(404, {"detail": f"not found, id: {ID}"}))
    if answer is None:
        with pytest.raises(NotFoundError) as error:
            client(server).delete(ID)
        assert error.value.detail == f"not found, id: {ID}"
    else:
        assert client(server).delete(ID) == answer
    assert len(server.requests) == 2


MALFORMED = [
    (
        lambda api: api.find(),
        httpx.Response(200, text="<html>hello</html>"),
        "the server's answer (200) is not JSON: <html>hello</html>",
    ),
    (
        lambda api: api.find(),
        status(200, {"detail": "not a list"}),
        "the server's answer is not a list of conversations: "
        "the answer: Input should be a valid list",
    ),
    (
        lambda api: api.get(ID),
        status(200, {"id": ID}),
        "the server's answer is not a conversation: name: Field required",
    ),
    (
        lambda api: api.find(),
        status(200, [factories.conversation(model=7)]),
        "the server's answer is not a list of conversations: "
        "0.model: Input should be a valid string",
    ),
    (
        lambda api: api.delete(ID),
        status(200, {"id": ID}),
        'the server\'s answer is not the deleted id: {"id":"' + ID + '"}',
    ),
    (
        lambda api: list(api.iter_find()),
        status(200, [{"name": "no id"}]),
        "the server's answer is not a list of conversations: a conversation has no id",
    ),
]


@pytest.mark.parametrize(("call", "answer", "message"), MALFORMED)
def test_malformed_answers_are_clear_errors(
    call: Callable[[Client], object], answer: httpx.Response, message: str
) -> None:
    with pytest.raises(APIResponseValidationError) as error:
        call(client(Server(answer)))
    assert str(error.value) == message
    assert error.value.status_code == 200


@pytest.mark.parametrize(
    ("answer", "kind", "detail"),
    [
        (
            httpx.Response(502, text="<html>bad gateway</html>"),
            InternalServerError,
            "<html>bad gateway</html>",
        ),
        (httpx.Response(418, text=""), APIStatusError, "I'm a teapot"),
        (status(409, {"detail": "conflict"}), APIStatusError, "conflict"),
    ],
)
def test_other_error_statuses(
    answer: httpx.Response, kind: type[APIStatusError], detail: str
) -> None:
    with pytest.raises(APIStatusError) as error:
        client(Server(answer)).find()
    assert type(error.value) is kind
    assert (error.value.status_code, error.value.detail) == (answer.status_code, detail)


def test_a_passed_in_client_stays_open_and_an_own_one_closes() -> None:
    http = httpx.Client(transport=httpx.MockTransport(Server()))
    with Client(api_key=KEY, http_client=http):
        pass
    assert not http.is_closed
    with Client(api_key=KEY) as own:
        pass
    assert own._http.is_closed


def test_iter_find_sends_keyset_pages() -> None:
    first = [factories.conversation(updated={"user_id": None, "timestamp": t}) for t in (1, 2)]
    tie = [factories.conversation(updated={"user_id": None, "timestamp": 2})]
    later = [factories.conversation(updated={"user_id": None, "timestamp": 3})]
    server = Server(status(200, first), status(200, tie), status(200, later))
    walked = [str(c.id) for c in client(server).iter_find([F.model == "gpt-4o"], page_size=2)]
    assert walked == [d["id"] for d in first + tie + later]
    sent = [json.loads(r.content) for r in server.requests]
    model = ["model", "==", "gpt-4o"]
    assert sent == [
        _page([model], "updated.timestamp"),
        _page([model, ["updated.timestamp", "==", 2], ["id", ">", first[1]["id"]]], "id"),
        _page([model, ["updated.timestamp", ">", 2]], "updated.timestamp"),
    ]


def _page(filters: list[list[Any]], sort_key: str) -> dict[str, Any]:
    return {
        "filters": filters,
        "sort_key": sort_key,
        "sort_order": 0,
        "limit_from": 0,
        "limit_to": 2,
    }


def test_async_client_retries_and_reads(sleeps: list[float]) -> None:
    server = Server(httpx.ConnectError("refused"), status(200, [factories.conversation(id=ID)]))

    async def main() -> list[str]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(server))
        async with AsyncClient(api_key=KEY, http_client=http) as api:
            found = await api.find()
            server.answers.append(httpx.Response(200, text="oops"))
            with pytest.raises(APIResponseValidationError):
                await api.get(ID)
        assert not http.is_closed
        await http.aclose()
        return [str(c.id) for c in found]

    assert asyncio.run(main()) == [ID]
    assert len(sleeps) == 1


def test_filter_values_are_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        client(Server()).find([F.created.timestamp > datetime(2025, 1, 1)])
    with pytest.raises(TypeError, match=r"a filter is a \(field, operator, value\) triple"):
        client(Server()).find([("model", "==")])  # type: ignore[list-item]


def test_page_size_is_checked() -> None:
    with pytest.raises(ValueError, match="page_size must be an integer of at least 1, got 0"):
        list(client(Server()).iter_find(page_size=0))

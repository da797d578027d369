"""The three endpoints of the Conversation API v3: parse, authorize, ask the store, answer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ayeto import query as filters
from ayeto.api import errors
from ayeto.api.errors import WWW_AUTHENTICATE
from ayeto.api.openapi import SAMPLE_FIND, SAMPLE_ID, ref
from ayeto.api.security import REQUIRED, authorize
from ayeto.api.services import Services, services
from ayeto.clock import now_ms
from ayeto.errors import BadRequest, PayloadTooLarge
from ayeto.models import UUID_PATTERN, ErrorBody, PublicConversationView
from ayeto.query import parse_query, short
from ayeto.store import Document, Store

JSON = "application/json"

router = APIRouter(prefix="/api/v3/conversation", tags=["conversation"])

_ERRORS: dict[int, str] = {
    400: "Bad request: invalid parameters or filter; `detail` says what and where.",
    401: "Missing or invalid API key (`uni-api-key` header).",
    403: "The conversation belongs to another user.",
    404: "No conversation with this id.",
    413: "The request body is too large.",
    429: "Over the key's rate limit; try again after `Retry-After` seconds.",
    503: "The database is unavailable; try again after `Retry-After` seconds.",
}
_RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
        "example": 1,
    }
}
# draft-ietf-httpapi-ratelimit-headers-11: on every answer once the key is known to be valid.
_RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Policy": {
        "description": "The key's rate limits: a name, `q` requests per `w` seconds each "
        "(draft-ietf-httpapi-ratelimit-headers).",
        "required": True,
        "schema": {"type": "string"},
        "example": '"600-per-60s";q=600;w=60',
    },
    "RateLimit": {
        "description": "What is left of each limit: `r` more requests within the next `t` "
        "seconds (draft-ietf-httpapi-ratelimit-headers).",
        "required": True,
        "schema": {"type": "string"},
        "example": '"600-per-60s";r=599;t=60',
    },
}
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with.",
            "required": True,
            "schema": {"type": "string"},
            "example": WWW_AUTHENTICATE,
        }
    },
    400: _RATE_LIMIT_HEADERS,
    403: _RATE_LIMIT_HEADERS,
    404: _RATE_LIMIT_HEADERS,
    413: _RATE_LIMIT_HEADERS,
    # Only a valid key is ever over its limit: it is told its limits too.
    429: _RETRY_AFTER | _RATE_LIMIT_HEADERS,
    # The database may fail before the key is known.
    503: _RETRY_AFTER,
}


def _responses(ok: Any, ok_text: str, *errors: int) -> dict[int | str, Any]:
    answers: dict[int | str, Any] = {
        200: {"model": ok, "description": ok_text, "headers": _RATE_LIMIT_HEADERS}
    }
    for status in errors:
        answers[status] = {"model": ErrorBody, "description": _ERRORS[status]}
        if status in _ERROR_HEADERS:
            answers[status]["headers"] = _ERROR_HEADERS[status]
    return answers


_ENTITY_ID_TEXT = "Conversation ID (a UUID, in any case)."
# `get` and `delete` read it themselves (`_entity_id`), as they authorize (see `security`).
_ENTITY_ID: dict[str, Any] = {
    "parameters": [
        {
            "name": "entity_id",
            "in": "query",
            "required": True,
            "description": _ENTITY_ID_TEXT,
            "schema": {
                "type": "string",
                "format": "uuid",
                "pattern": f"^{UUID_PATTERN}$",
                "title": "Entity Id",
                "description": _ENTITY_ID_TEXT,
            },
            "examples": {"spec": {"summary": "The spec's sample", "value": SAMPLE_ID}},
        }
    ],
    "security": REQUIRED,
}
_UUID = re.compile(UUID_PATTERN)
_ALONE = b"entity_id="


def _entity_id(request: Request) -> str:
    """The request's `entity_id`, lowercase; BadRequest if it is missing or not a UUID."""
    # Nearly every query is `entity_id=<uuid>` alone, which needs no parsing: a UUID has nothing
    # to unquote. Parsing the query cost a twentieth of a `get`'s time on the event loop.
    query: bytes = request.scope["query_string"]
    if len(query) == len(_ALONE) + 36 and query.startswith(_ALONE):
        alone = query[len(_ALONE) :].decode("latin-1")
        if _UUID.fullmatch(alone):
            return alone.lower()
    value = request.query_params.get("entity_id")
    if value is None:
        raise BadRequest("entity_id: query parameter is required")
    if not _UUID.fullmatch(value):
        raise BadRequest(f"entity_id: not a UUID: {short(value)}")
    return value.lower()


@router.post(
    "/find",
    summary="Search conversations",
    operation_id="findConversations",
    responses=_responses(
        list[PublicConversationView], "The matches, in order.", 400, 401, 413, 429, 503
    ),
    openapi_extra={
        "requestBody": {
            # No body (or `null`, as clients that serialize an unset body send it) is `{}`.
            "required": False,
            "content": {JSON: {"schema": ref("DbParams"), "example": SAMPLE_FIND}},
        },
        "security": REQUIRED,
    },
)
async def find(request: Request) -> Response:
    """Search the caller's conversations with filters, sorting and pagination.

    All filters must hold. Without `sort_key` the order is `updated.timestamp` descending; ties are
    broken by `id` in the same direction. The answer is the slice `[limit_from, limit_to)` of the
    sorted matches; a large answer is streamed. Its conversations, and their order, are those that
    matched when the request began; one deleted while the answer streams is left out.
    """
    principal = await authorize(request)
    shared = services(request)
    query = parse_query(await _json_body(request, shared.settings.max_body_bytes))
    # Two batches in one call: one alone is the whole answer, sent with its length.
    batches, ready = await shared.call(_first_two, shared.store, principal.user_id, query)
    if len(ready) < 2:
        answer = ready[0] if ready else []
        shared.metrics.found(len(answer))
        return Response(orjson.dumps(answer), media_type=JSON)
    return StreamingResponse(_stream(shared, batches, ready), media_type=JSON)


@router.post(
    "/get",
    summary="Get a single conversation",
    operation_id="getConversation",
    responses=_responses(PublicConversationView, "The conversation.", 400, 401, 403, 404, 429, 503),
    openapi_extra=_ENTITY_ID,
)
async def get(request: Request) -> Response:
    """Get one of the caller's conversations by id, and record the access (`accessed`)."""
    principal = await authorize(request)
    conversation_id = _entity_id(request)
    shared = services(request)
    document = await shared.call(shared.store.get, principal.user_id, conversation_id, now_ms())
    return Response(orjson.dumps(document), media_type=JSON)


@router.post(
    "/delete",
    summary="Delete a conversation",
    operation_id="deleteConversation",
    responses=_responses(UUID, "The id of the deleted conversation.", 400, 401, 403, 404, 429, 503),
    openapi_extra=_ENTITY_ID,
)
async def delete(request: Request) -> Response:
    """Delete one of the caller's conversations with all its messages; answers its id."""
    principal = await authorize(request)
    conversation_id = _entity_id(request)
    shared = services(request)
    await shared.call(shared.store.delete, principal.user_id, conversation_id)
    return Response(orjson.dumps(conversation_id), media_type=JSON)


def install(app: FastAPI) -> None:
    # `Direct` reaches them first (see `app.Application`).
    app.include_router(router)


class Direct:
    """The three endpoints, called straight from the ASGI call rather than through the
    framework's routing, request handling and exception middleware.

    They take only the request, reading and checking what they need themselves, so the framework
    has nothing to resolve for them; its path to them cost ~40 % of a `limit_to: 0` find's CPU
    (bench/RESULTS.md). The routes stay on `router` all the same: they make the OpenAPI
    document, and anything but a POST to these exact paths (another method: 405; a path under a
    `root_path`) goes on to the framework, which answers it as before.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes = {route.path: route for route in router.routes if isinstance(route, APIRoute)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        # As the framework's router does: the metrics name a request by its route.
        scope["route"] = route
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            response = await errors.answer(request, exc)
        # A streamed answer that fails half-way propagates, as from the framework's routes.
        await response(scope, receive, send)


async def read_body(request: Request, limit: int, what: str = "request body") -> bytearray:
    """The request's body; PayloadTooLarge (naming it `what`) as soon as it is over `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"{what} larger than {limit} bytes")
    return body


async def _json_body(request: Request, limit: int) -> object:
    """The decoded body, or None when there is none. Reading stops as soon as it is over `limit`."""
    body = await read_body(request, limit)
    if not body.strip():
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None


def _first_two(
    store: Store, owner: str, query: filters.Query
) -> tuple[Iterator[list[Document]], list[list[Document]]]:
    """A find's batches, the first two of them read (`ayeto.metrics` times this call as the
    find's). Made from the start each time, as `Services.call` may make it twice."""
    batches = store.find(owner, query)
    return batches, list(islice(batches, 2))


async def _stream(
    shared: Services, batches: Iterator[list[Document]], ready: list[list[Document]]
) -> AsyncIterator[bytes]:
    """A JSON array written batch by batch, so memory does not grow with the size of the answer."""
    rows = 0
    try:
        separator = b"["
        for batch in ready:
            yield separator + orjson.dumps(batch)[1:-1]
            rows += len(batch)
            separator = b","
        while batch := await shared.in_thread(next, batches, []):
            yield b"," + orjson.dumps(batch)[1:-1]
            rows += len(batch)
        yield b"]"
    finally:
        # What was sent, also when the client left half-way.
        shared.metrics.found(rows)
        # The store holds nothing between batches: closing reads nothing, so it needs no thread.
        close = getattr(batches, "close", None)
        if close is not None:
            close()

"""One place renders every error as `{"detail": ...}`: ours, the framework's, and the unexpected."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from ayeto.api import tracing
from ayeto.api.services import services
from ayeto.errors import AyetoError, RateLimited, Unauthorized, Unavailable
from ayeto.query import short

log = logging.getLogger("ayeto.api")

WWW_AUTHENTICATE = 'ApiKey realm="ayeto", header="uni-api-key"'

# nginx's status for a client that closed its connection before the answer was ready.
CLIENT_CLOSED_REQUEST = 499


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps({"detail": detail}),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


async def _ayeto_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AyetoError)
    services(request).metrics.error(exc)
    headers = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if isinstance(exc, Unavailable):
        headers["Retry-After"] = "1"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(exc.status_code, exc.detail, headers)


async def _invalid_parameters(_: Request, exc: Exception) -> Response:
    # Query parameters are the only thing the framework validates; bodies are parsed by us.
    assert isinstance(exc, RequestValidationError)
    return error_response(400, "; ".join(_describe(error) for error in exc.errors()))


def _describe(error: dict[str, Any]) -> str:
    name = ".".join(str(part) for part in error["loc"][1:]) or "request"
    if error["type"] == "missing":
        return f"{name}: query parameter is required"
    if name == "entity_id":
        return f"entity_id: not a UUID: {short(error.get('input'))}"
    return f"{name}: {error['msg']}"


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def _client_gone(_: Request, exc: Exception) -> Response:
    # A client that hangs up mid-body is not our error. No one reads this answer (the server drops
    # it); its status is for the access log line.
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # This handler runs outside every middleware, so the request id header is set here too.
    request_id = tracing.request_id()
    log.error(
        "unhandled error in %s %s (request id %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    return error_response(
        500, f"internal server error (request id {request_id})", {tracing.HEADER: request_id}
    )


_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    AyetoError: _ayeto_error,
    RequestValidationError: _invalid_parameters,
    HTTPException: _http_error,
    ClientDisconnect: _client_gone,
    Exception: _unexpected,
}


def install(app: FastAPI) -> None:
    for kind, handler in _HANDLERS.items():
        app.add_exception_handler(kind, handler)


async def answer(request: Request, exc: Exception) -> Response:
    """The answer to `exc`, raised while serving `request`, from the handler the framework would
    pick (the nearest class in its MRO): for endpoints called outside it (`routes.Direct`)."""
    for kind in type(exc).__mro__:
        if (handler := _HANDLERS.get(kind)) is not None:
            return await handler(request, exc)
    raise exc

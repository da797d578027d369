"""The `uni-api-key` security scheme, as a typed dependency: an endpoint declares the principal.

Resolving it also counts the request against its key's rate limit; the answer's `RateLimit` and
`RateLimit-Policy` fields are added by `RateLimitHeaders`, so errors after auth carry them too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import APIKeyHeader
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ayeto.api import tracing
from ayeto.api.services import services
from ayeto.auth import NOT_PROVIDED, Principal, authenticate
from ayeto.clock import now_ms
from ayeto.errors import Unauthorized

HEADER = "uni-api-key"

_scheme = APIKeyHeader(
    name=HEADER,
    scheme_name="uni-api-key",
    description="An API key `ayeto-<64 hex>` with scope `ayeto.conversation` or `*`.",
    auto_error=False,
)


async def _principal(request: Request, key: Annotated[str | None, Security(_scheme)]) -> Principal:
    shared = services(request)
    try:
        principal = await shared.call(authenticate, shared.store, key, now_ms())
    except Unauthorized as exc:
        await refused(request, exc)
        raise
    await admit(request, principal.key_id, principal.rate_limit)
    return principal


async def refused(request: Request, error: Unauthorized) -> None:
    """Count a key that was refused, and make its sender wait (the invalid-key throttle); a
    request that gave no key at all is not a guess."""
    if error.detail == NOT_PROVIDED:
        return
    shared = services(request)
    shared.metrics.invalid_key()
    await shared.throttle.failed(request.client.host if request.client else "unknown")


async def admit(request: Request, key_id: str, rate_limit: str | None) -> None:
    """Count the request against its valid key's rate limit (RateLimited past it); the answer,
    whatever it is, then carries the limit's fields (`RateLimitHeaders`)."""
    tracing.identify(request, key_id)
    verdict = await services(request).limiter.hit(key_id, rate_limit)
    request.state.rate_limit_headers = verdict.headers
    if not verdict.allowed:
        raise verdict.error()


def install(app: FastAPI) -> None:
    app.add_middleware(RateLimitHeaders)


class RateLimitHeaders:
    """Adds the rate-limit fields of the request's key to its answer, whatever its status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_fields(message: Message) -> None:
            if message["type"] == "http.response.start":
                fields = scope.get("state", {}).get("rate_limit_headers")
                if fields:
                    headers = MutableHeaders(scope=message)
                    for name, value in fields.items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_fields)


CurrentPrincipal = Annotated[Principal, Depends(_principal)]

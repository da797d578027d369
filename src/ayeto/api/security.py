"""The `uni-api-key` security scheme: who calls (`authorize`), and how the document says so.

Authorizing a request also counts it against its key's rate limit; the answer's `RateLimit` and
`RateLimit-Policy` fields are added by `tracing.Tracing`, so errors after auth carry them too.

The endpoints call `authorize` themselves rather than declaring it as a FastAPI dependency:
resolving dependencies cost some 50 µs of CPU per request, more than the key's lookup
(bench/RESULTS.md). The OpenAPI document states the scheme all the same (`SCHEME`, `REQUIRED`).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.security import APIKeyHeader

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


# The scheme as the OpenAPI document's `components.securitySchemes` holds it, and what each
# endpoint's operation says it requires.
SCHEME: Final[dict[str, Any]] = {
    _scheme.scheme_name: jsonable_encoder(_scheme.model, by_alias=True, exclude_none=True)
}
REQUIRED: Final[list[dict[str, list[str]]]] = [{_scheme.scheme_name: []}]


async def authorize(request: Request) -> Principal:
    """Who sends `request`, by its `uni-api-key`; Unauthorized if the key does not grant access,
    RateLimited if the key is over its limit."""
    shared = services(request)
    key = request.headers.get(HEADER)
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
    whatever it is, then carries the limit's fields (`tracing.Tracing`)."""
    tracing.identify(request, key_id)
    verdict = await services(request).limiter.hit(key_id, rate_limit)
    request.state.rate_limit_headers = verdict.headers
    if not verdict.allowed:
        raise verdict.error()

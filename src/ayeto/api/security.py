"""The `uni-api-key` security scheme, as a typed dependency: an endpoint declares the principal."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request, Security
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


async def _principal(request: Request, key: Annotated[str | None, Security(_scheme)]) -> Principal:
    shared = services(request)
    now = now_ms()
    try:
        principal = await shared.call(authenticate, shared.store, key, now)
    except Unauthorized as exc:
        if exc.detail != NOT_PROVIDED:
            client = request.client.host if request.client else "unknown"
            shared.metrics.invalid_key()
            delay = shared.throttle.record_failure(client, now)
            if delay:
                await asyncio.sleep(delay)
        raise
    tracing.identify(request, principal.key_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]

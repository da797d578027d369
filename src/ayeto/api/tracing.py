"""Every request leaves a trace: an `X-Request-ID` on its response, one access log line, metrics.

The request id is the client's own `X-Request-ID` when it is sane, a new one otherwise; every log
line written while the request is served carries it (see `ayeto.logs`), so the id a client
reports finds all that the server said about its request.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any
from urllib.parse import quote

from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ayeto.metrics import Metrics

HEADER = "X-Request-ID"

# Ids from proxies and clients (UUIDs, nginx's $request_id, trace ids) fit; nothing that could
# split a log line or a header does.
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")

# Load balancers poll these every second or so: their lines are only wanted when debugging.
HEALTH_CHECKS = frozenset({"/livez", "/healthz", "/readyz"})

log = logging.getLogger("ayeto.access")


def install(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(AccessLog, metrics=metrics)
    # Added last, so it runs first: the access log line is written with the id already set.
    app.add_middleware(
        CorrelationIdMiddleware, header_name=HEADER, validator=is_sane, generator=new_request_id
    )


def new_request_id() -> str:
    """32 hex digits, as `uuid4().hex`, from Python's generator rather than the system's.

    An id must be unique, not secret; `uuid4` asks the kernel for randomness on each request, a
    system call that cost a tenth of a `get`'s CPU time on a busy host (bench/floor.py). Python
    reseeds its generator in every process, workers included.
    """
    return f"{random.getrandbits(128):032x}"


def is_sane(request_id: str) -> bool:
    return _SANE.fullmatch(request_id) is not None


def request_id() -> str:
    """The id of the request being served."""
    return correlation_id.get() or "-"


def identify(request: Request, key_id: str) -> None:
    """Names the API key of this request, by its id, in the access log line."""
    request.state.key_id = key_id


class AccessLog:
    """One log line per request, when its response is complete (a streamed one included), and its
    status and duration in the metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        # An application that fails before answering leaves the server to answer 500.
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.request_started()
        try:
            await self.app(scope, receive, sent)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.request_finished(scope, status, seconds)
            _write(scope, status, seconds)


def _write(scope: Scope, status: int, seconds: float) -> None:
    path: str = scope["path"]
    level = logging.DEBUG if path in HEALTH_CHECKS else logging.INFO
    if not log.isEnabledFor(level):
        return
    client = scope.get("client")
    fields: dict[str, Any] = {
        "method": scope["method"],
        # Quoted as uvicorn does: a `%0A` in a path must not start a new log line.
        "path": quote(path),
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
        "key_id": scope.get("state", {}).get("key_id", "-"),
        "client": client[0] if client else "-",
    }
    log.log(
        level,
        "%(method)s %(path)s %(status)d %(duration_ms).2fms key=%(key_id)s client=%(client)s",
        fields,
        extra={"fields": fields},
    )

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
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from asgi_correlation_id import correlation_id
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ayeto.metrics import Metrics
from ayeto.query import short

HEADER = "X-Request-ID"

# Ids from proxies and clients (UUIDs, nginx's $request_id, trace ids) fit; nothing that could
# split a log line or a header does.
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")

# Load balancers poll these every second or so: their lines are only wanted when debugging.
HEALTH_CHECKS = frozenset({"/livez", "/healthz", "/readyz"})

log = logging.getLogger("ayeto.access")


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


class Tracing:
    """Every request's id (set for the log lines written meanwhile, and on its answer), its access
    log line when its response is complete (a streamed one included), its status and duration in
    the metrics, and, once its key is known, the key's rate-limit fields on the answer, whatever
    its status (`security.admit`).

    One layer rather than one for each: each layer wraps `send` and rewrites the answer's head,
    a fixed cost on every request (bench/RESULTS.md). The id is `asgi_correlation_id`'s context
    variable, which `ayeto.logs` puts on every line.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _incoming(scope)
        correlation_id.set(request_id)
        # An application that fails before answering leaves the server to answer 500.
        status = 500

        async def traced(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _head(message.get("headers", ()), scope, request_id)
            await send(message)

        self.metrics.request_started()
        try:
            await self.app(scope, receive, traced)
        finally:
            seconds = time.perf_counter() - start
            self.metrics.request_finished(scope, status, seconds)
            _write(scope, status, seconds)


_ID_FIELD = HEADER.lower().encode()


def _incoming(scope: Scope) -> str:
    """The request's own id when it sent a sane one, else a new one."""
    for name, value in scope["headers"]:
        if name == _ID_FIELD:
            incoming: str = value.decode("latin-1")
            if is_sane(incoming):
                return incoming
            new = new_request_id()
            log.warning("request id %r is not one; replaced by %s", short(incoming), new)
            return new
    return new_request_id()


def _head(
    fields: Iterable[tuple[bytes, bytes]], scope: Scope, request_id: str
) -> list[tuple[bytes, bytes]]:
    """An answer's header fields with the key's rate-limit fields and the request id added."""
    head = list(fields)
    if limits := scope.get("state", {}).get("rate_limit_headers"):
        head += [(name.lower().encode(), value.encode()) for name, value in limits.items()]
    # A 500's answer is made outside this layer when the framework catches the error; it names
    # the id itself (`errors._unexpected`).
    if all(name != _ID_FIELD for name, _ in head):
        head.append((_ID_FIELD, request_id.encode()))
    return head


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

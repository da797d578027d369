"""The two ceilings ayeto's HTTP figures are compared with, served by the same uvicorn.

`bare`: a raw ASGI app that reads the request body and answers a small JSON; nothing in Python
can answer HTTP much faster on this server. `framework`: the same answer from a FastAPI route,
the price of routing, dependency injection and response rendering with no work behind it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ANSWER = b'{"ok":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to set up
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


framework = FastAPI()


@framework.post("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


@framework.get("/livez")
async def livez() -> dict[str, bool]:
    return {"ok": True}

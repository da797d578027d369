"""Where a request's fixed cost goes: CPU per request through the ASGI app, without HTTP.

Requests are fed straight to the application (16 at a time, as wrk's connections would), and
the process's CPU time (every thread: the event loop and the store's) is divided by the number
answered, so that other work on a shared machine barely moves the figure. Each variant drops one
layer of the stack; the difference to the whole is that layer's cost. Rounds alternate the
variants; the best round of each is the figure.

    .venv/bin/python bench/floor.py [--conversations N] [--rounds R] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import uvloop

import ceiling
import run
from ayeto.api import create_app
from ayeto.api.app import Application
from ayeto.api.routes import Direct
from ayeto.api.tracing import Tracing
from ayeto.config import Settings
from ayeto.store import Store, open_store


def without_tracing(app: Application) -> Application:
    app.layers = Direct(app.framework)
    return app


def without_direct(app: Application) -> Application:
    app.layers = Tracing(app.framework, app.state.services.metrics)
    return app


# The layers in front of the framework (`app.Application`), and the app without each.
LAYERS: dict[str, Callable[[Application], Application]] = {
    "request ids, access log, request metrics and rate-limit fields": without_tracing,
    "the endpoints called directly (`routes.Direct`)": without_direct,
}


async def drive(app: Any, path: str, query: bytes, body: bytes, key: str, count: int) -> float:
    """CPU seconds per request for `count` requests, 16 in flight at a time."""
    headers = [(b"content-type", b"application/json"), (b"uni-api-key", key.encode())]
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8000),
    }
    statuses: list[int] = []

    async def one() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(dict(scope, state={}), receive, send)

    for _ in range(32):  # warm-up: caches, pools, threads
        await one()
    statuses.clear()
    started = time.process_time()
    for _ in range(count // 16):
        await asyncio.gather(*(one() for _ in range(16)))
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise SystemExit(f"{path}: statuses {sorted(set(statuses))}")
    return spent / len(statuses)


def dropping(
    store: Store, settings: Settings, drop: Callable[[Application], Application]
) -> Callable[[], Application]:
    return lambda: drop(create_app(store, settings))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per request, layer by layer.")
    run.add_options(parser, conversations=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1600)
    args = parser.parse_args(argv)
    bench = run.prepare(args)
    store = open_store(bench.url)
    settings = Settings(rate_limit=run.UNLIMITED)
    variants: dict[str, Callable[[], Any]] = {
        "ayeto, as served": lambda: create_app(store, settings),
        "without metrics (`AYETO_METRICS=off`)": lambda: create_app(
            store, Settings(rate_limit=run.UNLIMITED, metrics="off")
        ),
        **{f"without {what}": dropping(store, settings, drop) for what, drop in LAYERS.items()},
    }
    get_path, _, get_query = bench.get.path.partition("?")
    requests = {
        "get": (get_path, get_query.encode(), b""),
        "find `limit_to: 0`": (bench.empty.path, b"", bench.empty.body),
    }
    best: dict[tuple[str, str], float] = {}

    async def measure() -> None:
        for _ in range(args.rounds):
            best.setdefault(("bare FastAPI route", "-"), float("inf"))
            cost = await drive(ceiling.framework, "/ping", b"", b"{}", "", args.requests)
            best["bare FastAPI route", "-"] = min(best["bare FastAPI route", "-"], cost)
            for name, make in variants.items():
                app = make()
                for label, (path, query, body) in requests.items():
                    cost = await drive(app, path, query, body, bench.key, args.requests)
                    best[name, label] = min(best.get((name, label), float("inf")), cost)

    uvloop.run(measure())
    store.close()
    print("| variant | request | CPU µs per request | vs as served |")
    print("|---|---|---:|---:|")
    for (name, label), cost in best.items():
        whole = best.get(("ayeto, as served", label), cost)
        print(f"| {name} | {label} | {cost * 1e6:,.0f} | {cost / whole:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

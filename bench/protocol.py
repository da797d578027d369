"""What `ayeto.api.protocol` (httptools with read timeouts and size limits) costs over uvicorn's
plain httptools protocol. Appends its report to bench/RESULTS.md.

    .venv/bin/python bench/protocol.py [--rounds R] [--duration S] [--no-record]

Two measurements, each alternating between the protocols in one run so both see the same machine:

- CPU time per request in process: each protocol is fed the same request 20,000 times over a
  transport that drops what is written, the app answering at once. Process time, not wall
  time, so other work on the machine barely moves it; the best round is the figure.
- wrk over 127.0.0.1 against two apps served both ways: the bare ASGI app of `ceiling.py`
  (where the protocol's share of a request is largest) and ayeto's own `/livez` (a whole
  FastAPI request without the database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ayeto.api.protocol import Protocol
from run import (
    BENCH,
    BIN,
    HOST,
    Load,
    Scenario,
    base_url,
    check,
    commit,
    free_port,
    load,
    machine,
    record,
    serving,
    step,
    versions,
)

PROTOCOLS = {"httptools": "httptools", "ayeto": "ayeto.api.protocol:Protocol"}
APPS = (
    ("bare ASGI app, POST /ping", ["ceiling:bare"], Scenario("bare", "POST", "/ping", b"{}")),
    (
        "ayeto, GET /livez",
        ["--factory", "ayeto.api.app:app_from_env"],
        Scenario("livez", "GET", "/livez"),
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    uvicorn = [str(BIN / "python"), "-m", "uvicorn", "--app-dir", str(BENCH), "--host", HOST]
    uvicorn += ["--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    cpu = uvloop.run(cpu_per_request(max(args.rounds, 5)))
    runs: dict[tuple[str, str], list[Load]] = {}
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as servers:
        env = {"AYETO_DATABASE_URL": f"sqlite:///{Path(directory) / 'ayeto.db'}"}
        bases = {}
        for label, app, _ in APPS:
            for name, protocol in PROTOCOLS.items():
                port = free_port()
                command = [*uvicorn, "--http", protocol, "--port", str(port), *app]
                servers.enter_context(serving(f"protocol-{name}", command, port, env))
                bases[label, name] = base_url(port)
        for round_ in range(args.rounds):
            for label, _, scenario in APPS:
                # Alternate which protocol goes first, so neither always runs on a warmer machine.
                order = list(PROTOCOLS) if round_ % 2 == 0 else list(reversed(PROTOCOLS))
                for name in order:
                    base = bases[label, name]
                    check(base, scenario, "")
                    load(wrk, base, scenario, "", 1, 1, args.connections)  # warm-up
                    measured = load(wrk, base, scenario, "", args.duration, 1, args.connections)
                    runs.setdefault((label, name), []).append(measured)
                    step(f"round {round_ + 1} {label} {name}: {measured.rate:,.0f} req/s")
    report = render(args, cpu, runs)
    print(report)
    if not args.no_record:
        record(report)
    return 0


# -- in process ------------------------------------------------------------------------------------

REQUESTS = {
    "GET /livez": b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\n\r\n",
    "POST /ping, 2-byte body": b"POST /ping HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
}
CLASSES: dict[str, type[HttpToolsProtocol]] = {"httptools": HttpToolsProtocol, "ayeto": Protocol}
PER_ROUND = 20_000


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


class _Sink(asyncio.Transport):
    """A transport that drops what is written: only the protocol's own work is timed."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": (HOST, 8000), "peername": (HOST, 40000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _cpu_round(protocol_class: type[HttpToolsProtocol], request: bytes) -> float:
    """Process-time µs per request over one keep-alive connection."""
    config = Config(app=_answer, lifespan="off", access_log=False, log_level="warning")
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(_Sink())
    started = time.process_time()
    for _ in range(PER_ROUND):
        protocol.data_received(request)
        # The request's task answers, and the response's completion starts keep-alive.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    spent = time.process_time() - started
    protocol.connection_lost(None)
    return spent / PER_ROUND * 1e6


async def cpu_per_request(rounds: int) -> dict[tuple[str, str], float]:
    """Best round of each protocol for each request; µs of CPU per request."""
    rounds_of: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for request, raw in REQUESTS.items():
            for name, protocol_class in CLASSES.items():
                rounds_of.setdefault((request, name), []).append(
                    await _cpu_round(protocol_class, raw)
                )
    return {key: min(values) for key, values in rounds_of.items()}


# -- the report ------------------------------------------------------------------------------------


def render(
    args: argparse.Namespace,
    cpu: dict[tuple[str, str], float],
    runs: dict[tuple[str, str], list[Load]],
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now} — commit {commit()}: the bounded protocol against plain httptools",
        "",
        f"- Machine: {machine()}; load average {os.getloadavg()[0]:.2f} when the run started",
        f"- Versions: {versions()}",
        f"- `bench/protocol.py --rounds {args.rounds} --duration {args.duration}`",
        "",
        f"CPU per request in process (best of {max(args.rounds, 5)} rounds of "
        f"{PER_ROUND:,} requests on one keep-alive connection; the app answers at once):",
        "",
        "| request | httptools µs | ayeto µs | difference µs |",
        "|---|---:|---:|---:|",
        *(
            f"| {request} | {cpu[request, 'httptools']:.2f} | {cpu[request, 'ayeto']:.2f} "
            f"| {cpu[request, 'ayeto'] - cpu[request, 'httptools']:+.2f} |"
            for request in REQUESTS
        ),
        "",
        f"Over 127.0.0.1: `wrk -t1 -c{args.connections} -d{args.duration}s` per round after 1 s of "
        "warm-up, one server process per protocol, rounds alternating between them; median of "
        "the rounds:",
        "",
        "| app | protocol | req/s (median) | req/s per round | p50 ms | p99 ms | vs httptools |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for label, _, _ in APPS:
        plain = statistics.median(m.rate for m in runs[label, "httptools"])
        for name, protocol in PROTOCOLS.items():
            measured = runs[label, name]
            rate = statistics.median(m.rate for m in measured)
            rounds = ", ".join(f"{m.rate:,.0f}" for m in measured)
            p50 = statistics.median(m.p50 for m in measured) / 1000
            p99 = statistics.median(m.p99 for m in measured) / 1000
            lines.append(
                f"| {label} | `{protocol}` | {rate:,.0f} | {rounds} | {p50:.2f} | {p99:.2f} "
                f"| {rate / plain:.3f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

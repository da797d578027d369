"""Start-up to the first 200, and idle memory, of `ayeto serve` beside a bare FastAPI app.

Each round spawns the server, polls it until a request answers 200 (for ayeto, a `get` with a
key: the first answer a client can use) and reads the resident memory of the server's processes
from /proc once it has idled for a second. The baseline is the bare FastAPI route of
`ceiling.py` started by the same uvicorn (uvloop, httptools), measured in the same run.

    .venv/bin/python bench/startup.py [--conversations N] [--rounds R] [--before REF]

Prints a Markdown table; bench/run.py reports the same figures in its run.

ayeto's own modules are byte-compiled first, as installing the package does: an editable
install run with PYTHONDONTWRITEBYTECODE would otherwise compile them at every start, which no
installed server does (the libraries on both sides were compiled when they were installed).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

import run


@dataclass(frozen=True, slots=True)
class Started:
    seconds: float
    rss: int


def start(command: list[str], url: str, headers: dict[str, str], env: dict[str, str]) -> Started:
    """Spawn `command`, time it to the first 200 of POST/GET `url`, then its idle RSS."""
    method = "POST" if "/api/" in url else "GET"
    began = time.perf_counter()
    process = subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with httpx.Client(timeout=5) as client:
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"{command[0]} exited with {process.returncode}")
                try:
                    if client.request(method, url, headers=headers).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - began > 60:
                    raise SystemExit(f"no 200 from {url} within 60 s")
                time.sleep(0.01)
        seconds = time.perf_counter() - began
        time.sleep(1)
        return Started(seconds, group_rss(process.pid))
    finally:
        run.stop(process)


def group_rss(leader: int) -> int:
    """Resident bytes of every process in `leader`'s process group (the server and workers)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != leader:  # the process group, 5th field of stat
                continue
            for line in (status.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    return total


def compiled(directory: Path | None = None) -> None:
    """ayeto's sources (this tree's, or those in `directory`) byte-compiled, as an installed
    package has them."""
    import ayeto

    for path in ayeto.__path__ if directory is None else [str(directory)]:
        compileall.compile_dir(path, quiet=1)


def measure(bench: run.Bench, rounds: int, before: Path | None = None) -> dict[str, Started]:
    """The median start-up and RSS of the bare FastAPI app and of `ayeto serve`, over `rounds`;
    with `before` (an earlier commit's sources), of that commit's `ayeto serve` too."""
    compiled()
    figures: dict[str, list[Started]] = {"fastapi": [], "ayeto": []}
    if before is not None:
        compiled(before)
        figures["before"] = []
    for _ in range(rounds):
        port = run.free_port()
        uvicorn = [str(run.BIN / "python"), "-m", "uvicorn", "--app-dir", str(run.BENCH)]
        uvicorn += ["--host", run.HOST, "--port", str(port), "--loop", "uvloop", "--http"]
        uvicorn += ["httptools", "--no-access-log", "--log-level", "warning", "ceiling:framework"]
        figures["fastapi"].append(start(uvicorn, f"{run.base_url(port)}/livez", {}, {}))
        for name in figures.keys() - {"fastapi"}:
            env = {"AYETO_LOG_LEVEL": "warning"}
            if name == "before":
                # Ahead of the editable install's path: the earlier commit's package starts.
                env["PYTHONPATH"] = str(before)
            port = run.free_port()
            serve = [str(run.BIN / "ayeto"), "serve", "--host", run.HOST, "--port", str(port)]
            serve += ["--db", bench.url]
            url = run.base_url(port) + bench.get.path
            figures[name].append(start(serve, url, {"uni-api-key": bench.key}, env))
    return {
        name: Started(
            statistics.median(s.seconds for s in runs), int(statistics.median(s.rss for s in runs))
        )
        for name, runs in figures.items()
    }


def rows(figures: dict[str, Started]) -> list[str]:
    """Markdown rows: start-up and RSS of ayeto beside the bare FastAPI app."""
    base, ayeto = figures["fastapi"], figures["ayeto"]
    return [
        f"| start-up to first 200 | {ayeto.seconds:.2f} s | {base.seconds:.2f} s "
        f"| {ayeto.seconds / base.seconds:.2f} |",
        f"| idle RSS | {ayeto.rss / 2**20:.0f} MiB | {base.rss / 2**20:.0f} MiB "
        f"| {ayeto.rss / base.rss:.2f} |",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start-up and idle memory of `ayeto serve`.")
    run.add_options(parser, conversations=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="an earlier commit to start beside this tree")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    bench = run.prepare(args)
    from handoff import source_of  # here: `run` imports this module, and `handoff` imports `run`

    with contextlib.ExitStack() as stack:
        before = None if args.before is None else stack.enter_context(source_of(args.before))
        figures = measure(bench, args.rounds, before)
    print(f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after; ", end="")
    print(f"median of {args.rounds} rounds; commit {run.commit()}")
    print()
    print("| figure | ayeto serve | bare FastAPI (uvicorn) | ratio |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows(figures)))
    if before is not None:
        old = {"fastapi": figures["fastapi"], "ayeto": figures["before"]}
        print("\n".join(row.replace("|", f"| `{args.before}`:", 1) for row in rows(old)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What running every store call in a worker thread costs: this tree against an earlier commit.

The earlier commit's server (by default `main`'s) and this tree's are loaded in turn, with the same
wrk settings, on the same SQLite database, next to the bare FastAPI route measured in the same run:
`get` (a write) and `find` with `limit_to: 0` (auth and one query, no result), the two requests
whose cost is mostly fixed, so that a per-call hand-off shows most. Rounds alternate the two
servers, so that a drift of the machine's load spreads over both.

    .venv/bin/python bench/handoff.py [--before REF] [--conversations N] [--rounds R]

The report is appended to RESULTS.md (unless `--no-record`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The cost of running store calls in threads.")
    run.add_options(parser, conversations=10_000)
    parser.add_argument("--before", default="main", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=2, help="before/after alternations")
    parser.add_argument("--title", default="thread hand-off", help="what the report compares")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    wrk = run.find_wrk()
    if wrk is None:
        return 2
    bench = run.prepare(args)
    scenarios = (bench.get, bench.empty)
    before = subprocess.run(
        ["git", "rev-parse", "--short", args.before],
        cwd=run.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    def measure(base: str, scenario: run.Scenario, api_key: str = "") -> run.Load:
        run.check(base, scenario, api_key)
        settings = (args.threads, args.connections)
        if args.warmup:
            run.load(wrk, base, scenario, api_key, args.warmup, *settings)
        return run.load(wrk, base, scenario, api_key, args.duration, *settings)

    port = run.free_port()
    uvicorn = [str(run.BIN / "python"), "-m", "uvicorn", "--app-dir", str(run.BENCH)]
    uvicorn += ["--host", run.HOST, "--port", str(port), "--loop", "uvloop", "--http"]
    uvicorn += ["httptools", "--no-access-log", "--log-level", "warning", "ceiling:framework"]
    with run.serving("fastapi", uvicorn, port):
        ceiling = measure(run.base_url(port), run.Scenario("FastAPI", "POST", "/ping", b"{}"))
    run.step(f"bare FastAPI route: {ceiling.rate:,.0f} req/s")

    figures: dict[tuple[str, str], list[run.Load]] = {}
    with source_of(args.before) as old_source:
        for _ in range(args.rounds):
            for side, pythonpath in (("before", old_source), ("after", None)):
                loads = serve(bench, pythonpath, measure)
                for scenario, load in zip(scenarios, loads, strict=True):
                    figures.setdefault((side, scenario.label), []).append(load)
                    run.step(f"{side}: {scenario.label}: {load.rate:,.0f} req/s")

    report = render(args, before, bench, ceiling, scenarios, figures, load_before)
    print()
    print(report)
    if not args.no_record:
        run.record(report)
        run.step(f"appended to {run.RESULTS.relative_to(run.ROOT)}")
    return 0


@contextmanager
def source_of(ref: str) -> Iterator[Path]:
    """The package sources of commit `ref`, in a temporary directory (their `src`)."""
    archive = subprocess.run(
        ["git", "archive", ref, "src"], cwd=run.ROOT, capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory() as directory:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        yield Path(directory) / "src"


Measure = Callable[[str, run.Scenario, str], run.Load]


def serve(bench: run.Bench, pythonpath: Path | None, measure: Measure) -> list[run.Load]:
    """Each scenario's load against one `ayeto serve`: `pythonpath`'s sources, or this tree's."""
    port = run.free_port()
    env = {"AYETO_RATE_LIMIT": run.UNLIMITED, "AYETO_LOG_LEVEL": "warning"}
    if pythonpath is not None:
        # Ahead of the editable install's path: the server runs the earlier commit's package.
        env["PYTHONPATH"] = str(pythonpath)
    command = [str(run.BIN / "python"), "-m", "ayeto", "serve", "--host", run.HOST]
    command += ["--port", str(port), "--db", bench.url]
    name = "ayeto-before" if pythonpath is not None else "ayeto-after"
    with run.serving(name, command, port, env):
        return [measure(run.base_url(port), s, bench.key) for s in (bench.get, bench.empty)]


def render(
    args: argparse.Namespace,
    before: str,
    bench: run.Bench,
    ceiling: run.Load,
    scenarios: tuple[run.Scenario, ...],
    figures: dict[tuple[str, str], list[run.Load]],
    load_before: float,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now} — {args.title}: commit {run.commit()} against {before} (`{args.before}`)",
        "",
        f"- Machine: {run.machine()}; load average {load_before:.2f} when the run started",
        f"- Versions: {run.versions()}",
        f"- Dataset: {bench.meta.conversations:,} conversations, as the top owner "
        f"({bench.meta.top_owner_conversations:,} of theirs), one SQLite `ayeto serve`",
        f"- Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s` after "
        f"{args.warmup} s of warm-up; {args.rounds} rounds alternating the two servers, best "
        "round shown; `bench/handoff.py`",
        f"- Bare FastAPI route in the same run: {ceiling.rate:,.0f} req/s",
        "",
        "| scenario | before req/s | after req/s | after / before | before vs FastAPI "
        "| after vs FastAPI | before p99 ms | after p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in scenarios:
        old = max(figures["before", scenario.label], key=lambda load: load.rate)
        new = max(figures["after", scenario.label], key=lambda load: load.rate)
        lines.append(
            f"| {scenario.label} | {old.rate:,.0f} | {new.rate:,.0f} | {new.rate / old.rate:.2f} "
            f"| {old.rate / ceiling.rate:.3f} | {new.rate / ceiling.rate:.3f} "
            f"| {old.p99 / 1000:.1f} | {new.p99 / 1000:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

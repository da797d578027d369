"""What metrics cost a request: `ayeto serve` with `AYETO_METRICS=on` next to one with `off`.

Both servers run at once on a small SQLite database, one worker each, and wrk loads them in turn,
round after round, so that whatever else the machine does weighs on both alike. Prints a Markdown
report; `--record` appends it to bench/RESULTS.md.

    .venv/bin/python bench/metrics_overhead.py [--rounds R] [--duration S] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import tempfile
import timeit
import types
from contextlib import ExitStack
from pathlib import Path

import orjson

import run
from run import BIN, HOST, Load, Scenario

CONVERSATIONS = 200
MODES = ("on", "off")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare ayeto serve with metrics on and off.")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of on and off")
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per measurement")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (-c)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk")
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as directory, ExitStack() as servers:
        url = f"sqlite:///{Path(directory) / 'metrics.db'}"
        key, conversation_id = provision(url)
        scenarios = (
            Scenario("`GET /livez` (no key, no database)", "GET", "/livez"),
            Scenario(
                "`get`: one conversation (auth, a write)",
                "POST",
                f"{run.API}/get?entity_id={conversation_id}",
            ),
        )
        bases = {}
        for mode in MODES:
            port = run.free_port()
            command = [str(BIN / "ayeto"), "serve", "--host", HOST, "--port", str(port)]
            command += ["--db", url, "--metrics", mode, "--log-level", "warning"]
            # Every request must be a 200: no rate limit.
            env = {"AYETO_RATE_LIMIT": run.UNLIMITED}
            servers.enter_context(run.serving(f"metrics-{mode}", command, port, env))
            bases[mode] = run.base_url(port)
        figures: dict[tuple[str, str], list[Load]] = {}
        for scenario in scenarios:
            for mode in MODES:
                run.check(bases[mode], scenario, key)
                run.load(wrk, bases[mode], scenario, key, 2, 1, args.connections)  # warm-up
            for round_ in range(args.rounds):
                for mode in MODES if round_ % 2 == 0 else reversed(MODES):
                    measured = run.load(
                        wrk, bases[mode], scenario, key, args.duration, 1, args.connections
                    )
                    figures.setdefault((scenario.label, mode), []).append(measured)
                    run.step(f"{scenario.label}, metrics {mode}: {measured.rate:,.0f} req/s")

    report = render(args, scenarios, figures, load_before, hooks_cost())
    print(report)
    if args.record:
        run.record(report)
    return 0


def hooks_cost(rounds: int = 5, calls: int = 20_000) -> float:
    """Microseconds the metrics add to a `get` in a worker, in multiprocess mode as under `serve`:
    its arrival, its answer and its two store calls (the key, the conversation); best of rounds."""
    with tempfile.TemporaryDirectory() as directory:
        # prometheus-client picks its mode when first imported; the servers above are stopped.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        try:
            from ayeto.metrics import Prometheus

            metrics = Prometheus()
            scope = {"route": types.SimpleNamespace(path=f"{run.API}/get")}

            def request() -> None:
                metrics.request_started()
                metrics.store_call("auth", 0.0005)
                metrics.store_call("get", 0.0005)
                metrics.request_finished(scope, 200, 0.002)

            best = min(timeit.repeat(request, number=calls, repeat=rounds))
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    return best / calls * 1e6


def provision(url: str) -> tuple[str, str]:
    """A database of `CONVERSATIONS` conversations of one owner; that owner's key and one id."""
    owner = "11111111-1111-4111-8111-111111111111"
    documents = [
        {
            "id": f"c0000000-0000-4000-8000-{n:012d}",
            "name": f"conversation {n}",
            "model": "gpt-4o",
            "messages": [],
            "created": {"user_id": owner, "timestamp": 1_735_815_580_000 + n},
            "updated": {"user_id": owner, "timestamp": 1_735_815_580_000 + n},
        }
        for n in range(CONVERSATIONS)
    ]
    lines = b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in documents)
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as data:
        data.write(lines)
        data.flush()
        run.ayeto("import", data.name, "--db", url)
    key = run.ayeto("keys", "create", "--user", owner, "--db", url).strip().splitlines()[-1]
    return key, str(documents[0]["id"])


def render(
    args: argparse.Namespace,
    scenarios: tuple[Scenario, ...],
    figures: dict[tuple[str, str], list[Load]],
    load_before: float,
    hooks_us: float,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {now} — metrics on vs off, commit {run.commit()}",
        "",
        f"- Machine: {run.machine()}; load average {load_before:.2f} when the run started",
        f"- Versions: {run.versions()}",
        f"- `bench/metrics_overhead.py --rounds {args.rounds} --duration {args.duration}`: two "
        f"`ayeto serve` (one worker each, SQLite, {CONVERSATIONS} conversations) side by side, "
        f"`AYETO_METRICS=on` and `off`; `wrk -t1 -c{args.connections} -d{args.duration}s` on "
        f"each in turn, {args.rounds} rounds; medians over the rounds",
        "",
        "| scenario | metrics | req/s | p50 ms | p99 ms | on / off |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for scenario in scenarios:
        rates = {
            mode: statistics.median(x.rate for x in figures[scenario.label, mode]) for mode in MODES
        }
        for mode in MODES:
            loads = figures[scenario.label, mode]
            p50 = statistics.median(x.p50 for x in loads) / 1000
            p99 = statistics.median(x.p99 for x in loads) / 1000
            ratio = f"{rates['on'] / rates['off']:.3f}" if mode == "on" else ""
            lines.append(
                f"| {scenario.label} | {mode} | {rates[mode]:,.0f} | {p50:.2f} | {p99:.2f} "
                f"| {ratio} |"
            )
    lines += [
        "",
        f"In process, the metrics of one `get` (its arrival and answer, two store calls) cost "
        f"{hooks_us:.1f} µs in multiprocess mode (best of 5 rounds of 20,000).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

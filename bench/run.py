"""End-to-end benchmark of a real `ayeto serve` on the reference dataset; see bench/README.md.

Generates the dataset if missing, imports it into a fresh SQLite database (timed), creates a key
for the top owner, measures the store in-process (the lower bound), then serves over HTTP on
127.0.0.1 and loads it with wrk next to two ceilings (a bare ASGI app and a bare FastAPI route on
the same uvicorn). Prints a Markdown report and appends it to bench/RESULTS.md.

    .venv/bin/python bench/run.py [--conversations N] [--duration S] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson

import dataset
import importing
import startup

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
LUA = BENCH / "request.lua"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
API = "/api/v3/conversation"
# The rate limit would turn a load test into a test of 429s; every request here must be a 200.
# Still counted on every request, over a window of a second: the limiter keeps an entry per
# request in its window, so a minute's window would hold a minute of this load (some 100,000
# entries, each request shifting them all) where a key at the default 600/minute holds 600.
UNLIMITED = "1000000000/second"
# A message search with no literal to look up: it reads every message of the top owner.
SLOW_SEARCH = {"filters": [["messages.content", "regex", "[qxz][0-9]{2}[qxz]"]], "limit_to": 1}
# Conversations of the top owner that the spread `get` scenario names in turn.
SPREAD = 2000
# Clients running that search while `get` is measured (issue 8, section 1).
SEARCHERS = 4
# A scan timeout longer than the statement timeout: only the latter bounds a search.
UNBOUNDED_SCANS = "3600000"


@dataclass(frozen=True, slots=True)
class Load:
    """What wrk measured for one scenario; latencies in microseconds."""

    requests: int
    seconds: float
    bytes: int
    errors: int
    p50: int
    p99: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True, slots=True)
class Scenario:
    label: str
    method: str
    path: str
    body: bytes = b""
    # Conversations named in turn, `?entity_id=<id>` after `path` (request.lua).
    ids: tuple[str, ...] = ()

    @property
    def first_path(self) -> str:
        return f"{self.path}?entity_id={self.ids[0]}" if self.ids else self.path


@dataclass(frozen=True, slots=True)
class Measured:
    scenario: Scenario
    load: Load
    response_bytes: int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark a real `ayeto serve`.")
    add_options(parser, dataset.DEFAULT_CONVERSATIONS)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    wrk = find_wrk()
    if wrk is None:
        return 2
    bench = prepare(args)
    step("in-process store calls")
    in_process = measure_store(bench)
    step("import beside a raw executemany load")
    data, _ = dataset.paths(args.conversations, args.seed)
    imported = importing.measure(data, rounds=1)
    step("start-up and idle memory")
    started = startup.measure(bench, rounds=3)
    results = measure_http(args, wrk, bench)

    report = render(args, bench, results, in_process, load_before)
    report += goals(args, results, imported, started)
    print()
    print(report)
    if not args.no_record:
        record(report)
        step(f"appended to {RESULTS.relative_to(ROOT)}")
    return 0


def add_options(parser: argparse.ArgumentParser, conversations: int) -> None:
    """The options of every load benchmark: the dataset, wrk's settings, where the report goes."""
    parser.add_argument("--conversations", type=int, default=conversations)
    parser.add_argument("--seed", type=int, default=dataset.DEFAULT_SEED)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per scenario")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded load first")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (-c)")
    parser.add_argument("--reuse-db", action="store_true", help="skip the import if the DB exists")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")


def find_wrk() -> str | None:
    """wrk's path, or None after saying how to install it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed; on Debian or Ubuntu: apt-get install -y wrk", file=sys.stderr)
    return wrk


@dataclass(frozen=True, slots=True)
class Bench:
    """The database under test and what to ask it."""

    meta: dataset.Meta
    db_path: Path
    url: str
    import_seconds: float | None
    key: str
    find: Scenario
    get: Scenario
    small: Scenario
    empty: Scenario
    spread: Scenario


def prepare(args: argparse.Namespace) -> Bench:
    """The dataset (generated if missing), imported into a fresh database, and a key for it."""
    data_path, meta_path = dataset.paths(args.conversations, args.seed)
    if not meta_path.exists():
        step(f"generating {data_path.name}")
        dataset.generate(args.conversations, args.seed)
    meta = dataset.load_meta(meta_path)
    step(
        f"dataset: {meta.conversations:,} conversations, {meta.messages:,} messages, "
        f"top owner {meta.top_owner} ({meta.top_owner_share:.1%})"
    )

    db_path = dataset.DATA / f"bench-{args.conversations}-s{args.seed}.db"
    url = f"sqlite:///{db_path}"
    import_seconds = None
    if args.reuse_db and db_path.exists():
        step(f"reusing {db_path.name}")
    else:
        for stale in (db_path, *(db_path.with_name(db_path.name + s) for s in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        step(f"importing into {db_path.name}")
        started = time.perf_counter()
        ayeto("import", str(data_path), "--db", url, timeout=3600)
        import_seconds = time.perf_counter() - started
        step(f"imported in {import_seconds:.1f} s")
    key = ayeto("keys", "create", "--user", meta.top_owner, "--db", url).strip().splitlines()[-1]

    find = f"{API}/find"
    return Bench(
        meta=meta,
        db_path=db_path,
        url=url,
        import_seconds=import_seconds,
        key=key,
        find=Scenario(
            f"find: top owner, `model == {meta.bench_model}`, newest 20",
            "POST",
            find,
            page_body(meta.bench_model),
        ),
        get=Scenario(
            "get: one of their conversations (writes `accessed`)",
            "POST",
            f"{API}/get?entity_id={meta.sample_conversation}",
        ),
        small=Scenario(
            f"find: `model == {meta.small_model}` (short chats), newest 20",
            "POST",
            find,
            page_body(meta.small_model),
        ),
        empty=Scenario(
            "find: `limit_to: 0` (auth and query, no result)",
            "POST",
            find,
            orjson.dumps({"limit_from": 0, "limit_to": 0}),
        ),
        spread=Scenario(
            f"get: {SPREAD:,} of their conversations in turn (writes `accessed`)",
            "POST",
            f"{API}/get",
            ids=spread_ids(db_path, meta.top_owner),
        ),
    )


def spread_ids(db_path: Path, owner: str) -> tuple[str, ...]:
    """`SPREAD` conversations of `owner`, the same in every run: concurrent `get`s of different
    conversations, which share no row (the `get` scenario's all stamp one)."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute(
            "SELECT id FROM conversations WHERE owner_id = ? ORDER BY id LIMIT ?", (owner, SPREAD)
        )
        return tuple(row[0] for row in rows)


def measure_http(args: argparse.Namespace, wrk: str, bench: Bench) -> list[Measured]:
    """wrk against the two ceilings, then against `ayeto serve`; the ceilings come first."""

    def run(base: str, scenario: Scenario, api_key: str = "") -> Measured:
        size = check(base, scenario, api_key)
        settings = (args.threads, args.connections)
        if args.warmup:
            load(wrk, base, scenario, api_key, args.warmup, *settings)
        measured = load(wrk, base, scenario, api_key, args.duration, *settings)
        step(f"{scenario.label}: {measured.rate:,.0f} req/s, p99 {measured.p99 / 1000:.1f} ms")
        return Measured(scenario, measured, size)

    uvicorn = [str(BIN / "python"), "-m", "uvicorn", "--app-dir", str(BENCH), "--host", HOST]
    uvicorn += ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    uvicorn += ["--log-level", "warning"]
    ceilings = (
        ("bare", "ceiling:bare", "bare ASGI app (uvicorn, uvloop + httptools)"),
        ("fastapi", "ceiling:framework", "bare FastAPI route returning a small JSON"),
    )
    results = []
    for name, app, label in ceilings:
        port = free_port()
        with serving(name, [*uvicorn, "--port", str(port), app], port):
            results.append(run(base_url(port), Scenario(label, "POST", "/ping", b"{}")))

    port = free_port()
    # The searches of the last scenario run to their end (within the statement timeout): the
    # scan timeout would answer them 400 after a second, and the scenario is about their load.
    env = {"AYETO_RATE_LIMIT": UNLIMITED, "AYETO_LOG_LEVEL": "warning"}
    env["AYETO_DB_SCAN_TIMEOUT_MS"] = UNBOUNDED_SCANS
    command = [str(BIN / "ayeto"), "serve", "--host", HOST, "--port", str(port), "--db", bench.url]
    with serving("ayeto", command, port, env):
        for scenario in (bench.find, bench.get, bench.small, bench.empty, bench.spread):
            results.append(run(base_url(port), scenario, bench.key))
        with searching(base_url(port), bench.key):
            stalled = run(base_url(port), bench.get, bench.key)
        label = f"{bench.get.label}, while {SEARCHERS} clients search messages with no literal"
        scenario = Scenario(label, "POST", bench.get.path)
        results.append(Measured(scenario, stalled.load, stalled.response_bytes))
        served = get_document(base_url(port), bench)

    port = free_port()
    env = {"AYETO_BENCH_DB": str(bench.db_path)}
    with serving("ceiling-get", [*uvicorn, "--port", str(port), "ceiling_get:app"], port, env):
        if get_document(base_url(port), bench) != served:
            raise SystemExit("the durable get ceiling answers another document than ayeto")
        label = "the least a durable `get` costs (raw ASGI, `sqlite3`, group commit)"
        results.append(run(base_url(port), Scenario(label, "POST", bench.get.path), bench.key))
    return results


def get_document(base: str, bench: Bench) -> dict[str, Any]:
    """The conversation `bench.get` answers, but its `accessed` (each `get` stamps it anew)."""
    response = httpx.post(base + bench.get.path, headers={"uni-api-key": bench.key}, timeout=30)
    document: dict[str, Any] = response.json()
    document.pop("accessed")
    return document


@contextlib.contextmanager
def searching(base: str, key: str) -> Iterator[None]:
    """`SEARCHERS` clients running `SLOW_SEARCH` one after another until the block ends."""
    import threading

    stop = threading.Event()

    def search() -> None:
        with httpx.Client(base_url=base, headers={"uni-api-key": key}, timeout=60) as client:
            while not stop.is_set():
                client.post(f"{API}/find", json=SLOW_SEARCH).raise_for_status()

    threads = [threading.Thread(target=search) for _ in range(SEARCHERS)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


# -- the steps -----------------------------------------------------------------------------------


def step(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def ayeto(*arguments: str, timeout: float = 120) -> str:
    """Run the ayeto CLI; its stdout, or the reason it failed."""
    done = subprocess.run(
        [str(BIN / "ayeto"), *arguments], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise SystemExit(f"ayeto {arguments[0]} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def page_body(model: str) -> bytes:
    body = {
        "filters": [["model", "==", model]],
        "sort_key": "updated.timestamp",
        "sort_order": 1,
        "limit_from": 0,
        "limit_to": 20,
    }
    return orjson.dumps(body)


def measure_store(bench: Bench) -> list[tuple[str, float, int]]:
    """(operation, µs per call, calls) for the store alone, no HTTP: the lower bound."""
    from ayeto.auth import digest
    from ayeto.query import Query, parse_query
    from ayeto.store import open_store

    store = open_store(bench.url)
    owner, sample = bench.meta.top_owner, bench.meta.sample_conversation
    find, small, empty = (
        parse_query(orjson.loads(s.body)) for s in (bench.find, bench.small, bench.empty)
    )
    key_digest = digest(bench.key)

    def page(query: Query) -> list[dict[str, Any]]:
        return [document for batch in store.find(owner, query) for document in batch]

    now = int(time.time() * 1000)
    try:
        return [
            ("`store.find`, the find page", *per_call(lambda: page(find))),
            (
                "`store.find` + `orjson.dumps`, the find page",
                *per_call(lambda: orjson.dumps(page(find))),
            ),
            ("`store.find`, the short-chats page", *per_call(lambda: page(small))),
            ("`store.find`, `limit_to: 0`", *per_call(lambda: page(empty))),
            (
                "`store.key_by_digest` (every request's auth)",
                *per_call(lambda: store.key_by_digest(key_digest)),
            ),
            (
                "`store.get` (a write: records the access)",
                *per_call(lambda: store.get(owner, sample, now)),
            ),
        ]
    finally:
        store.close()


def per_call(call: Callable[[], object], budget: float = 2.0) -> tuple[float, int]:
    """Mean µs per call over `budget` seconds, after a few warm-up calls."""
    for _ in range(3):
        call()
    calls = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < budget:
        call()
        calls += 1
    return elapsed / calls * 1e6, calls


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def base_url(port: int) -> str:
    return f"http://{HOST}:{port}"


@contextlib.contextmanager
def serving(
    name: str, command: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Run a server in its own process group until the block ends; its output goes to a log."""
    logs = dataset.DATA / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until_up(base_url(port), process, log.name)
            yield
        finally:
            stop(process)


def wait_until_up(
    base: str, process: subprocess.Popen[bytes], log: str, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/livez", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"the server did not answer /livez within {timeout:.0f} s; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (its workers too), SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def check(base: str, scenario: Scenario, api_key: str) -> int:
    """One request before the load: it must succeed; returns the size of its response body."""
    headers = {"content-type": "application/json"} if scenario.body else {}
    if api_key:
        headers["uni-api-key"] = api_key
    path = scenario.first_path
    response = httpx.request(
        scenario.method, base + path, content=scenario.body, headers=headers, timeout=30
    )
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code} {response.text[:500]}")
    return len(response.content)


def load(
    wrk: str,
    base: str,
    scenario: Scenario,
    api_key: str,
    seconds: int,
    threads: int,
    connections: int,
) -> Load:
    env = {
        **os.environ,
        "BENCH_METHOD": scenario.method,
        "BENCH_BODY": scenario.body.decode(),
        "BENCH_KEY": api_key,
        "BENCH_IDS": " ".join(scenario.ids),
    }
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(LUA), base + scenario.path]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    figures = orjson.loads(line.removeprefix("BENCH "))
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    if errors:
        raise SystemExit(f"{scenario.path}: {errors} failed requests under load: {figures}")
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        bytes=figures["bytes"],
        errors=errors,
        p50=figures["p50"],
        p99=figures["p99"],
    )


# -- the report ----------------------------------------------------------------------------------


def render(
    args: argparse.Namespace,
    bench: Bench,
    results: list[Measured],
    in_process: list[tuple[str, float, int]],
    load_before: float,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta, import_seconds = bench.meta, bench.import_seconds
    bare, fastapi = results[0].load.rate, results[1].load.rate
    lines = [
        f"## {now} — commit {commit()}",
        "",
        f"- Machine: {machine()}; load average {load_before:.2f} when the run started "
        "(anything else running skews the figures)",
        f"- Versions: {versions()}",
        f"- Dataset: {meta.conversations:,} conversations, {meta.messages:,} messages "
        f"({meta.bytes / 1e6:,.0f} MB JSONL), {meta.owners:,} owners; top owner "
        f"{meta.top_owner_conversations:,} conversations ({meta.top_owner_share:.1%}), "
        f"{meta.bench_model_conversations:,} with `{meta.bench_model}`, "
        f"{meta.small_model_conversations:,} with `{meta.small_model}`",
    ]
    if import_seconds is not None:
        lines.append(
            f"- Import (`ayeto import`, fresh SQLite): {import_seconds:.1f} s, "
            f"{meta.conversations / import_seconds:,.0f} conversations/s, "
            f"{meta.messages / import_seconds:,.0f} messages/s; database "
            f"{db_size(bench.db_path) / 1e6:,.0f} MB"
        )
    lines += [
        f"- Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s` after "
        f"{args.warmup} s of warm-up, one server process, all on 127.0.0.1",
        "",
        "| scenario | req/s | p50 ms | p99 ms | response | vs bare ASGI | vs bare FastAPI |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for measured in results:
        load = measured.load
        lines.append(
            f"| {measured.scenario.label} | {load.rate:,.0f} | {load.p50 / 1000:.2f} "
            f"| {load.p99 / 1000:.2f} | {size(measured.response_bytes)} "
            f"| {load.rate / bare:.2f} | {load.rate / fastapi:.2f} |"
        )
    lines += ["", "| in-process (no HTTP) | µs per call | calls |", "|---|---:|---:|"]
    lines += [f"| {name} | {micros:,.0f} | {calls:,} |" for name, micros, calls in in_process]
    return "\n".join(lines) + "\n"


def goals(
    args: argparse.Namespace,
    results: list[Measured],
    imported: tuple[float, float],
    started: dict[str, startup.Started],
) -> str:
    """The rows of issue 8's table, each beside the baseline measured in this run."""
    fastapi = results[1].load.rate
    find, get, _, empty, spread, stalled, least = results[2:9]
    raw, ayeto = imported
    base, served = started["fastapi"], started["ayeto"]
    lines = [
        "",
        "| work | ayeto | baseline (same run) | ratio | goal |",
        "|---|---:|---:|---:|---|",
        f"| get one conversation | {get.load.rate:,.0f} req/s | bare FastAPI {fastapi:,.0f} req/s "
        f"| {get.load.rate / fastapi:.2f} | ≥ 0.5 |",
        f"| get one conversation | {get.load.rate:,.0f} req/s | the least a durable get costs "
        f"{least.load.rate:,.0f} req/s | {get.load.rate / least.load.rate:.2f} | (for reference) |",
        f"| get, {SPREAD:,} conversations in turn | {spread.load.rate:,.0f} req/s | bare FastAPI "
        f"| {spread.load.rate / fastapi:.2f} | (for reference) |",
        f"| find page (top owner, `gpt-4o`, newest 20) | {find.load.rate:,.0f} req/s "
        f"| bare FastAPI | {find.load.rate / fastapi:.3f} | ≥ 0.08 |",
        f"| find `limit_to: 0` | {empty.load.rate:,.0f} req/s | bare FastAPI "
        f"| {empty.load.rate / fastapi:.2f} | ≥ 0.4 |",
        f"| import (in process, fresh SQLite) | {args.conversations / ayeto:,.0f} conversations/s "
        f"| raw `sqlite3.executemany` {args.conversations / raw:,.0f}/s | {raw / ayeto:.2f} "
        "| ≥ 0.7 |",
        f"| start-up to first 200 | {served.seconds:.2f} s | bare FastAPI app "
        f"{base.seconds:.2f} s | {served.seconds / base.seconds:.2f} | < 1 s |",
        f"| idle RSS | {served.rss / 2**20:.0f} MiB | bare FastAPI app {base.rss / 2**20:.0f} MiB "
        f"| {served.rss / base.rss:.2f} | < 100 MB |",
        f"| get p99 while {SEARCHERS} clients search with no literal | "
        f"{stalled.load.p99 / 1000:.1f} ms | idle {get.load.p99 / 1000:.1f} ms "
        f"| {stalled.load.p99 / get.load.p99:.2f} | ≤ 2 |",
    ]
    return "\n".join(lines) + "\n"


def record(report: str) -> None:
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by `make bench` (bench/run.py); newest last. "
            "bench/README.md explains each figure.\n"
        )
    with RESULTS.open("a") as out:
        out.write("\n" + report)


def size(count: int) -> str:
    return f"{count / 1000:,.1f} KB" if count >= 1000 else f"{count} B"


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def commit() -> str:
    def git(*arguments: str) -> str:
        done = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{head} (uncommitted changes)" if git("status", "--porcelain") else head


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB, {platform.system()} {platform.release()}"
    )


def versions() -> str:
    packages = ["ayeto", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic"]
    packages += ["sqlalchemy", "orjson"]
    found = [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}"]
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    done = subprocess.run(
        ["wrk", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wrk = done.stdout.split()
    if len(wrk) > 1:
        found.append(f"wrk {wrk[1]}")
    return ", ".join(found)


if __name__ == "__main__":
    sys.exit(main())

"""PostgreSQL: the find page and `get` with one and four workers, beside `pgbench`; see README.md.

Imports the reference dataset into a fresh PostgreSQL database, then measures, in one run and on
the same data: `pgbench` running the one SQL statement that returns the find page as JSON (the
ceiling of what the database can serve), and `ayeto serve --workers 1` and `--workers 4` under
wrk for the find page and for `get`. For each load it records which processes used the CPU
(PostgreSQL, ayeto, the load generator, anything else), so a figure from this 2-core machine can
be read for a larger host. Prints a Markdown report and appends it to bench/RESULTS.md.

    .venv/bin/python bench/postgres.py [--conversations N] [--pg URL] [--duration S]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from sqlalchemy import create_engine, make_url, text

import dataset
import handoff
import run

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TICKS = os.sysconf("SC_CLK_TCK")

# The find page of bench/run.py (owner and model bound as parameters) as the one
# JSON document PostgreSQL builds itself: the same fields, in the API's order, each
# conversation's messages from the JSON the store keeps of them (`messages_json`), as ayeto reads
# them; the fastest statement the schema allows, so the ceiling is the database's. The documents
# are built from the page's 20 rows only: built in the sorted query, they would be built (and
# every match's messages read) before the sort.
PAGE_SQL = """\
SELECT coalesce(json_agg(json_build_object(
    'id', page.id, 'name', page.name, 'model', page.model, 'img_gen_model', page.img_gen_model,
    'summary', page.summary, 'organization_id', page.organization_id,
    'assistant_id', page.assistant_id, 'messages', page.messages_json::json,
    'created', json_build_object(
      'user_id', nullif(page.owner_id, ''), 'timestamp', page.created_at),
    'updated', json_build_object('user_id', page.updated_by, 'timestamp', page.updated_at),
    'accessed', json_build_object('user_id', page.accessed_by, 'timestamp', page.accessed_at))
  ORDER BY page.updated_at DESC, page.id DESC), '[]')
FROM (
  SELECT * FROM conversations c
  WHERE c.owner_id = :owner AND c.model = :model
  ORDER BY c.updated_at DESC, c.id DESC
  LIMIT 20
) AS page;
"""


@dataclass(frozen=True, slots=True)
class Cpu:
    """Cores each group of processes kept busy during one load (2.0 = both cores of 2)."""

    postgres: float
    ayeto: float
    load: float
    other: float

    def render(self) -> str:
        return f"{self.postgres:.2f} / {self.ayeto:.2f} / {self.load:.2f} / {self.other:.2f}"


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    cpu: Cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark ayeto serve on PostgreSQL.")
    run.add_options(parser, dataset.DEFAULT_CONVERSATIONS)
    parser.set_defaults(threads=2, connections=32)
    parser.add_argument(
        "--pg",
        default=os.environ.get("AYETO_TEST_POSTGRES_URL", DEFAULT_SERVER),
        help="a PostgreSQL server's URL; the run uses its own database there",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--before", metavar="REF", help="also measure commit REF's code, with one worker, first"
    )
    parser.add_argument("--pgbench-clients", type=int, default=4, help="pgbench's -c (and -j 2)")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    wrk = run.find_wrk()
    if wrk is None:
        return 2
    data_path, meta_path = dataset.paths(args.conversations, args.seed)
    if not meta_path.exists():
        run.step(f"generating {data_path.name}")
        dataset.generate(args.conversations, args.seed)
    meta = dataset.load_meta(meta_path)
    server = make_url(args.pg).set(drivername="postgresql+psycopg")
    name = f"ayeto_bench_{args.conversations}_s{args.seed}"
    url = server.set(database=name).render_as_string(hide_password=False)
    import_seconds = prepare(server.render_as_string(hide_password=False), name, url, args)
    key = run.ayeto("keys", "create", "--user", meta.top_owner, "--db", url).splitlines()[-1]
    find = run.Scenario("find page", "POST", f"{run.API}/find", run.page_body(meta.bench_model))
    get = run.Scenario("get", "POST", f"{run.API}/get?entity_id={meta.sample_conversation}")

    rows = [pgbench_row(args, url, meta)]
    with contextlib.ExitStack() as stack:
        servers: list[tuple[str, Path | None, int]] = []
        if args.before:
            earlier = stack.enter_context(handoff.source_of(args.before))
            servers.append((f"`--workers 1`, before (`{args.before}`)", earlier, 1))
        servers += [(f"`--workers {workers}`", None, workers) for workers in args.workers]
        for title, tree, workers in servers:
            port = run.free_port()
            command = [str(run.BIN / "python"), "-m", "ayeto", "serve", "--host", run.HOST]
            command += ["--port", str(port), "--db", url, "--workers", str(workers)]
            env = {"AYETO_RATE_LIMIT": run.UNLIMITED, "AYETO_LOG_LEVEL": "warning"}
            if tree is not None:
                # Ahead of the editable install's path: the server runs the earlier package.
                env["PYTHONPATH"] = str(tree)
            with run.serving(f"ayeto-pg-{len(rows)}", command, port, env):
                base = run.base_url(port)
                server_pid = server_process(port)
                for scenario in (find, get):
                    if scenario is find:
                        same_page(base, key, find, url, meta)
                    run.check(base, scenario, key)
                    label = f"{scenario.label}, {title}"
                    rows.append(wrk_row(args, wrk, base, scenario, key, label, server_pid))

    report = render(args, meta, import_seconds, rows, load_before)
    print()
    print(report)
    if not args.no_record:
        run.record(report)
        run.step(f"appended to {run.RESULTS.relative_to(run.ROOT)}")
    return 0


def prepare(server: str, name: str, url: str, args: argparse.Namespace) -> float | None:
    """A fresh database `name` with the dataset imported (seconds taken), or the one there."""
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if args.reuse_db and exists:
                run.step(f"reusing database {name}")
                return None
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" ENCODING UTF8 TEMPLATE template0')
    finally:
        engine.dispose()
    data_path, _ = dataset.paths(args.conversations, args.seed)
    run.step(f"importing into PostgreSQL database {name}")
    started = time.perf_counter()
    run.ayeto("import", str(data_path), "--db", url, timeout=3600)
    seconds = time.perf_counter() - started
    run.step(f"imported in {seconds:.1f} s")
    analyze = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with analyze.connect() as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    finally:
        analyze.dispose()
    return seconds


def libpq(url: str) -> list[str]:
    """pgbench's and psql's connection options for `url`."""
    parsed = make_url(url)
    options = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    return [*options, "-U", parsed.username or "postgres", parsed.database or "postgres"]


def pgbench_row(args: argparse.Namespace, url: str, meta: dataset.Meta) -> Row:
    """pgbench running PAGE_SQL: the page's throughput on PostgreSQL alone."""
    clients = args.pgbench_clients
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "page.sql"
        script.write_text(PAGE_SQL.replace("\n", " ").strip() + "\n")
        common = [
            "pgbench",
            "-n",
            "-M",
            "prepared",
            "-f",
            str(script),
            "-c",
            str(clients),
            "-j",
            "2",
        ]
        common += ["-D", f"owner={meta.top_owner}", "-D", f"model={meta.bench_model}"]
        env = {**os.environ, "PGPASSWORD": make_url(url).password or ""}

        def pgbench(seconds: int) -> subprocess.CompletedProcess[str]:
            command = [*common, "-T", str(seconds), *libpq(url)[4:], *libpq(url)[:4]]
            return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

        if args.warmup:
            pgbench(args.warmup)
        with sampling() as cpu:
            done = pgbench(args.duration)
    if done.returncode != 0:
        raise SystemExit(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    tps = next(line for line in done.stdout.splitlines() if line.startswith("tps"))
    rate = float(tps.split("=")[1].split()[0])
    latency = next(line for line in done.stdout.splitlines() if "latency average" in line)
    label = f"pgbench: the page as one JSON statement (`-c {clients} -j 2`)"
    run.step(f"{label}: {rate:,.0f} tps")
    mean = float(latency.split("=")[1].split()[0])
    return Row(label, rate, mean, None, cpu())


def same_page(base: str, key: str, scenario: run.Scenario, url: str, meta: dataset.Meta) -> None:
    """The API's page and PAGE_SQL's are the same documents, or the baseline measures another."""
    response = httpx.post(
        base + scenario.path, content=scenario.body, headers={"uni-api-key": key}, timeout=30
    )
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            page = connection.execute(
                text(PAGE_SQL), {"owner": meta.top_owner, "model": meta.bench_model}
            ).scalar_one()
    finally:
        engine.dispose()
    if orjson.loads(response.content) != page:
        raise SystemExit("the API's find page differs from what PAGE_SQL returns")


def wrk_row(
    args: argparse.Namespace,
    wrk: str,
    base: str,
    scenario: run.Scenario,
    key: str,
    label: str,
    server_pid: int,
) -> Row:
    settings = (args.threads, args.connections)
    if args.warmup:
        run.load(wrk, base, scenario, key, args.warmup, *settings)
    with sampling(server_pid) as cpu:
        measured = run.load(wrk, base, scenario, key, args.duration, *settings)
    run.step(f"{label}: {measured.rate:,.0f} req/s, p99 {measured.p99 / 1000:.1f} ms")
    return Row(label, measured.rate, measured.p50 / 1000, measured.p99 / 1000, cpu())


def server_process(port: int) -> int:
    """The pid of the `ayeto serve` listening on `port` (the parent of its workers)."""
    done = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        pid, _, command = line.strip().partition(" ")
        if "ayeto serve" in command and f"--port {port} " in command:
            return int(pid)
    raise SystemExit(f"no `ayeto serve` process on port {port}")


# -- CPU -----------------------------------------------------------------------------------------


def ticks() -> dict[int, tuple[str, int, int]]:
    """Per live process: (command name, session id, user + system ticks so far). PostgreSQL's
    postmaster counts, besides its own, those of its backends that ended (pgbench's do)."""
    found = {}
    parents, reaped = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        # After the name: state, ppid, pgrp, session, …, utime, stime, cutime, cstime (13-16).
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        found[pid] = (name, int(fields[3]), int(fields[11]) + int(fields[12]))
        parents[pid] = int(fields[1])
        reaped[pid] = int(fields[13]) + int(fields[14])
    for pid, (name, session, used) in found.items():
        if name == "postgres" and found.get(parents[pid], ("",))[0] != "postgres":
            found[pid] = (name, session, used + reaped[pid])
    return found


def children_seconds() -> float:
    """CPU seconds of this process's children that ended: the load generators, once waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_ticks() -> int:
    """Every CPU's non-idle ticks so far (/proc/stat: user … steal, without idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(values) - values[3] - values[4]


@contextmanager
def sampling(server_pid: int | None = None) -> Iterator[Callable[[], Cpu]]:
    """The cores PostgreSQL, ayeto (the session of `server_pid`), the load generator (wrk or
    pgbench) and everything else used while the block ran. A process that started and ended
    within the block is counted as "other"."""
    before, busy_before, started = ticks(), busy_ticks(), time.monotonic()
    children_before = children_seconds()
    result: list[Cpu] = []
    yield lambda: result[0]
    after, busy_after, seconds = ticks(), busy_ticks(), time.monotonic() - started
    groups = {
        "postgres": 0,
        "ayeto": 0,
        "load": round((children_seconds() - children_before) * TICKS),
    }
    session = None if server_pid is None else after.get(server_pid, ("", -1, 0))[1]
    for pid, (name, sid, used) in after.items():
        spent = used - before.get(pid, (name, sid, 0))[2]
        if name.startswith("postgres") or name == "postmaster":
            groups["postgres"] += spent
        elif session is not None and sid == session:
            groups["ayeto"] += spent
    scale = TICKS * seconds
    other = max(0, busy_after - busy_before - sum(groups.values()))
    result.append(
        Cpu(
            groups["postgres"] / scale,
            groups["ayeto"] / scale,
            groups["load"] / scale,
            other / scale,
        )
    )


# -- the report ----------------------------------------------------------------------------------


def render(
    args: argparse.Namespace,
    meta: dataset.Meta,
    import_seconds: float | None,
    rows: list[Row],
    load_before: float,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    version = subprocess.run(["pgbench", "--version"], capture_output=True, text=True).stdout
    baseline = rows[0].rate
    by_label = {row.label: row.rate for row in rows}
    lines = [
        f"## {now} — PostgreSQL, workers — commit {run.commit()}",
        "",
        f"- Machine: {run.machine()}; load average {load_before:.2f} when the run started",
        f"- Versions: {run.versions()}, {version.strip()}",
        f"- Dataset: {meta.conversations:,} conversations, {meta.messages:,} messages; top owner "
        f"{meta.top_owner_conversations:,} conversations, "
        f"{meta.bench_model_conversations:,} with `{meta.bench_model}`",
    ]
    if import_seconds is not None:
        lines.append(
            f"- Import (`ayeto import`, fresh PostgreSQL database): {import_seconds:.1f} s, "
            f"{meta.conversations / import_seconds:,.0f} conversations/s"
        )
    lines += [
        f"- Load: `wrk -t{args.threads} -c{args.connections} -d{args.duration}s` after "
        f"{args.warmup} s of warm-up; pgbench `-T {args.duration}` after as much warm-up",
        "- CPU: cores busy during the measured seconds, as PostgreSQL / ayeto (every worker) / "
        "load generator / anything else on the machine",
        "",
        "| scenario | req/s | p50 ms | p99 ms | vs pgbench | vs 1 worker "
        "| CPU pg / ayeto / load / other | CPU ms per request, pg + ayeto |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        one = row.label.replace("`--workers 4`", "`--workers 1`")
        versus = f"{row.rate / by_label[one]:.2f}" if one != row.label and one in by_label else ""
        p50 = "" if row.p50_ms is None else f"{row.p50_ms:.1f}"
        p99 = "" if row.p99_ms is None else f"{row.p99_ms:.1f}"
        lines.append(
            f"| {row.label} | {row.rate:,.0f} | {p50} | {p99} | {row.rate / baseline:.2f} "
            f"| {versus} | {row.cpu.render()} "
            f"| {row.cpu.postgres * 1000 / row.rate:.1f} + {row.cpu.ayeto * 1000 / row.rate:.1f} |"
        )
    lines.append("")
    lines.append(
        "pgbench's p50 column is its mean latency. `vs pgbench` compares with the statement that "
        "builds the page in PostgreSQL alone; it means most for the find page. CPU ms per "
        "request: the cores PostgreSQL and ayeto kept busy, over the requests per second."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

"""Retention (`ayeto.retention`) on both databases, on a clock the tests set: what a run deletes,
once per hour across runners that share the database, its log line and its metric; and
`ayeto serve --workers 2` with AYETO_RETENTION, where exactly one worker prunes."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from ayeto import retention
from ayeto.metrics import Prometheus
from ayeto.retention import JOB, PERIOD_MS, Retention
from ayeto.store import Store, open_store
from tests.factories import ALICE, BOB, conversation
from tests.processes import serving, stop

DAY = 86_400_000
# 2026-12-07 10:05:00 UTC, five minutes into an hour.
T0 = 1_796_637_900_000
AGE = 90 * DAY


class Clock:
    """The time a runner reads: set and advanced by the test, never by waiting."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def updated(id_: str, owner: str, at: int) -> dict[str, Any]:
    return conversation(owner, id=id_, updated={"user_id": owner, "timestamp": at})


# Two of ALICE's and one of BOB's are past 90 days at T0; the others are not.
OLD_A = "a0000000-0000-4000-8000-000000000001"
OLD_B = "b0000000-0000-4000-8000-000000000001"
OLD_C = "a0000000-0000-4000-8000-000000000002"
EDGE = "a0000000-0000-4000-8000-000000000003"  # updated exactly 90 days before T0: kept
NEW = "b0000000-0000-4000-8000-000000000002"
DATASET = [
    updated(OLD_A, ALICE, T0 - 200 * DAY),
    updated(OLD_B, BOB, T0 - 91 * DAY),
    updated(OLD_C, ALICE, T0 - AGE - 1),
    updated(EDGE, ALICE, T0 - AGE),
    updated(NEW, BOB, T0 - DAY),
]


@pytest.fixture
def filled(store: Store) -> Store:
    store.upsert(DATASET)
    return store


@pytest.fixture
def second(database_url: str, filled: Store) -> Iterator[Store]:
    """Another process's store on the same database: its own engines and connections."""
    other = open_store(database_url)
    yield other
    other.close()


def stored(store: Store) -> list[str]:
    return sorted(document["id"] for document in store.export())


def test_a_run_deletes_what_was_not_updated_in_time_and_records_it(filled: Store) -> None:
    clock = Clock(T0)
    assert filled.last_run(JOB) is None
    assert Retention(filled, AGE, clock=clock).run_due() == 3
    assert stored(filled) == [EDGE, NEW]
    assert filled.last_run(JOB) == T0


def test_a_large_run_deletes_in_chunks_of_ids(
    filled: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "CHUNK", 2)
    calls: list[tuple[str, bool]] = []
    original = filled.delete_matching

    def spied(owner: str | None, query: Any, *, dry_run: bool = False) -> list[str]:
        bounds = [f"{c.field.name} {c.op} {c.value}" for c in query.conditions[1:]]
        calls.append((" and ".join(bounds), dry_run))
        return original(owner, query, dry_run=dry_run)

    monkeypatch.setattr(filled, "delete_matching", spied)
    assert Retention(filled, AGE, clock=Clock(T0)).run_due() == 3
    # OLD_A < OLD_C < OLD_B by id: two ranges.
    assert calls == [
        ("", True),
        (f"id >= {OLD_A} and id <= {OLD_C}", False),
        (f"id >= {OLD_B} and id <= {OLD_B}", False),
    ]
    assert stored(filled) == [EDGE, NEW]


def test_once_per_hour_whoever_runs(filled: Store, second: Store) -> None:
    clock = Clock(T0)
    first = Retention(filled, AGE, clock=clock)
    later = Retention(second, AGE, clock=clock)
    assert first.run_due() == 3
    # Another process starting ten minutes later, and the first again: the hour is done.
    clock.now = T0 + 10 * 60_000
    assert later.run_due() is None
    assert first.run_due() is None
    # A conversation that falls due meanwhile waits for the next hour.
    filled.upsert([updated(OLD_A, ALICE, T0 - 100 * DAY)])
    clock.now = T0 + 55 * 60_000  # 11:00:00, the next hour
    assert later.run_due() == 2  # OLD_A, and EDGE, now past 90 days
    assert first.run_due() is None
    assert stored(filled) == [NEW]
    assert filled.last_run(JOB) == T0 + 55 * 60_000
    clock.now += PERIOD_MS - 1  # 11:59:59.999
    assert first.run_due() is None
    clock.now += 1
    assert first.run_due() == 0
    assert stored(filled) == [NEW]


def test_a_runner_does_nothing_while_another_holds_the_lock(filled: Store, second: Store) -> None:
    runner = Retention(second, AGE, clock=Clock(T0))
    with filled.exclusive(JOB) as held:
        assert held is True
        with second.exclusive(JOB) as also:
            assert also is False
        assert runner.run_due() is None
        assert stored(filled) == sorted(d["id"] for d in DATASET)
        assert filled.last_run(JOB) is None
    # Released: the lock is free again, and the run due.
    assert runner.run_due() == 3


def test_two_concurrent_runners_one_prunes(filled: Store, second: Store) -> None:
    clock = Clock(T0)
    runners = [Retention(filled, AGE, clock=clock), Retention(second, AGE, clock=clock)]
    start = threading.Barrier(2)
    results: list[int | None] = [None, None]

    def run(index: int) -> None:
        start.wait()
        results[index] = runners[index].run_due()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=lambda r: r is None) == [3, None]
    assert stored(filled) == [EDGE, NEW]
    assert filled.last_run(JOB) == T0


def test_a_run_logs_one_line_and_counts_the_metric(
    filled: Store, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Prometheus(CollectorRegistry())
    caplog.set_level(logging.INFO, "ayeto.retention")
    clock = Clock(T0)
    runner = Retention(filled, AGE, clock=clock, metrics=metrics)
    assert runner.run_due() == 3
    assert runner.run_due() is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == [
        "retention: deleted 3 conversation(s) not updated since 2026-09-08 10:05:00Z"
    ]
    assert [getattr(r, "fields", None) for r in caplog.records if r.levelno >= logging.INFO] == [
        {"pruned": 3, "cutoff": T0 - AGE}
    ]
    assert metrics.registry.get_sample_value("ayeto_conversations_pruned_total") == 3
    clock.now += PERIOD_MS
    assert runner.run_due() == 1  # EDGE
    assert metrics.registry.get_sample_value("ayeto_conversations_pruned_total") == 4


def test_the_server_loop_runs_now_then_at_each_hour_start(filled: Store) -> None:
    clock = Clock(T0)
    runs: list[int | None] = []
    runner = Retention(filled, AGE, clock=clock)
    run_due = runner.run_due

    def counted() -> int | None:
        runs.append(run_due())
        return runs[-1]

    runner.run_due = counted  # type: ignore[method-assign]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += int(seconds * 1000)
        if len(slept) == 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(runner.run(sleep))
    assert slept == [55 * 60.0, 3600.0, 3600.0]
    assert runs == [3, 1, 0]  # EDGE, 90 days old at T0, is past them at 11:00


def test_a_failed_run_is_logged_and_the_loop_goes_on(
    filled: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0)
    runner = Retention(filled, AGE, clock=clock)
    calls = []

    def failing() -> int | None:
        calls.append(clock.now)
        raise RuntimeError("the database went away")

    runner.run_due = failing  # type: ignore[method-assign]

    async def sleep(seconds: float) -> None:
        clock.now += int(seconds * 1000)
        if len(calls) == 2:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(runner.run(sleep))
    assert calls == [T0, T0 + 55 * 60_000]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == ["retention: pruning failed"] * 2


def pruned_total(server_url: str) -> float | None:
    """`ayeto_conversations_pruned_total` as /metrics shows it (the sum over the workers)."""
    for line in httpx.get(f"{server_url}/metrics").text.splitlines():
        if line.startswith("ayeto_conversations_pruned_total "):
            return float(line.split()[1])
    return None


def test_serve_with_two_workers_prunes_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time() * 1000)
    old = [
        updated(f"a0000000-0000-4000-8000-00000000000{i}", ALICE, now - 100 * DAY) for i in "1234"
    ]
    store = open_store(database_url)
    try:
        store.upsert([*old, updated(NEW, BOB, now - DAY)])
    finally:
        store.close()
    monkeypatch.setenv("AYETO_RETENTION", "90d")
    with serving(database_url, "--workers", "2") as server:
        # The workers prune at start-up, off their event loops: wait for the count to show.
        deadline = time.monotonic() + 30
        while not pruned_total(server.base_url) and time.monotonic() < deadline:
            time.sleep(0.1)
        total = pruned_total(server.base_url)
        output = stop(server)
    assert total == 4
    assert output.count("retention: deleted") == 1
    assert "retention: deleted 4 conversation(s) not updated since " in output
    store = open_store(database_url)
    try:
        assert stored(store) == [NEW]
        assert store.last_run(JOB) is not None
    finally:
        store.close()

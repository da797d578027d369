"""`/metrics`: exact counts of what the server did, in process and across real workers."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import httpx
import psycopg
import pytest
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.testclient import TestClient

from ayeto.api import create_app
from ayeto.auth import create_key
from ayeto.config import ConnectionOptions, InvalidSetting, Settings
from ayeto.errors import AyetoError, BadRequest, NotFound, QueryTimeout
from ayeto.metrics import database_error_kind, multiprocess_registry
from ayeto.store import Store, open_store
from ayeto.store.dialects import Dialect, SQLite
from ayeto.store.sql import BATCH
from tests.factories import ALICE, BOB, conversation
from tests.processes import cli, free_port, new_key, serving
from tests.tcp_proxy import TcpProxy

BASE = "/api/v3/conversation"
FIND, GET, DELETE = f"{BASE}/find", f"{BASE}/get", f"{BASE}/delete"
UNKNOWN = "deadbeef-dead-4bee-8fee-deadbeefcafe"
INVALID_KEY = "ayeto-" + "0" * 64
# A generous bound on the moment between an answer and its count (see `_once_counted`).
SETTLE_SECONDS = 10.0
METRICS_FORMS = "on, off or HOST:PORT (serve /metrics there, apart from the API)"

# prometheus-client's multiprocess module has no type annotations.
_merge = cast(Callable[[list[str]], Iterable[Metric]], MultiProcessCollector.merge)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exposition: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return _by_name(text_string_to_metric_families(exposition))


def _by_name(families: Iterable[Metric]) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a labelled sample never recorded (Prometheus shows none)."""
    return found.get((name, frozenset(labels.items())), 0.0)


def requests(found: Samples, endpoint: str, status: int) -> float:
    return value(found, "ayeto_http_requests_total", endpoint=endpoint, status=str(status))


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as client:
        yield client


def _key(store: Store, user: str = ALICE) -> dict[str, str]:
    return {"uni-api-key": create_key(store, user, scopes=("ayeto.conversation",))[0]}


def test_the_exposition_counts_exactly_what_was_served(store: Store, client: TestClient) -> None:
    documents = [conversation(ALICE) for _ in range(3)] + [conversation(BOB)]
    store.upsert(documents)
    alice = _key(store)
    for _ in range(4):
        assert client.post(FIND, headers=alice).status_code == 200
    for _ in range(2):
        assert client.post(GET, headers=alice, params={"entity_id": documents[0]["id"]}).is_success
    assert client.post(GET, headers=alice, params={"entity_id": UNKNOWN}).status_code == 404
    assert (
        client.post(GET, headers=alice, params={"entity_id": documents[3]["id"]}).status_code == 403
    )
    assert client.post(DELETE, headers=alice, params={"entity_id": documents[1]["id"]}).is_success
    assert client.post(FIND, headers={"uni-api-key": INVALID_KEY}).status_code == 401
    assert client.post(FIND).status_code == 401  # no key: not an invalid one
    assert client.post(FIND, headers=alice, json={"limit_to": "x"}).status_code == 400
    assert client.get("/nowhere/4f6e").status_code == 404

    found = scrape(client)

    assert {
        (labels["endpoint"], labels["status"]): count
        for (name, label_set), count in found.items()
        if name == "ayeto_http_requests_total" and (labels := dict(label_set))
    } == {
        (FIND, "200"): 4,
        (GET, "200"): 2,
        (GET, "404"): 1,
        (GET, "403"): 1,
        (DELETE, "200"): 1,
        (FIND, "401"): 2,
        (FIND, "400"): 1,
        # Whatever path a client makes up, it is one label value.
        ("unmatched", "404"): 1,
    }
    duration = "ayeto_http_request_duration_seconds_count"
    assert value(found, duration, endpoint=FIND) == 7
    assert value(found, duration, endpoint=GET) == 4
    assert value(found, "ayeto_invalid_key_failures_total") == 1
    assert value(found, "ayeto_rate_limited_total") == 0
    assert value(found, "ayeto_query_timeouts_total") == 0
    assert not [name for name, _ in found if name == "ayeto_database_errors_total"]
    # Four finds of Alice's three conversations; the 400 never reached the store.
    assert value(found, "ayeto_find_rows_count") == 4
    assert value(found, "ayeto_find_rows_sum") == 12
    assert value(found, "ayeto_find_rows_bucket", le="1.0") == 0
    assert value(found, "ayeto_find_rows_bucket", le="5.0") == 4
    # One store call per find (its whole answer is one batch), get and delete; one authentication
    # per API request, with a key or not.
    store_calls = "ayeto_store_call_duration_seconds_count"
    assert value(found, store_calls, operation="find") == 4
    assert value(found, store_calls, operation="get") == 4
    assert value(found, store_calls, operation="delete") == 1
    assert value(found, store_calls, operation="auth") == 12
    # The scrape itself is the one request in progress.
    assert value(found, "ayeto_http_requests_in_progress") == 1


def test_a_streamed_find_counts_every_row_it_sent(store: Store, client: TestClient) -> None:
    store.upsert(conversation(ALICE) for _ in range(2 * BATCH + 50))
    alice = _key(store)

    response = client.post(FIND, headers=alice)

    assert len(response.json()) == 2 * BATCH + 50
    found = scrape(client)
    assert value(found, "ayeto_find_rows_count") == 1
    assert value(found, "ayeto_find_rows_sum") == 2 * BATCH + 50
    assert value(found, "ayeto_find_rows_bucket", le="100.0") == 0
    assert value(found, "ayeto_find_rows_bucket", le="500.0") == 1


def test_a_statement_past_its_time_budget_is_counted(postgres_url: str) -> None:
    from tests.conftest import empty_postgres

    store = open_store(empty_postgres(postgres_url), ConnectionOptions(statement_timeout_ms=200))
    alice = _key(store)
    with (
        TestClient(create_app(store)) as client,
        psycopg.connect(postgres_url) as holder,
    ):
        holder.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
        try:
            response = client.post(FIND, headers=alice, json={"sort_key": "name"})
        finally:
            holder.rollback()
        assert response.status_code == 400
        found = scrape(client)
    assert value(found, "ayeto_query_timeouts_total") == 1
    assert value(found, "ayeto_database_errors_total", kind="query_timeout") == 1
    assert requests(found, FIND, 400) == 1


def test_an_unreachable_database_is_counted_as_unavailable(postgres_url: str) -> None:
    from tests.conftest import empty_postgres

    url = make_url(empty_postgres(postgres_url))
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        store = open_store(proxied)
        alice = _key(store)
        with TestClient(create_app(store)) as client:
            proxy.cut()
            for _ in range(2):
                response = client.post(GET, headers=alice, params={"entity_id": UNKNOWN})
                assert response.status_code == 503
            found = scrape(client)
            proxy.restore()
    assert value(found, "ayeto_database_errors_total", kind="unavailable") == 2
    assert requests(found, GET, 503) == 2


def test_every_429_is_counted(store: Store) -> None:
    alice = _key(store)
    with TestClient(create_app(store, Settings(rate_limit="2/minute"))) as client:
        statuses = [client.post(FIND, headers=alice).status_code for _ in range(5)]
        found = scrape(client)
    assert statuses == [200, 200, 429, 429, 429]
    assert value(found, "ayeto_rate_limited_total") == 3
    assert requests(found, FIND, 429) == 3


def test_a_failing_redis_is_counted(store: Store) -> None:
    alice = _key(store)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with TestClient(create_app(store, Settings(redis_url=nowhere))) as client:
        # The limits fail open: the request counts in the process.
        assert client.post(FIND, headers=alice).status_code == 200
        found = scrape(client)
    assert value(found, "ayeto_rate_limit_redis_failures_total") == 1


@pytest.mark.parametrize("setting", ["off", "127.0.0.1:9100"])
def test_metrics_off_or_elsewhere_are_not_on_the_api(store: Store, setting: str) -> None:
    with TestClient(create_app(store, Settings(metrics=setting))) as client:
        response = client.get("/metrics")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_metrics_stay_out_of_the_openapi_document(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("raw", "setting"),
    [
        ("on", "on"),
        ("OFF", "off"),
        ("127.0.0.1:9100", "127.0.0.1:9100"),
        ("[::1]:9100", "[::1]:9100"),
        ("metrics.internal:65535", "metrics.internal:65535"),
    ],
)
def test_metrics_settings(raw: str, setting: str) -> None:
    assert Settings.from_env({"AYETO_METRICS": raw}).metrics == setting


@pytest.mark.parametrize(
    "raw", ["yes", "9100", ":9100", "localhost:", "localhost:0", "localhost:65536", "host:9 1"]
)
def test_a_metrics_setting_that_is_no_address_is_refused(raw: str) -> None:
    with pytest.raises(InvalidSetting) as raised:
        Settings.from_env({"AYETO_METRICS": raw})
    assert str(raised.value) == f"AYETO_METRICS takes {METRICS_FORMS}, not {raw!r}"


# -- real servers --------------------------------------------------------------------------------


def _served(base_url: str, key: str, entity_id: str, count: int) -> None:
    """`count` gets from 4 clients at once, each on a new connection, so that the kernel spreads
    them over the workers."""

    def one(_: int) -> int:
        return httpx.post(
            f"{base_url}{GET}", headers={"uni-api-key": key}, params={"entity_id": entity_id}
        ).status_code

    with ThreadPoolExecutor(4) as clients:
        assert list(clients.map(one, range(count))) == [200] * count


def _once_counted(url: str, count: int) -> Samples:
    """The metrics at `url` once `count` gets are in them, or after `SETTLE_SECONDS`.

    A worker counts a request when it has sent the last byte of its answer: the client may read
    that answer a moment before the count is written.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        found = samples(httpx.get(url).text)
        if requests(found, GET, 200) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _per_worker(directory: Path) -> list[float]:
    """The 200s to `get` each worker counted, from its own file."""
    return [
        requests(_by_name(_merge([str(path)])), GET, 200)
        for path in sorted(directory.glob("counter_*.db"))
    ]


def _provision(database_url: str) -> tuple[str, str]:
    store = open_store(database_url)
    try:
        document = conversation(ALICE)
        store.upsert([document])
    finally:
        store.close()
    return new_key(database_url, ALICE), document["id"]


def test_counts_add_up_over_every_worker(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, entity_id = _provision(database_url)
    # The server makes its metrics directory here: the test sees it made, and removed.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with serving(database_url, "--workers", "2") as server:
        [directory] = tmp_path.glob("ayeto-metrics-*")
        _served(server.base_url, key, entity_id, 40)
        found = _once_counted(f"{server.base_url}/metrics", 40)
        assert requests(found, GET, 200) == 40
        # Both workers served some of them.
        per_worker = _per_worker(directory)
        assert (len(per_worker), sum(per_worker), min(per_worker) > 0) == (2, 40, True)
        # Each scrape is answered by one worker or the other; each one sees the sum.
        for _ in range(6):
            found = samples(httpx.get(f"{server.base_url}/metrics").text)
            assert requests(found, GET, 200) == 40
            assert value(found, "ayeto_store_call_duration_seconds_count", operation="get") == 40
    assert list(tmp_path.glob("ayeto-metrics-*")) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_on_their_own_address(sqlite_url: str, workers: str) -> None:
    key, entity_id = _provision(sqlite_url)
    port = free_port()
    with serving(sqlite_url, "--workers", workers, "--metrics", f"127.0.0.1:{port}") as server:
        api = httpx.get(f"{server.base_url}/metrics")
        _served(server.base_url, key, entity_id, 10)
        found = _once_counted(f"http://127.0.0.1:{port}/metrics", 10)
    assert (api.status_code, api.json()) == (404, {"detail": "Not Found"})
    assert requests(found, GET, 200) == 10
    # The API's /metrics 404 counted too.
    assert requests(found, "unmatched", 404) == 1


def test_metrics_off_in_a_real_server(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AYETO_METRICS", "off")
    with serving(sqlite_url) as server:
        response = httpx.get(f"{server.base_url}/metrics")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


def test_metrics_and_the_api_cannot_share_a_port(sqlite_url: str) -> None:
    port = free_port()
    result = cli(
        "serve",
        "--db",
        sqlite_url,
        "--port",
        str(port),
        "--metrics",
        f"127.0.0.1:{port}",
        check=False,
    )
    assert (result.returncode, result.stderr) == (
        2,
        f"error: --metrics 127.0.0.1:{port}: the API listens on port {port}; pick another port\n",
    )


def test_a_dead_worker_keeps_its_counts_but_leaves_the_in_progress_gauge(tmp_path: Path) -> None:
    # A worker killed in the middle of a request: it never says it has stopped.
    worker = """
import os
from ayeto.metrics import Prometheus
metrics = Prometheus()
metrics.request_started()
metrics.request_finished({}, 200, 0.01)
metrics.request_started()
os._exit(0)
"""
    environment = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=environment, check=True, timeout=60)
    assert len(list(tmp_path.glob("gauge_livesum_*.db"))) == 2

    found = samples(generate_latest(multiprocess_registry(tmp_path)).decode())

    assert value(found, "ayeto_http_requests_in_progress") == 0
    assert requests(found, "unmatched", 200) == 2
    assert list(tmp_path.glob("gauge_livesum_*.db")) == []


def test_a_busy_metrics_port_is_named_before_anything_starts(sqlite_url: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = cli(
            *("serve", "--db", sqlite_url, "--port", str(free_port())),
            *("--metrics", f"127.0.0.1:{port}"),
            check=False,
        )
    assert (result.returncode, result.stderr) == (
        1,
        f"error: port {port} on 127.0.0.1 is in use; pick another with --metrics or "
        f"AYETO_METRICS (e.g. --metrics 127.0.0.1:{port + 1})\n",
    )


def _translated(dialect: Dialect, failure: Exception) -> AyetoError:
    """The API's error for `failure`, raised from it as the store raises it."""
    translated = dialect.translate(failure)
    assert isinstance(translated, AyetoError)
    translated.__cause__ = failure
    return translated


def _driver_error(message: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_translated(Dialect(), PoolTimeout("QueuePool limit reached")), "pool_timeout"),
        (_translated(Dialect(), _driver_error("connection refused")), "unavailable"),
        (_translated(SQLite(), _driver_error("Expression tree is too large")), "rejected"),
        (QueryTimeout("the query ran past the statement timeout"), "query_timeout"),
        (BadRequest("limit_to: not an integer"), None),
        (NotFound(UNKNOWN), None),
    ],
)
def test_database_errors_by_kind(error: AyetoError, kind: str | None) -> None:
    assert database_error_kind(error) == kind

"""`ayeto mirror`: an `ayeto serve` on PostgreSQL plays the hosted service, mirrored into SQLite by
real `ayeto mirror` processes; after each step the exports of source and mirror are compared.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.engine import make_url

from ayeto.client import Client
from ayeto.mirror import mirror
from ayeto.store import Store, open_store
from tests.conftest import empty_postgres
from tests.factories import ALICE, BOB, conversation, img_gen, message
from tests.processes import Server, cli, free_port, new_key, serving

pytestmark = pytest.mark.e2e

MIRROR = [sys.executable, "-m", "ayeto", "mirror"]
SECONDS = r"\d+\.\d s"
# Fields of an image the spec does not name, as the hosted service may send them.
EXTRAS = {"seed": 42, "style": {"preset": "vivid", "weights": [0.5, 1]}}


def alice(n: int, *, name: str = "", updated: int | None = None) -> dict[str, Any]:
    """Alice's conversation number `n`: each updated at its own millisecond, in order of `n`."""
    stamp = 1_735_000_000_000 + n * 1000 if updated is None else updated
    return conversation(
        ALICE,
        id=f"a0000000-0000-4000-8000-{n:012d}",
        name=name or f"conversation {n}",
        messages=[
            message(stamp - 10, id=f"a1000000-0000-4000-8000-{n:012d}"),
            message(
                stamp - 5,
                id=f"a2000000-0000-4000-8000-{n:012d}",
                role="assistant",
                content=None,
                img_gen=img_gen(**EXTRAS) if n % 7 == 0 else None,
            ),
        ],
        created={"user_id": ALICE, "timestamp": stamp - 20},
        updated={"user_id": ALICE, "timestamp": stamp},
    )


@dataclass(frozen=True)
class Source:
    server: Server
    database_url: str
    key: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def write(self, *documents: dict[str, Any]) -> None:
        store = open_store(self.database_url)
        try:
            store.upsert(documents)
        finally:
            store.close()

    def delete(self, *ids: str) -> None:
        with Client(api_key=self.key, base_url=self.url) as client:
            for id_ in ids:
                client.delete(id_)


@contextmanager
def source_of(
    postgres_url: str, documents: list[dict[str, Any]], *options: str
) -> Iterator[Source]:
    url = empty_postgres(postgres_url)
    store = open_store(url)
    try:
        store.upsert([*documents, conversation(BOB), conversation(BOB)])
    finally:
        store.close()
    with serving(url, *options) as server:
        yield Source(server, url, new_key(url, ALICE))


def run_mirror(
    source: Source, db: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    os.environ["AYETO_MIRROR_KEY"] = source.key
    try:
        return cli("mirror", "--from", source.url, "--db", db, *args, check=check)
    finally:
        del os.environ["AYETO_MIRROR_KEY"]


def summary(source: Source, db: str, figures: str) -> str:
    """The lines a run prints, `figures` being its counts up to the seconds."""
    return (
        f"mirrored {re.escape(source.url)} for user {ALICE}: {re.escape(figures)}, {SECONDS}\\)\n"
        f"to use this copy through the API, create a key: "
        f"ayeto keys create --user {ALICE} --db {re.escape(db)}\n"
    )


def export(db: str) -> list[str]:
    return cli("export", "--user", ALICE, "--db", db).stdout.splitlines()


def test_a_mirror_follows_its_source(postgres_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mirror.db'}"
    with source_of(postgres_url, [alice(n) for n in range(1, 251)]) as source:
        first = run_mirror(source, db, "--page-size", "100")
        assert re.fullmatch(
            f"created a new ayeto database at {re.escape(db)}\n"
            + summary(
                source,
                db,
                "250 new, 0 updated, 0 removed, 0 unknown fields dropped (250 fetched",
            ),
            first.stderr,
        ), first.stderr
        assert export(db) == export(source.database_url)
        assert len(export(db)) == 250
        # The image's fields beyond the spec's came through as given.
        assert '"seed":42,"style":{"preset":"vivid","weights":[0.5,1]}' in export(db)[6]

        # Unchanged: the one conversation at the watermark is fetched again, and not written.
        second = run_mirror(source, db)
        assert re.fullmatch(
            summary(source, db, "0 new, 0 updated, 0 removed, 0 unknown fields dropped (1 fetched"),
            second.stderr,
        ), second.stderr

        # Three updated, four new, two deleted on the source.
        source.write(
            *(alice(n, name="renamed", updated=1_736_000_000_000 + n) for n in (3, 100, 200)),
            *(alice(n) for n in range(251, 255)),
        )
        deleted = [alice(n)["id"] for n in (10, 20)]
        before = export(db)
        source.delete(*deleted)
        third = run_mirror(source, db)
        assert re.fullmatch(
            summary(source, db, "4 new, 3 updated, 0 removed, 0 unknown fields dropped (8 fetched"),
            third.stderr,
        ), third.stderr
        # Without --prune, the mirror differs by exactly the two deleted conversations.
        kept = [line for line in before if any(id_ in line for id_ in deleted)]
        assert len(kept) == 2
        assert sorted(export(db)) == sorted(export(source.database_url) + kept)

        pruned = run_mirror(source, db, "--prune")
        assert re.fullmatch(
            summary(
                source, db, "0 new, 0 updated, 2 removed, 0 unknown fields dropped (252 fetched"
            ),
            pruned.stderr,
        ), pruned.stderr
        assert export(db) == export(source.database_url)
        assert len(export(db)) == 252


def _count(db: str) -> int:
    path = make_url(db).database
    if path is None or not Path(path).exists():
        return 0
    try:
        with closing(sqlite3.connect(path, timeout=5)) as connection:
            return int(connection.execute("SELECT count(*) FROM conversations").fetchone()[0])
    except sqlite3.OperationalError:  # no schema yet
        return 0


def test_a_run_killed_midway_is_completed_by_the_next(postgres_url: str, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'mirror.db'}"
    # Rate-limited, the source is slow: the mirror waits out its 429s (Retry-After) page by page.
    documents = [alice(n) for n in range(1, 201)]
    with source_of(postgres_url, documents, "--rate-limit", "5/second") as source:
        process = subprocess.Popen(
            [*MIRROR, "--from", source.url, "--db", db, "--page-size", "10"],
            env=os.environ | {"AYETO_MIRROR_KEY": source.key, "NO_COLOR": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while _count(db) < 40:
                assert process.poll() is None, "the run ended before it could be killed"
                time.sleep(0.05)
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
        copied = _count(db)
        assert 40 <= copied < 200

        resumed = run_mirror(source, db, "--page-size", "10")
        # It goes on from the last page stored: the conversation at the watermark, and the rest.
        assert re.fullmatch(
            summary(
                source,
                db,
                f"{200 - copied} new, 0 updated, 0 removed, 0 unknown fields dropped "
                f"({200 - copied + 1} fetched",
            ),
            resumed.stderr,
        ), resumed.stderr
        assert export(db) == export(source.database_url)


def test_an_account_without_conversations_leaves_the_database_alone(
    postgres_url: str, tmp_path: Path
) -> None:
    with source_of(postgres_url, []) as source:
        result = run_mirror(source, f"sqlite:///{tmp_path / 'mirror.db'}")
    assert result.stderr == f"the key sees no conversations at {source.url}: nothing to mirror\n"
    assert list(tmp_path.iterdir()) == []


# -- a source that is not what it should be ------------------------------------------------------


class _Stub(BaseHTTPRequestHandler):
    """Answers every request with the server's `status`, `headers` and `body`."""

    def do_POST(self) -> None:
        stub: Any = self.server
        self.send_response(stub.status)
        for name, value in stub.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(stub.body)))
        self.end_headers()
        self.wfile.write(stub.body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def stub(status: int, body: bytes, **headers: str) -> Iterator[str]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.status, server.body, server.headers = status, body, headers
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


NOT_AYETO = "{url} does not answer as an ayeto Conversation API v3"
STUBS = {
    "a web page": (
        200,
        b"<html>hello</html>",
        {},
        NOT_AYETO + ": the server's answer (200) is not JSON: <html>hello</html>",
    ),
    "another JSON API": (
        200,
        b'{"items": []}',
        {},
        NOT_AYETO + ": the server's answer is not a list of conversations: "
        "the answer: Input should be a valid list",
    ),
    "no such path": (
        404,
        b"Not Found",
        {},
        NOT_AYETO + " (its /api/v3/conversation/find answered 404)",
    ),
    "a redirect": (
        307,
        b"",
        {"Location": "https://elsewhere.example/api/v3/conversation/find"},
        "{url} redirects to https://elsewhere.example/api/v3/conversation/find, which is not "
        "followed: the key goes only to --from (give the URL it redirects to, if you trust it)",
    ),
}


@pytest.mark.parametrize(("status", "body", "headers", "line"), STUBS.values(), ids=STUBS.keys())
def test_a_source_that_is_not_the_api_is_one_line_and_changes_nothing(
    status: int, body: bytes, headers: dict[str, str], line: str, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'mirror.db'}"
    with stub(status, body, **headers) as url:
        result = cli("mirror", "--from", url, "--key", "ayeto-" + "0" * 64, "--db", db, check=False)
    assert (result.returncode, result.stderr) == (1, "error: " + line.format(url=url) + "\n")
    assert list(tmp_path.iterdir()) == []


def test_a_key_the_source_refuses_is_one_line_and_changes_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'mirror.db'}"
    with source_of(postgres_url, [alice(1)]) as source:
        result = cli(
            "mirror", "--from", source.url, "--key", "ayeto-" + "0" * 64, "--db", db, check=False
        )
    assert (result.returncode, result.stderr) == (
        1,
        f"error: the source at {source.url} refused the key: API key is invalid\n",
    )
    assert list(tmp_path.iterdir()) == []


# -- what a source may send beyond the spec (in process) -----------------------------------------


def test_unknown_fields_are_dropped_and_counted_and_image_extras_kept(sqlite_url: str) -> None:
    extended = alice(7) | {"folder": "work", "pinned": True}
    extended["created"] = extended["created"] | {"via": "web"}
    extended["messages"] = [m | {"tokens": 12} for m in extended["messages"]]
    served = [extended, alice(8)]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=served)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    store = open_store(sqlite_url)
    try:
        with Client(api_key="k", base_url="http://source", http_client=http) as client:
            done = mirror(client, store, "http://source", ALICE)
        [stored] = [d for d in store.export(ALICE) if d["id"] == extended["id"]]
    finally:
        store.close()
    assert (done.fetched, done.new, done.updated, done.skipped) == (2, 2, 0, 0)
    assert dict(done.dropped) == {
        "folder": 1,
        "pinned": 1,
        "created.via": 1,
        "messages.tokens": 2,
    }
    assert orjson.loads(orjson.dumps(stored)) == alice(7)


def test_a_document_invalid_even_so_is_skipped_and_named(sqlite_url: str) -> None:
    broken = alice(1) | {"name": 5}
    served = [broken, alice(2)]
    http = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, json=served)))
    store = open_store(sqlite_url)
    try:
        with Client(api_key="k", base_url="http://source", http_client=http) as client:
            done = mirror(client, store, "http://source", ALICE)
        ids = [d["id"] for d in store.export(ALICE)]
    finally:
        store.close()
    assert (done.fetched, done.new, done.skipped) == (2, 1, 1)
    assert done.reasons == [f"{broken['id']}: name: Input should be a valid string"]
    assert ids == [alice(2)["id"]]


# -- the README's walk-through -------------------------------------------------------------------

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
HOSTED = "https://beta.ayeto.ai"


def walk_through() -> list[tuple[str, str]]:
    """The (kind, text) of each code block of the README's "Mirror your hosted account"."""
    section = re.search(r"^## Mirror your hosted account\n(.*?)^## ", README, re.M | re.S)
    assert section is not None
    return re.findall(r"^```(sh|text)\n(.*?)^```", section[1], re.M | re.S)


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # `ayeto` as the README's reader has it: the one of this environment, on the PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=os.environ | {"PATH": path, "NO_COLOR": "1"} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _seconds(text: str) -> str:
    return re.sub(r"\d+\.\d s\)", "… s)", text)


def test_the_readme_walk_through_works_as_printed(postgres_url: str, tmp_path: Path) -> None:
    from ayeto.clock import now_ms
    from ayeto.demo import DEMO_USER, load_demo

    blocks = walk_through()
    assert [kind for kind, _ in blocks] == ["sh", "text", "sh", "text", "sh"]
    (_, first), (_, first_output), (_, again), (_, again_output), (_, serve) = blocks
    url = empty_postgres(postgres_url)
    store = open_store(url)
    try:
        key = load_demo(store, now_ms()).key
    finally:
        store.close()
    assert DEMO_USER in first_output
    with serving(url) as server:
        exported: list[str] = []

        def run(script: str) -> subprocess.CompletedProcess[str]:
            script = script.replace("ayeto-…", key).replace(HOSTED, server.base_url)
            # One terminal: what a block exports holds in the blocks after it.
            result = bash("\n".join([*exported, script]), tmp_path, {})
            exported.extend(re.findall(r"^export .*$", script, re.M))
            assert result.returncode == 0, result.stderr
            return result

        def shown(text: str) -> str:
            return _seconds(text.replace(HOSTED, server.base_url))

        assert _seconds(run(first).stderr) == shown(first_output)
        assert _seconds(run(again).stderr) == shown(again_output)

        port = free_port()
        # The server goes in the background; the test waits until it answers, then stops it.
        serving_script = serve.replace("8001", str(port)).replace(
            " &\n",
            f" &\ntrap 'kill $!' EXIT\nuntil curl -sf -o /dev/null "
            f"http://127.0.0.1:{port}/livez; do sleep 0.2; done\n",
        )
        local = run(serving_script)
        body = {"sort_key": "updated.timestamp", "sort_order": 1, "limit_from": 0, "limit_to": 3}
        hosted = httpx.post(
            f"{server.base_url}/api/v3/conversation/find",
            json=body,
            headers={"uni-api-key": key},
        )
    # The copy answers as the source does, byte for byte.
    assert hosted.status_code == 200
    assert len(hosted.json()) == 3
    assert local.stdout == hosted.text


# -- the store's part, on every backend ----------------------------------------------------------


def test_a_page_is_written_with_its_watermark_and_only_what_changed(store: Store) -> None:
    assert store.mirror_watermark(ALICE, "http://a") is None
    assert store.mirror_page(ALICE, "http://a", [alice(1), alice(2)], 2000) == (2, 0)
    assert store.mirror_page(ALICE, "http://a", [alice(2), alice(3, name="x")], 3000) == (1, 0)
    assert store.mirror_page(ALICE, "http://a", [alice(3), alice(2)], 3000) == (0, 1)
    assert store.mirror_page(ALICE, "http://a", [], 3500) == (0, 0)
    assert store.mirror_page(ALICE, "http://b", [], 10) == (0, 0)
    assert (
        store.mirror_watermark(ALICE, "http://a"),
        store.mirror_watermark(ALICE, "http://b"),
    ) == (
        3500,
        10,
    )
    assert store.mirror_watermark(BOB, "http://a") is None
    assert [d["name"] for d in store.export(ALICE)] == [
        "conversation 1",
        "conversation 2",
        "conversation 3",
    ]


def test_prune_removes_only_that_users_conversations_not_kept(store: Store) -> None:
    bob = conversation(BOB)
    store.upsert([alice(1), alice(2), alice(3), bob])
    assert store.mirror_prune(ALICE, {alice(2)["id"], "not-there"}) == 2
    assert [d["id"] for d in store.export()] == [alice(2)["id"], bob["id"]]
    assert store.mirror_prune(ALICE, set()) == 1
    assert [d["id"] for d in store.export()] == [bob["id"]]

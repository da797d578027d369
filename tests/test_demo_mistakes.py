"""What a newcomer gets wrong with the demo and `ayeto import`, run as they would run it.

Each mistake is a real `ayeto` process: it must end in the exact message on stderr and the exact
exit code, never a traceback, and leave the database as it was.
"""

from __future__ import annotations

import gzip
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from ayeto.demo import DEMO_USER
from ayeto.store import ApiKey, open_store
from ayeto.transfer import HINT
from tests.processes import cli

PORT_BUSY = "error: port {busy} on 127.0.0.1 is in use; pick another with --port or AYETO_PORT"
FIELDS_REQUIRED = (
    "id: Field required; name: Field required; model: Field required; created: Field required; "
    "updated: Field required"
)
ID = "c0000000-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database as `ayeto demo` leaves it, made once and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "demo.db"
    cli("demo", "--db", f"sqlite:///{path}")
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port of 127.0.0.1 that another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@dataclass(frozen=True)
class Context:
    db: str
    busy: int
    files: Path
    demo_db: Path

    def fill(self, text: str) -> str:
        return text.format(
            db=self.db, busy=self.busy, next=self.busy + 1, files=self.files, demo_db=self.demo_db
        )


@dataclass(frozen=True)
class Mistake:
    name: str
    args: list[str]
    stderr: list[str]
    code: int = 1
    # Files to write before running, by name, and environment variables to set.
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def _jsonl(*documents: object) -> bytes:
    return b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in documents)


def _valid(id_: str = ID) -> dict[str, object]:
    return {
        "id": id_,
        "name": "n",
        "model": "m",
        "created": {"user_id": DEMO_USER, "timestamp": 1},
        "updated": {"user_id": DEMO_USER, "timestamp": 1},
    }


_MISSING_MODEL = {k: v for k, v in _valid().items() if k != "model"}
_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"

MISTAKES = [
    Mistake(
        "make demo on a busy port",
        ["serve", "--demo", "--db", "{db}", "--port", "{busy}"],
        [PORT_BUSY + " (e.g. AYETO_PORT={next} make demo)"],
    ),
    Mistake(
        "make demo on a busy port named by AYETO_PORT",
        ["serve", "--demo", "--db", "{db}"],
        [PORT_BUSY + " (e.g. AYETO_PORT={next} make demo)"],
        env={"AYETO_PORT": "{busy}"},
    ),
    Mistake(
        "serve on a busy port",
        ["serve", "--db", "{db}", "--port", "{busy}"],
        [PORT_BUSY + " (e.g. --port {next})"],
    ),
    Mistake(
        "serve on an address of another machine",
        ["serve", "--demo", "--db", "{db}", "--host", "192.0.2.1"],
        ["error: cannot listen on 192.0.2.1:8000: Cannot assign requested address"],
    ),
    Mistake(
        "import an SQLite database",
        ["import", "{demo_db}", "--db", "{db}"],
        [
            "error: the input is an SQLite database, not conversations; to copy an ayeto "
            "database, export it: ayeto export --db sqlite:///PATH | ayeto import -"
        ],
    ),
    Mistake(
        "import a compressed export",
        ["import", "{files}/export.jsonl.gz", "--db", "{db}"],
        [
            "error: the input is gzip-compressed; decompress it as you import: "
            "gunzip -c FILE | ayeto import -"
        ],
        files={"export.jsonl.gz": gzip.compress(_jsonl(_valid()))},
    ),
    Mistake(
        "import a picture",
        ["import", "{files}/picture.png", "--db", "{db}"],
        [
            "line 1: not valid UTF-8: byte 0x89 at column 1",
            "line 2: not valid JSON: expected value at column 1",
            "line 3: not valid JSON: expected value at column 1",
            f"hint: {HINT}",
            "error: 3 invalid record(s); nothing was imported",
        ],
        files={"picture.png": _PNG},
    ),
    Mistake(
        "import a CSV file",
        ["import", "{files}/conversations.csv", "--db", "{db}"],
        [
            "line 1: not valid JSON: expected value at column 1",
            "line 2: not valid JSON: expected value at column 1",
            f"hint: {HINT}",
            "error: 2 invalid record(s); nothing was imported",
        ],
        files={"conversations.csv": b"id,name\nc1,hello\n"},
    ),
    Mistake(
        "import a pretty-printed conversation with a mistake",
        ["import", "{files}/one.json", "--db", "{db}"],
        [
            f"record 1 (id {ID}): model: Field required",
            f"hint: {HINT}",
            "error: 1 invalid record(s); nothing was imported",
        ],
        files={"one.json": orjson.dumps(_MISSING_MODEL, option=orjson.OPT_INDENT_2)},
    ),
    Mistake(
        "import an array with one bad conversation",
        ["import", "{files}/array.json", "--db", "{db}"],
        [
            f"record 2 (id {ID}): model: Field required",
            "error: 1 invalid record(s); nothing was imported",
        ],
        files={
            "array.json": orjson.dumps(
                [_valid("c0000000-0000-4000-8000-000000000002"), _MISSING_MODEL],
                option=orjson.OPT_INDENT_2,
            )
        },
    ),
    Mistake(
        "import a file of another shape",
        ["import", "{files}/other.jsonl", "--db", "{db}"],
        [
            # Six faults each: the five fields it lacks, and the one it should not have.
            *(f"line {n}: {FIELDS_REQUIRED}; and 1 more" for n in range(1, 11)),
            "... and 30 more invalid records",
            f"hint: {HINT}",
            "error: 40 invalid record(s); nothing was imported",
        ],
        files={"other.jsonl": _jsonl(*[{"title": f"chat {n}"} for n in range(40)])},
    ),
    Mistake(
        "import a file that is not there",
        ["import", "{files}/missing.jsonl", "--db", "{db}"],
        ["error: cannot read '{files}/missing.jsonl': No such file or directory"],
        code=2,
    ),
]


def _state(path: Path) -> tuple[list[ApiKey], bytes]:
    """Every key and every conversation of the database."""
    store = open_store(f"sqlite:///{path}")
    try:
        return store.list_keys(), orjson.dumps(list(store.export()))
    finally:
        store.close()


@pytest.mark.parametrize("mistake", [pytest.param(m, id=m.name) for m in MISTAKES])
def test_a_mistake_ends_in_its_message_and_changes_nothing(
    mistake: Mistake,
    demo_template: Path,
    busy_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copy(demo_template, tmp_path / "demo.db")
    context = Context(f"sqlite:///{tmp_path / 'demo.db'}", busy_port, tmp_path, demo_template)
    for name, data in mistake.files.items():
        (tmp_path / name).write_bytes(data)
    for variable, value in mistake.env.items():
        monkeypatch.setenv(variable, context.fill(value))
    before = _state(demo_template)

    result = cli(*[context.fill(arg) for arg in mistake.args], check=False)

    assert (result.returncode, result.stdout) == (mistake.code, "")
    assert result.stderr.splitlines() == [context.fill(line) for line in mistake.stderr]
    assert "Traceback" not in result.stderr
    assert _state(tmp_path / "demo.db") == before


def test_make_demo_on_a_busy_port_creates_no_database(busy_port: int, tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = cli(
        "serve", "--demo", "--db", f"sqlite:///{db}", "--port", str(busy_port), check=False
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: port {busy_port} on 127.0.0.1 is in use; pick another with --port or AYETO_PORT "
        f"(e.g. AYETO_PORT={busy_port + 1} make demo)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_empty_file_imports_nothing_and_says_so(tmp_path: Path) -> None:
    # An export of an empty database is an empty file: importing it is no mistake.
    (tmp_path / "empty.jsonl").write_bytes(b"")
    db = f"sqlite:///{tmp_path / 'a.db'}"
    result = cli("import", str(tmp_path / "empty.jsonl"), "--db", db)
    assert result.stderr.splitlines() == [
        f"created a new ayeto database at {db}",
        "imported 0 conversation(s)",
    ]


def test_running_the_demo_again_replaces_its_key_and_says_how_to_reach_its_database(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    first = cli("demo", "--db", db).stdout.splitlines()
    second = cli("demo", "--db", db).stdout.splitlines()
    loaded = (
        f"Loaded 44 demo conversations: 40 for the demo user {DEMO_USER} (its key sees these) "
        "and 4 of another user (the key never sees them)."
    )
    assert first[:2] == [loaded, "The demo user's API key (shown only now; it expires in 30 days):"]
    assert second[:3] == [
        loaded,
        "Revoked 1 earlier demo key: a key is shown only once, so each run of the demo makes a "
        "new one.",
        "The demo user's API key (shown only now; it expires in 30 days):",
    ]
    assert second[-8:] == [
        "Serve it with:",
        "",
        f"  ayeto serve --db {db}",
        "",
        f"The demo database is {db}, not the default one; for other ayeto commands "
        "(ayeto keys list, ...) to use it, first run in their terminal:",
        "",
        f"  export AYETO_DATABASE_URL={db}",
        "",
    ]
    keys = orjson.loads(cli("keys", "list", "--json", "--db", db).stdout)
    assert [(k["user_id"], k["name"], k["status"]) for k in keys] == [
        (DEMO_USER, "demo", "revoked"),
        (DEMO_USER, "demo", "active"),
    ]
    assert cli("export", "--db", db).stdout.count("\n") == 44

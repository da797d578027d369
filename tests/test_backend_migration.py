"""Moving data between SQLite and PostgreSQL with `ayeto export | ayeto import -`, and then finding
it in the same order on both.

The documents are canonical (every field present, UUIDs lowercase, messages in timestamp order), so
an exact copy exports as exactly the bytes of the input, sorted by owner and id.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ayeto.query import parse_query
from ayeto.store import Store, open_store
from tests.conftest import empty_postgres
from tests.factories import conversation, img_gen, message
from tests.processes import cli

pytestmark = pytest.mark.e2e

ANN = "a1111111-1111-4111-8111-111111111111"
BEN = "b2222222-2222-4222-8222-222222222222"
CAT = "c3333333-3333-4333-8333-333333333333"
ORG = "0a000000-0000-4000-8000-0000000000ab"
IMAGE = "1f000000-0000-4000-8000-0000000000cd"
ASSISTANT_1 = "5a000000-0000-4000-8000-000000000001"
ASSISTANT_2 = "5a000000-0000-4000-8000-000000000002"


def _cid(n: int) -> str:
    return f"c0000000-0000-4000-8000-{n:012d}"


def _mid(n: int) -> str:
    return f"e0000000-0000-4000-8000-{n:012d}"


# Ann's names in code point order, as PostgreSQL's "C" collation, SQLite's BINARY and Python agree
# (a linguistic collation would put "a" before "B", fold the two spellings of é together, and
# UTF-16 order would put U+1F600 before U+FB01).
NAMES_IN_ORDER = [
    "",
    "B",
    "Z",
    "a",
    "a",  # a tie: broken by id
    "e\u0301",  # e + COMBINING ACUTE ACCENT
    "\u00e9",  # LATIN SMALL LETTER E WITH ACUTE, precomposed
    "\ufb01",  # LATIN SMALL LIGATURE FI
    "\U0001d518nicode",  # MATHEMATICAL FRAKTUR CAPITAL U (non-BMP)
    "\U0001f600",  # GRINNING FACE (non-BMP)
]
# (number, name, assistant, updated): numbers are ids, deliberately not in name order.
ANN_ROWS = [
    (7, NAMES_IN_ORDER[0], None, 1_000),
    (3, NAMES_IN_ORDER[1], ASSISTANT_2, 2_000),
    (9, NAMES_IN_ORDER[2], ASSISTANT_1, 2_000),
    (4, NAMES_IN_ORDER[3], None, 1_000),
    (1, NAMES_IN_ORDER[4], ASSISTANT_1, 3_000),
    (10, NAMES_IN_ORDER[5], None, -5),
    (2, NAMES_IN_ORDER[6], ASSISTANT_2, 2**63 - 1),
    (8, NAMES_IN_ORDER[7], ASSISTANT_1, 0),
    (6, NAMES_IN_ORDER[8], None, 3_000),
    (5, NAMES_IN_ORDER[9], ASSISTANT_2, -(2**63)),
]


def _ann(n: int, name: str, assistant: str | None, updated: int) -> dict[str, Any]:
    return conversation(
        ANN,
        id=_cid(n),
        name=name,
        assistant_id=assistant,
        summary=f"summary of {name}",
        updated={"user_id": ANN if n % 2 else BEN, "timestamp": updated},
        messages=[message(n, id=_mid(100 + n), content=name)],
    )


DOCUMENTS = [_ann(*row) for row in ANN_ROWS] + [
    # Every nullable field null, the creator included: nobody's conversation.
    conversation(
        None,
        id=_cid(20),
        name="nobody's",
        model="",
        img_gen_model="",
        updated={"user_id": None, "timestamp": 5},
        messages=[message(7, id=_mid(1), role="internal", content=None)],
    ),
    conversation(
        BEN,
        id=_cid(21),
        name="\u0645\u0631\u062d\u0628\u0627 \u2014 \u05e9\u05dc\u05d5\u05dd",
        summary="e\u0301 n\u0303 a\u030a\u0323 🧑🏽‍💻 𝄞 🇺🇳 \u200f \u2028 \t \\ \" ' <>&",
        organization_id=ORG,
        assistant_id=ASSISTANT_1,
        accessed={"user_id": BEN, "timestamp": 1_735_815_590_123},
        # Equal timestamps keep the order given, which is not the id order.
        messages=[
            message(-(2**63), id=_mid(9), role="system", content="first"),
            message(10, id=_mid(8), role="user", content="\U0001f600 two", model=None),
            message(
                10,
                id=_mid(7),
                role="assistant",
                content=None,
                reasoning_content="\u202eRTL override\u202c",
                model="gpt-4o",
                img_gen=img_gen(
                    id=IMAGE,
                    timestamp=2**63 - 1,
                    format="16:9",
                    hd=True,
                    prompt="a lighthouse \U0001f3ee at dusk, e\u0301",
                    content="ok",
                    response_id="resp_1",
                    image_url="https://example.com/a.png?x=1&y=\u00fc",
                    image_file_id=IMAGE,
                ),
            ),
            message(10, id=_mid(6), role="tool", content="", img_gen=img_gen()),
            message(2**63 - 1, id=_mid(5), role="internal", content="last"),
        ],
    ),
    conversation(CAT, id=_cid(22), name="Cat's", messages=[]),
]


def _jsonl(documents: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in documents)


# Nobody's (the empty owner) first, then by owner and id.
EXPECTED_EXPORT = _jsonl(sorted(DOCUMENTS, key=lambda d: (d["created"]["user_id"] or "", d["id"])))


@pytest.fixture
def postgres(postgres_url: str) -> str:
    return empty_postgres(postgres_url)


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    path = tmp_path / "seed.jsonl"
    path.write_bytes(_jsonl(DOCUMENTS))
    return path


def _ayeto(*args: str) -> str:
    return " ".join(shlex.quote(part) for part in (sys.executable, "-m", "ayeto", *args))


def _pipe(source: str, target: str) -> None:
    """`ayeto export --db SOURCE | ayeto import - --db TARGET`, through a real shell pipe."""
    command = f"{_ayeto('export', '--db', source)} | {_ayeto('import', '-', '--db', target)}"
    moved = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert moved.returncode == 0, moved.stderr
    count = len(DOCUMENTS)
    # A new SQLite file is created by the import, which says so; PostgreSQL's schema exists already.
    created = [f"created a new ayeto database at {target}"] if target.startswith("sqlite") else []
    # Two processes write to one stderr: the order of their lines is not theirs to choose.
    assert sorted(moved.stderr.splitlines()) == sorted(
        [f"exported {count} conversation(s)", f"imported {count} conversation(s)", *created]
    )


def _export(url: str) -> bytes:
    exported = subprocess.run(
        [sys.executable, "-m", "ayeto", "export", "--db", url],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return exported.stdout


def test_sqlite_to_postgresql_and_back_reproduces_the_data_exactly(
    postgres: str, seed: Path, tmp_path: Path
) -> None:
    sqlite = f"sqlite:///{tmp_path / 'a.db'}"
    cli("import", str(seed), "--db", sqlite)
    assert _export(sqlite) == EXPECTED_EXPORT

    _pipe(sqlite, postgres)
    assert _export(postgres) == EXPECTED_EXPORT

    back = f"sqlite:///{tmp_path / 'b.db'}"
    _pipe(postgres, back)
    assert _export(back) == EXPECTED_EXPORT


def test_postgresql_to_sqlite_reproduces_the_data_exactly(
    postgres: str, seed: Path, tmp_path: Path
) -> None:
    cli("import", str(seed), "--db", postgres)
    assert _export(postgres) == EXPECTED_EXPORT

    sqlite = f"sqlite:///{tmp_path / 'a.db'}"
    _pipe(postgres, sqlite)
    assert _export(sqlite) == EXPECTED_EXPORT


# -- the same answers from both backends ----------------------------------------------------------


@pytest.fixture
def both(postgres: str, seed: Path, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """The seed in SQLite, moved to PostgreSQL by `export | import`; a store open on each."""
    sqlite = f"sqlite:///{tmp_path / 'a.db'}"
    cli("import", str(seed), "--db", sqlite)
    _pipe(sqlite, postgres)
    stores = open_store(sqlite), open_store(postgres)
    yield stores
    for store in stores:
        store.close()


def _ascending(key: str) -> list[str]:
    """Ann's ids ordered by `key` ascending: nulls lowest, code point order, ties by id."""
    column = {"name": 1, "assistant_id": 2, "updated.timestamp": 3}[key]

    def order(row: tuple[Any, ...]) -> tuple[bool, Any, str]:
        value = row[column]
        return value is not None, value if value is not None else 0, _cid(row[0])

    return [_cid(row[0]) for row in sorted(ANN_ROWS, key=order)]


BY_NAME = [_cid(n) for n in (7, 3, 9, 1, 4, 10, 2, 8, 6, 5)]
BY_ASSISTANT = [_cid(n) for n in (4, 6, 7, 10, 1, 8, 9, 2, 3, 5)]
BY_UPDATED = [_cid(n) for n in (5, 10, 8, 4, 7, 3, 9, 1, 6, 2)]

CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"sort_key": "name"}, BY_NAME),
    ({"sort_key": "name", "sort_order": 1}, BY_NAME[::-1]),
    ({"sort_key": "assistant_id"}, BY_ASSISTANT),
    ({"sort_key": "assistant_id", "sort_order": 1}, BY_ASSISTANT[::-1]),
    ({"sort_key": "updated.timestamp"}, BY_UPDATED),
    ({"sort_key": "updated.timestamp", "sort_order": 1}, BY_UPDATED[::-1]),
    ({}, BY_UPDATED[::-1]),  # the default: newest first
    ({"sort_key": "name", "limit_from": 2, "limit_to": 6}, BY_NAME[2:6]),
    ({"sort_key": "assistant_id", "filters": [["assistant_id", "!=", ASSISTANT_1]]},
     [i for i in BY_ASSISTANT if i not in {_cid(1), _cid(8), _cid(9)}]),
    ({"sort_key": "name", "filters": [["name", ">=", "a"], ["name", "<", "\U0001f600"]]},
     BY_NAME[3:9]),
]  # fmt: skip


def test_the_expected_orders_follow_the_rules() -> None:
    """The orders above, written out by hand, are the ones the rules give."""
    assert _ascending("name") == BY_NAME
    assert _ascending("assistant_id") == BY_ASSISTANT
    assert _ascending("updated.timestamp") == BY_UPDATED
    names = {_cid(n): name for n, name, _, _ in ANN_ROWS}
    assert [names[i] for i in BY_NAME] == NAMES_IN_ORDER == sorted(NAMES_IN_ORDER)


@pytest.mark.parametrize(("body", "expected"), CASES)
def test_find_answers_alike_on_both_backends(
    both: tuple[Store, Store], body: dict[str, Any], expected: list[str]
) -> None:
    answers = [
        orjson.dumps([d for batch in store.find(ANN, parse_query(body)) for d in batch])
        for store in both
    ]
    sqlite, postgres = answers
    assert [d["id"] for d in orjson.loads(sqlite)] == expected
    assert postgres == sqlite

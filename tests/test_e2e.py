"""The README's tour, the API description's own example requests, replayed against a real server.

Data and keys are provisioned only through the CLI (`ayeto import`, `ayeto keys create`). Each
example runs as the README prints it, through bash and curl, with only `$B` and `$AYETO_KEY` set;
the README's commands are checked to be the API description's examples (`tests/data`), request
for request.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest

from ayeto.api.openapi import SAMPLE
from ayeto.clock import now_ms
from tests.conftest import empty_postgres
from tests.processes import Server, cli, new_key, serving

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SPEC_EXAMPLES = orjson.loads((ROOT / "tests" / "data" / "spec_examples.json").read_bytes())[
    "examples"
]
README = (ROOT / "README.md").read_text(encoding="utf-8")

ALICE = "880e8400-e29b-41d4-a716-446655440003"  # the user of the spec's sample response
BOB = "990e8400-e29b-41d4-a716-446655440004"
ASSISTANT = "123e4567-e89b-12d3-a456-426614174000"  # the assistant of example 6
SAMPLE_ID = "550e8400-e29b-41d4-a716-446655440000"  # examples 9 and 10


def _sample() -> dict[str, Any]:
    """The spec's own sample response document, field for field (the API's examples show it)."""
    return copy.deepcopy(SAMPLE)


def _cid(n: int) -> str:
    return f"a0000000-0000-4000-8000-{n:012d}"


# (number, name, model, assistant, created) — conversation n was updated at 1735900000000 + n, so
# the default order (updated.timestamp, newest first) is 11, 10, ..., 1, then the spec's sample.
_ALICE_ROWS = [
    (1, "Python decorators", "gpt-4o", None, 1735700000000),
    (2, "Trip to Lisbon", "gpt-4o-mini", ASSISTANT, 1735700000000),
    (3, "Sourdough starter", "gpt-4o", None, 1735600000000),
    (4, "python venv help", "o1", None, 1735700000000),
    (5, "Cover letter", "gpt-4o", ASSISTANT, 1735800000000),
    (6, "Why is Python slow?", "gpt-4o-mini", None, 1735500000000),
    (7, "Tax questions", "gpt-4o", None, 1735800000000),
    (8, "Poem about autumn", "claude-3-5-sonnet", ASSISTANT, 1735800000000),
    (9, "SQL joins", "gpt-4o", None, 1735689600000),
    (10, "Garden planning", "gpt-4o-mini", None, 1735800000000),
    (11, "Rust vs Python", "gpt-4o", None, 1735800000000),
]


def _conversation(
    id_: str, owner: str, name: str, model: str, assistant: str | None, created: int, updated: int
) -> dict[str, Any]:
    return {
        "id": id_,
        "name": name,
        "model": model,
        "img_gen_model": "",
        "summary": "",
        "organization_id": None,
        "assistant_id": assistant,
        "messages": [
            {
                "id": id_[:-4] + "ffff",
                "timestamp": created,
                "role": "user",
                "content": f"About {name}",
                "reasoning_content": None,
                "model": None,
                "img_gen": None,
            }
        ],
        "created": {"user_id": owner, "timestamp": created},
        "updated": {"user_id": owner, "timestamp": updated},
        "accessed": {"user_id": None, "timestamp": 0},
    }


ALICE_DOCUMENTS = [
    _conversation(_cid(n), ALICE, name, model, assistant, created, 1735900000000 + n)
    for n, name, model, assistant, created in _ALICE_ROWS
] + [_sample()]
BOB_DOCUMENTS = [
    _conversation(
        "b0000000-0000-4000-8000-000000000001",
        BOB,
        "Python for Bob",
        "gpt-4o",
        ASSISTANT,
        1735800000000,
        1736000000000,
    ),
    _conversation(
        "b0000000-0000-4000-8000-000000000002",
        BOB,
        "My conversation",
        "gpt-4o",
        None,
        1735815580000,
        1735815582000,
    ),
]

NEWEST_FIRST = [_cid(n) for n in range(11, 0, -1)] + [SAMPLE_ID]

# What each example must answer, as ids in order (example 9 and 10 are checked on their own).
EXPECTED_IDS: dict[int, list[str]] = {
    1: NEWEST_FIRST,
    2: NEWEST_FIRST,
    3: NEWEST_FIRST[:10],
    4: [_cid(n) for n in (11, 9, 7, 5, 3, 1)] + [SAMPLE_ID],
    5: [_cid(n) for n in (11, 6, 1)],
    6: [_cid(n) for n in (8, 5, 2)],
    7: [_cid(n) for n in (11, 10, 8, 7, 5, 4, 2, 1)] + [SAMPLE_ID],
    8: [_cid(n) for n in (11, 7, 5, 1)] + [SAMPLE_ID],
    11: NEWEST_FIRST[:5],
}


def tour_commands() -> dict[int, str]:
    """The README tour's numbered curl commands, as shell commands."""
    block = re.search(r"^## A quick tour\n.*?^```sh\n(.*?)^```", README, re.M | re.S)
    assert block is not None
    found = re.findall(r"^# (\d+)\. [^\n]*\n(curl .*?)(?=\n\n|\Z)", block[1], re.M | re.S)
    return {int(number): command.strip() for number, command in found}


def _request(command: str) -> dict[str, Any]:
    """What a curl command sends: method, path, query, JSON body, and whether it is verbose."""
    words = shlex.split(command.replace("\\\n", " "))
    url = urlsplit(next(word for word in words if word.startswith("$B")).replace("$B", ""))
    body = words[words.index("-d") + 1] if "-d" in words else None
    return {
        "method": words[words.index("-X") + 1],
        "path": "/api/v3/conversation" + url.path,
        "query": dict(parse_qsl(url.query)),
        "body": None if body is None else orjson.loads(body),
        "verbose": "-v" in words,
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("e2e") / "conversations.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE)
            for d in ALICE_DOCUMENTS + BOB_DOCUMENTS
        )
    )
    return path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, dataset: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{dataset.parent / 'ayeto.db'}"
    else:
        url = empty_postgres(request.getfixturevalue("postgres_url"))
    cli("import", str(dataset), "--db", url)
    return url


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[Server]:
    with serving(database_url) as running:
        yield running


@pytest.fixture(scope="module")
def alice_key(database_url: str) -> str:
    return new_key(database_url, ALICE, "--name", "alice")


@pytest.fixture(scope="module")
def bob_key(database_url: str) -> str:
    return new_key(database_url, BOB, "--name", "bob")


def run_example(number: int, server: Server, key: str) -> subprocess.CompletedProcess[str]:
    """The README's command `number`, pasted into bash with `$B` and `$AYETO_KEY` set."""
    return subprocess.run(
        ["bash", "-c", tour_commands()[number] + " --silent --show-error"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=os.environ | {"B": f"{server.base_url}/api/v3/conversation", "AYETO_KEY": key},
    )


def test_the_tour_sends_the_eleven_example_requests() -> None:
    commands = tour_commands()
    assert (
        sorted(commands) == [example["number"] for example in SPEC_EXAMPLES] == list(range(1, 12))
    )
    for example in SPEC_EXAMPLES:
        expected = {key: example[key] for key in ("method", "path", "query", "body", "verbose")}
        assert _request(commands[example["number"]]) == expected, example["title"]


@pytest.mark.parametrize("number", sorted(EXPECTED_IDS))
def test_find_examples(number: int, server: Server, alice_key: str) -> None:
    answer = orjson.loads(run_example(number, server, alice_key).stdout)
    assert [conversation["id"] for conversation in answer] == EXPECTED_IDS[number]
    by_id = {document["id"]: document for document in ALICE_DOCUMENTS}
    assert answer == [by_id[conversation["id"]] for conversation in answer]


def test_example_11_is_verbose(server: Server, alice_key: str) -> None:
    verbose = run_example(11, server, alice_key).stderr
    assert "< HTTP/1.1 200 OK" in verbose
    assert "< content-type: application/json" in verbose


def test_example_9_gets_the_sample_and_records_the_access(server: Server, alice_key: str) -> None:
    before = now_ms()
    answer = orjson.loads(run_example(9, server, alice_key).stdout)
    after = now_ms()
    accessed = answer.pop("accessed")
    expected = _sample()
    del expected["accessed"]
    assert answer == expected
    assert accessed["user_id"] == ALICE
    assert before <= accessed["timestamp"] <= after


def test_example_10_deletes_the_sample(
    server: Server, alice_key: str, database_url: str, dataset: Path
) -> None:
    try:
        assert run_example(10, server, alice_key).stdout == f'"{SAMPLE_ID}"'
        again = run_example(10, server, alice_key).stdout
        assert orjson.loads(again) == {"detail": f"not found, id: {SAMPLE_ID}"}
        found = httpx.post(
            f"{server.base_url}/api/v3/conversation/find", headers={"uni-api-key": alice_key}
        )
        assert [c["id"] for c in found.json()] == NEWEST_FIRST[:-1]
    finally:
        cli("import", str(dataset), "--db", database_url)  # the other examples expect the sample


def test_another_user_sees_only_their_own(server: Server, bob_key: str) -> None:
    find = f"{server.base_url}/api/v3/conversation/find"
    headers = {"uni-api-key": bob_key}
    every_way = [
        {},
        {"filters": [["created.user_id", "==", ALICE]]},
        {"filters": [["created.user_id", "!=", BOB]]},
        {"filters": [["name", "regex", ".*"]]},
        {"filters": [["id", "==", SAMPLE_ID]]},
    ]
    answers = [httpx.post(find, headers=headers, json=body).json() for body in every_way]
    assert [[c["id"] for c in answer] for answer in answers] == [
        ["b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"],
        [],
        [],
        ["b0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"],
        [],
    ]
    for action in ("get", "delete"):
        response = httpx.post(
            f"{server.base_url}/api/v3/conversation/{action}",
            params={"entity_id": SAMPLE_ID},
            headers=headers,
        )
        assert response.status_code == 403
        assert response.json() == {"detail": f"conversation {SAMPLE_ID} belongs to another user"}


def test_a_revoked_key_stops_working_at_once(server: Server, database_url: str) -> None:
    key = new_key(database_url, ALICE)
    find = f"{server.base_url}/api/v3/conversation/find"
    assert httpx.post(find, headers={"uni-api-key": key}).status_code == 200
    cli("keys", "revoke", key, "--db", database_url)
    refused = httpx.post(find, headers={"uni-api-key": key})
    assert (refused.status_code, refused.json()) == (401, {"detail": "API key is invalid"})


def test_the_demo_prints_a_curl_command_that_works_when_pasted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with serving(url, "--demo") as server:
        # The demo prints before the server starts, so it is all there once it answers.
        output = server.output()
        assert "or, without the variable:" in output, output
        printed = output[: output.index("or, without the variable:")].splitlines(keepends=True)
        port = server.base_url.rsplit(":", 1)[1]
        # After the note that the database is new (on stderr, which `serving` joins to stdout).
        loaded = next(n for n, line in enumerate(printed) if line.startswith("Loaded "))
        assert printed[loaded : loaded + 2] == [
            "Loaded 44 demo conversations: 40 for the demo user "
            "880e8400-e29b-41d4-a716-446655440003 (its key sees these) and 4 of another user "
            "(the key never sees them).\n",
            "The demo user's API key (shown only now; it expires in 30 days):\n",
        ]
        export = next(
            line.strip() for line in printed if line.strip().startswith("export AYETO_KEY=")
        )
        curl = "".join(printed[printed.index("Then try:\n") + 2 :]).strip()
        assert f"http://127.0.0.1:{port}/api/v3/conversation/find" in curl
        pasted = subprocess.run(
            ["bash", "-c", f"{export}\n{curl} --silent --show-error"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    answer = orjson.loads(pasted.stdout)
    updated = [conversation["updated"]["timestamp"] for conversation in answer]
    assert len(answer) == 3
    assert updated == sorted(updated, reverse=True)

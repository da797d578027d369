"""A third party's client, generated from the served `/openapi.json`, works as the API documents.

openapi-python-client generates the package `ayeto_client` from a real `ayeto serve`; a program
that uses nothing else (tests/data/generated_client_script.py) must pass `mypy --strict` and get
the exact answers from that server.

The generator pins httpx and typer below the versions ayeto runs on, so it lives in a virtualenv
of its own, made once and kept in pytest's cache (about 20 s to make).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from ayeto.api.errors import WWW_AUTHENTICATE
from ayeto.api.openapi import SAMPLE, SAMPLE_ID
from ayeto.auth import create_key
from ayeto.store import open_store
from tests.factories import BOB, conversation
from tests.processes import serving

pytestmark = pytest.mark.e2e

GENERATOR = "openapi-python-client>=0.29.1,<0.30"
SCRIPT = Path(__file__).parent / "data" / "generated_client_script.py"
USER = SAMPLE["created"]["user_id"]
# Created before 2025-01-01 (so the typed filter leaves it out), updated last (so it comes first).
ALPHA = conversation(
    USER,
    name="Alpha",
    model="o1",
    created={"user_id": USER, "timestamp": 1_735_689_500_000},
    updated={"user_id": USER, "timestamp": 1_735_900_000_000},
)
BETA = conversation(
    USER,
    name="Beta",
    created={"user_id": USER, "timestamp": 1_735_700_000_000},
    updated={"user_id": USER, "timestamp": 1_735_800_000_000},
)


@pytest.fixture(scope="module")
def generator(request: pytest.FixtureRequest) -> Path:
    """The Python of a virtualenv holding the generator (and so the client's own dependencies)."""
    home = request.config.cache.mkdir("openapi-python-client")
    python = home / "bin" / "python"
    installed = home / "installed"
    if not installed.exists() or installed.read_text() != GENERATOR:
        venv.EnvBuilder(clear=True, with_pip=True).create(home)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", GENERATOR],
            check=True,
            capture_output=True,
            timeout=600,
        )
        installed.write_text(GENERATOR)
    return python


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real server with three conversations of the sample's user and one of another: its URL
    and the user's key."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('client') / 'ayeto.db'}"
    store = open_store(database_url)
    store.upsert([SAMPLE, ALPHA, BETA, conversation(BOB)])
    key, _ = create_key(store, USER)
    store.close()
    with serving(database_url) as running:
        yield running.base_url, key


@pytest.fixture(scope="module")
def client_package(
    generator: Path, server: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The generated package `ayeto_client`, in a directory of its own."""
    home = tmp_path_factory.mktemp("generated")
    config = home / "config.json"
    config.write_text('{"package_name_override": "ayeto_client"}')
    result = subprocess.run(
        [
            str(generator),
            "-m",
            "openapi_python_client",
            "generate",
            "--url",
            f"{server[0]}/openapi.json",
            "--meta",
            "none",
            "--output-path",
            str(home / "ayeto_client"),
            "--config",
            str(config),
        ],
        cwd=home,
        # The generator formats what it writes with the ruff of its own virtualenv.
        env=os.environ | {"PATH": f"{generator.parent}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    # No warning: every schema of the document became code.
    package = home / "ayeto_client"
    assert (result.returncode, result.stdout, result.stderr) == (0, f"Generating {package}\n", "")
    return package


def test_the_generated_package_has_one_module_per_operation_and_named_schema(
    client_package: Path,
) -> None:
    assert sorted(p.name for p in (client_package / "api" / "conversation").glob("*.py")) == [
        "__init__.py",
        "delete_conversation.py",
        "find_conversations.py",
        "get_conversation.py",
    ]
    assert sorted(p.name for p in (client_package / "models").glob("*.py")) == [
        "__init__.py",
        "basic_llm_message_view.py",
        "basic_llm_message_view_role.py",
        "db_params.py",
        "error_body.py",
        "filter_field.py",
        "filter_operator.py",
        "img_gen_message.py",
        "model_meta.py",
        "public_conversation_view.py",
        "sort_key.py",
        "sort_order.py",
    ]


@pytest.mark.parametrize(
    ("module", "lines"),
    [
        (
            "filter_operator",
            [
                "class FilterOperator(StrEnum):",
                '    EQ = "=="',
                '    GE = ">="',
                '    GT = ">"',
                '    LE = "<="',
                '    LT = "<"',
                '    NE = "!="',
                '    REGEX = "regex"',
            ],
        ),
        ("sort_order", ["class SortOrder(IntEnum):", "    ASC = 0", "    DESC = 1"]),
        (
            "filter_field",
            ['    CREATED_TIMESTAMP = "created.timestamp"', '    MESSAGES_ID = "messages.id"'],
        ),
        ("sort_key", ['    UPDATED_TIMESTAMP = "updated.timestamp"']),
    ],
)
def test_generated_enums_read_as_the_api_does(
    client_package: Path, module: str, lines: list[str]
) -> None:
    source = (client_package / "models" / f"{module}.py").read_text().splitlines()
    assert [line for line in source if line in lines] == lines


def test_a_program_using_only_the_generated_client_type_checks_strictly(
    generator: Path, client_package: Path
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            # The generated package is its authors' code: only the program is checked.
            "--follow-imports=silent",
            "--python-executable",
            str(generator),
            "--cache-dir",
            str(client_package.parent / ".mypy_cache"),
            str(SCRIPT),
        ],
        # Away from the project's own mypy settings.
        cwd=client_package.parent,
        env=os.environ | {"MYPYPATH": str(client_package.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (result.returncode, result.stdout) == (
        0,
        "Success: no issues found in 1 source file\n",
    )


def test_a_program_using_only_the_generated_client_gets_the_documented_answers(
    generator: Path, client_package: Path, server: tuple[str, str]
) -> None:
    base_url, key = server
    result = subprocess.run(
        [str(generator), str(SCRIPT), base_url, key],
        env=os.environ | {"PYTHONPATH": str(client_package.parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"find: {ALPHA['id']} {SAMPLE_ID} {BETA['id']}",
        f"find typed: {BETA['id']} {SAMPLE_ID}",
        f"get: {SAMPLE_ID} My conversation {USER}",
        f"delete: {SAMPLE_ID}",
        f"get again: 404 not found, id: {SAMPLE_ID}",
        f"wrong key: 401 API key is invalid {WWW_AUTHENTICATE}",
    ]
    assert result.returncode == 0

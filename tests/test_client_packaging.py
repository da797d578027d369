"""The client stands alone: it imports nothing of the server, and `pip install ayeto` (without
the `server` extra) gives a working client and no server dependency."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_client_docs import readme_shell_blocks

ROOT = Path(__file__).resolve().parents[1]
# The server's modules and distributions, none of which a client user needs.
SERVER_MODULES = {
    "alembic",
    "asgi_correlation_id",
    "ayeto.api",
    "ayeto.cli",
    "ayeto.query",
    "ayeto.store",
    "fastapi",
    "fastapi_offline",
    "limits",
    "orjson",
    "prometheus_client",
    "psycopg",
    "re2",
    "sqlalchemy",
    "starlette",
    "typer",
    "uvicorn",
}
SERVER_DISTRIBUTIONS = {
    "alembic",
    "asgi-correlation-id",
    "fastapi",
    "fastapi-offline",
    "google-re2",
    "limits",
    "orjson",
    "prometheus-client",
    "psycopg",
    "rich",
    "sqlalchemy",
    "starlette",
    "typer",
    "uvicorn",
}


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, check=False
    )


def test_importing_the_client_imports_nothing_of_the_server() -> None:
    result = run(
        sys.executable,
        "-c",
        "import json, sys, ayeto.client; print(json.dumps(sorted(sys.modules)))",
    )
    assert result.returncode == 0, result.stderr
    assert SERVER_MODULES & set(json.loads(result.stdout)) == set()


def test_pip_install_without_the_server_extra(tmp_path: Path) -> None:
    """The README's install command, in a new virtualenv."""
    [install, _] = readme_shell_blocks()
    command = install.splitlines()[0].split("#")[0].split()
    assert command == ["pip", "install", "."]
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [python, "-m", *command, "--quiet", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert installed.returncode == 0, installed.stderr

    listed = run(python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check")
    distributions = {item["name"].lower() for item in json.loads(listed.stdout)}
    assert {"ayeto", "httpx", "pydantic"} <= distributions
    assert distributions & SERVER_DISTRIBUTIONS == set()

    client = run(
        python,
        "-c",
        "from ayeto.client import Client, F; "
        "print(Client(api_key='k', base_url='http://x/').base_url, tuple(F.model == 'gpt-4o'))",
    )
    assert (client.returncode, client.stdout) == (
        0,
        "http://x ('model', '==', 'gpt-4o')\n",
    )

    ayeto = run(venv / "bin" / "ayeto", "--version")
    assert (ayeto.returncode, ayeto.stdout, ayeto.stderr) == (
        2,
        "",
        "error: the ayeto command needs the server's dependencies (typer is missing): "
        "pip install 'ayeto[server]'\n",
    )

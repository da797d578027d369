"""The client's documentation runs: every Python block of the README's "Python client" section
and of docs/client.md, in order, against a real server holding the demo's data. A block followed
by a `text` block must print exactly that."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import ayeto.client
from ayeto.clock import now_ms
from ayeto.demo import load_demo
from ayeto.store import open_store
from tests.processes import serving

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = (ROOT / "docs" / "client.md").read_text(encoding="utf-8")
_BLOCK = re.compile(r"^```python\n(.*?)^```\n(?:\n```text\n(.*?)^```\n)?", re.M | re.S)


def readme_section() -> str:
    match = re.search(r"^## Python client\n(.*?)^## ", README, re.M | re.S)
    assert match is not None
    return match.group(1)


def blocks(text: str) -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]


@pytest.fixture
def demo_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server on the demo's data; the demo key and the server in the client's variables."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    store = open_store(url)
    try:
        key = load_demo(store, now_ms()).key
    finally:
        store.close()
    with serving(url) as server:
        monkeypatch.setenv("AYETO_API_KEY", key)
        monkeypatch.setenv("AYETO_BASE_URL", server.base_url)
        monkeypatch.setenv("AYETO_KEY", key)
        yield server.base_url


@pytest.mark.parametrize("document", ["README.md", "docs/client.md"])
def test_every_block_runs_and_prints_what_it_shows(document: str, demo_server: str) -> None:
    text = readme_section() if document == "README.md" else GUIDE
    found = blocks(text)
    assert len(found) >= 4
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, (code, shown) in enumerate(found, 1):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{document} block {number}", "exec"), namespace)  # noqa: S102
        if shown is not None:
            assert printed.getvalue() == shown, f"{document} block {number}"


def readme_shell_blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", readme_section(), re.M | re.S)


def test_the_readme_exports_what_the_client_reads() -> None:
    [_, export] = readme_shell_blocks()
    result = subprocess.run(
        ["bash", "-c", export + 'echo "$AYETO_API_KEY $AYETO_BASE_URL"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "AYETO_KEY": "ayeto-" + "0" * 64},
    )
    assert result.stdout == "ayeto-" + "0" * 64 + " http://127.0.0.1:8000\n"


@pytest.mark.parametrize("name", ayeto.client.__all__)
def test_every_exported_name_is_documented(name: str) -> None:
    assert f"`{name}`" in GUIDE

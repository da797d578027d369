from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ayeto.store import Store, open_store


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh, empty database for one test."""
    return f"sqlite:///{tmp_path / 'ayeto.db'}"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = open_store(database_url)
    yield opened
    opened.close()

"""The application as `ayeto serve` builds it in each worker (`app_from_env`)."""

from __future__ import annotations

import gc

import pytest

from ayeto.api.app import app_from_env


def test_what_start_up_made_is_kept_out_of_the_collectors_passes(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AYETO_DATABASE_URL", sqlite_url)
    app = app_from_env()
    try:
        # Frozen objects are in no generation the collector walks; all else made since is.
        made_after: list[object] = []
        tracked = gc.get_objects()
        assert not any(o is app for o in tracked)
        assert not any(o is app.state.services for o in tracked)
        assert any(o is made_after for o in tracked)
    finally:
        gc.unfreeze()
        app.state.services.store.close()

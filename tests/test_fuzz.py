"""Schemathesis, with every check, drives a real `ayeto serve` from the server's own document.

Requests valid by `/openapi.json` must be accepted and invalid ones refused; every answer must be
one the document declares, with the declared headers, content type and schema. The server holds
the spec's sample conversation and others of the key's user and of another user, so `get` and
`delete` reach their logic (tests/fuzz_hooks.py says how; tests/schemathesis.toml how long).
A run sends one invalid key (to check that auth is enforced), well under the ten failures a minute
the server forgives before it slows a client down, so the server runs with its usual settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ayeto.api.openapi import SAMPLE, SAMPLE_ID
from ayeto.auth import create_key
from ayeto.store import open_store
from tests.factories import BOB, conversation, message
from tests.fuzz_hooks import ENTITY_IDS_VARIABLE
from tests.processes import serving

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "schemathesis.toml"
USER = SAMPLE["created"]["user_id"]


def test_the_server_does_what_its_document_says(database_url: str, tmp_path: Path) -> None:
    mine = [conversation(USER, messages=[message()]) for _ in range(16)]
    others = [conversation(BOB, messages=[message()]) for _ in range(2)]
    store = open_store(database_url)
    store.upsert([SAMPLE, *mine, *others])
    key, _ = create_key(store, USER)
    store.close()
    entity_ids = {
        "get": [SAMPLE_ID, *(c["id"] for c in mine[:4]), *(c["id"] for c in others)],
        "delete": [*(c["id"] for c in mine[4:]), *(c["id"] for c in others)],
    }

    with serving(database_url) as server:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(CONFIG),
                "--no-color",
                "run",
                f"{server.base_url}/openapi.json",
                "--checks",
                "all",
                "--header",
                f"uni-api-key: {key}",
            ],
            # Elsewhere than the work tree, which Schemathesis would leave files in.
            cwd=tmp_path,
            env=os.environ | {"PYTHONPATH": str(ROOT), ENTITY_IDS_VARIABLE: json.dumps(entity_ids)},
            capture_output=True,
            text=True,
            timeout=600,
        )

    assert result.returncode == 0, result.stdout + result.stderr

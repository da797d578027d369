"""The three endpoints answer the same whether called directly (`routes.Direct`) or through the
framework's routing and exception handlers: status, body and every header field but the
request's id, for good requests and bad ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.testclient import TestClient

from ayeto.api import create_app
from ayeto.api.tracing import Tracing
from ayeto.auth import create_key
from ayeto.store import Store, open_store
from tests.factories import ALICE, BOB, conversation

BASE = "/api/v3/conversation"
UNKNOWN = "deadbeef-dead-4bee-8fee-deadbeefcafe"
Answer = tuple[int, bytes, list[tuple[str, str]]]


def through_the_framework(store: Store) -> FastAPI:
    """The app with its endpoints reached through the framework's router, as without `Direct`."""
    app = create_app(store)
    app.layers = Tracing(app.framework, app.state.services.metrics)
    return app


def answers(url: str, make: Callable[[Store], FastAPI], documents: list[Any]) -> list[Answer]:
    """What an app over a fresh database holding `documents` answers to a fixed sequence of
    requests, each as (status, body, header fields but `x-request-id`)."""
    store = open_store(url)
    store.upsert(documents)
    key, _ = create_key(store, ALICE)
    alice = {"uni-api-key": key}
    mine, theirs = documents[0]["id"], documents[1]["id"]
    with TestClient(make(store), raise_server_exceptions=False) as client:
        sent = [
            client.post(f"{BASE}/find", headers=alice, json={"limit_to": 5}),
            client.post(f"{BASE}/find", headers=alice),
            client.post(f"{BASE}/find", headers=alice, content=b"{not json"),
            client.post(f"{BASE}/find", headers=alice, json={"sort_key": "nope"}),
            client.post(f"{BASE}/find", headers={"uni-api-key": "ayeto-" + "0" * 64}),
            client.post(f"{BASE}/find"),
            client.post(f"{BASE}/get", headers=alice, params={"entity_id": UNKNOWN}),
            client.post(f"{BASE}/get", headers=alice, params={"entity_id": "not-a-uuid"}),
            client.post(f"{BASE}/get", headers=alice),
            client.post(f"{BASE}/get", headers=alice, params={"entity_id": theirs}),
            client.post(f"{BASE}/delete", headers=alice, params={"entity_id": mine}),
            client.post(f"{BASE}/delete", headers=alice, params={"entity_id": mine}),
            client.get(f"{BASE}/find", headers=alice),
            client.post(f"{BASE}/find/", headers=alice),
        ]
    store.close()
    return [_comparable(response) for response in sent]


def _comparable(response: httpx.Response) -> Answer:
    head = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    assert len(response.headers.get_list("x-request-id")) == 1
    return response.status_code, response.content, head


def test_direct_and_framework_answer_alike(tmp_path: Path) -> None:
    documents = [conversation(ALICE), conversation(BOB)]
    direct = answers(f"sqlite:///{tmp_path / 'direct.db'}", create_app, documents)
    framework = answers(f"sqlite:///{tmp_path / 'framework.db'}", through_the_framework, documents)
    statuses = [200, 200, 400, 400, 401, 401, 404, 400, 400, 403, 200, 404, 405, 404]
    assert [status for status, _, _ in direct] == statuses
    assert direct == framework

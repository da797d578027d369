"""Documents in the API's `PublicConversationView` shape, for tests to store and compare."""

from __future__ import annotations

import uuid
from typing import Any

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"


def new_id() -> str:
    return str(uuid.uuid4())


def img_gen(**fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": None,
        "timestamp": None,
        "model": "dall-e-3",
        "format": "1024x1024",
        "hd": False,
        "prompt": "a lighthouse at dusk",
        "content": "",
        "response_id": "",
        "image_url": "",
        "image_file_id": None,
    }
    return document | fields


def message(timestamp: int = 1_735_815_581_000, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": new_id(),
        "timestamp": timestamp,
        "role": "user",
        "content": "Hi, how do I write a function in Python?",
        "reasoning_content": None,
        "model": None,
        "img_gen": None,
    }
    return document | fields


def conversation(owner: str | None = ALICE, **fields: Any) -> dict[str, Any]:
    """A complete document owned by `owner`; `fields` replace top-level fields."""
    document: dict[str, Any] = {
        "id": new_id(),
        "name": "My conversation",
        "model": "gpt-4o",
        "img_gen_model": "dall-e-3",
        "summary": "",
        "organization_id": None,
        "assistant_id": None,
        "messages": [],
        "created": {"user_id": owner, "timestamp": 1_735_815_580_000},
        "updated": {"user_id": owner, "timestamp": 1_735_815_582_000},
        "accessed": {"user_id": None, "timestamp": 0},
    }
    return document | fields

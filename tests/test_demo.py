"""The demo data: valid documents, deterministic, and enough for every curl example of the spec."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ayeto.demo import (
    DEMO_USER,
    OTHER_USER,
    OTHER_USER_COUNT,
    SPEC_ASSISTANT,
    SPEC_CONVERSATION,
    SPEC_SINCE,
    demo_conversations,
)
from ayeto.errors import Forbidden, NotFound
from ayeto.models import PublicConversationView
from ayeto.query import parse_query
from ayeto.store import Store

NOW = 1_760_000_000_000  # 2025-10-09T08:53:20Z
DAY = 24 * 3600 * 1000
MODELS = {"gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "o1"}

Document = dict[str, Any]


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return demo_conversations(DEMO_USER, now_ms=NOW)


def ids(found: list[Document]) -> list[str]:
    return [d["id"] for d in found]


def find(store: Store, owner: str, body: object) -> list[Document]:
    return [d for batch in store.find(owner, parse_query(body)) for d in batch]


def newest_first(documents: list[Document]) -> list[Document]:
    return sorted(documents, key=lambda d: (d["updated"]["timestamp"], d["id"]), reverse=True)


def test_every_document_is_a_complete_public_conversation_view(documents: list[Document]) -> None:
    for document in documents:
        # A round trip through the model gives back the same dict: every field, nothing more.
        assert PublicConversationView.model_validate(document).model_dump(mode="json") == document


def test_same_seed_gives_the_same_data_and_another_seed_other_data(
    documents: list[Document],
) -> None:
    assert demo_conversations(DEMO_USER, now_ms=NOW) == documents
    assert demo_conversations(DEMO_USER, now_ms=NOW, seed=8) != documents


def test_owners_and_counts(documents: list[Document]) -> None:
    owners = [d["created"]["user_id"] for d in documents]
    assert owners == [DEMO_USER] * 40 + [OTHER_USER] * OTHER_USER_COUNT
    assert len(demo_conversations(DEMO_USER, now_ms=NOW, count=3)) == 3 + OTHER_USER_COUNT
    assert len({d["id"] for d in documents}) == len(documents)
    messages = [m["id"] for d in documents for m in d["messages"]]
    assert len(set(messages)) == len(messages)


def test_too_few_conversations_for_the_examples_is_refused() -> None:
    with pytest.raises(ValueError, match="count must be at least 3"):
        demo_conversations(DEMO_USER, now_ms=NOW, count=2)


def test_timestamps_are_consistent(documents: list[Document]) -> None:
    for document in documents:
        created, updated = document["created"], document["updated"]
        stamps = [m["timestamp"] for m in document["messages"]]
        assert NOW - 60 * DAY <= created["timestamp"] <= stamps[0] <= NOW
        assert stamps == sorted(stamps)
        assert updated == {"user_id": created["user_id"], "timestamp": stamps[-1]}
        assert document["accessed"] == {"user_id": None, "timestamp": 0}


def test_messages_alternate_after_an_optional_system_prompt(documents: list[Document]) -> None:
    for document in documents:
        roles = [m["role"] for m in document["messages"]]
        if roles[0] == "system":
            roles = roles[1:]
        assert 2 <= len(document["messages"]) <= 12
        assert roles == ["user", "assistant"] * (len(roles) // 2)
        for message in document["messages"]:
            if message["role"] == "assistant":
                assert message["model"] == document["model"]
                reasoning = message["reasoning_content"]
                assert (reasoning is not None) == (document["model"] == "o1")
            else:
                assert (message["model"], message["reasoning_content"]) == (None, None)


def test_the_data_is_varied(documents: list[Document]) -> None:
    mine = documents[:40]
    assert {d["model"] for d in mine} == MODELS
    assert len({d["name"] for d in mine}) >= 20
    assert len({len(d["messages"]) for d in mine}) >= 8
    assert sum(d["messages"][0]["role"] == "system" for d in mine) > 0
    assert sum(d["summary"] != "" for d in mine) > 0
    assert sum(d["summary"] == "" for d in mine) > 0
    assert sum(d["organization_id"] is not None for d in mine) > 0
    assert sum(d["assistant_id"] is not None for d in mine) > 0
    assert sum(d["assistant_id"] is None for d in mine) > 0


def test_generated_images_are_complete(documents: list[Document]) -> None:
    images = [
        (d, m["img_gen"]) for d in documents for m in d["messages"] if m["img_gen"] is not None
    ]
    assert images != []
    for document, image in images:
        assert document["img_gen_model"] == "dall-e-3"
        assert image["model"] == "dall-e-3"
        assert image["prompt"] != ""
        assert (
            image["image_url"] == f"https://files.ayeto.example/images/{image['image_file_id']}.png"
        )
        assert image["response_id"].startswith("resp_")


def test_the_spec_conversation_is_the_demo_users_and_the_newest(
    store: Store, documents: list[Document]
) -> None:
    store.upsert(documents)
    spec = next(d for d in documents if d["id"] == SPEC_CONVERSATION)
    assert spec["created"]["user_id"] == DEMO_USER
    assert [m["content"] for m in spec["messages"][:1]] == [
        "Hi, how do I write a function in Python?"
    ]
    assert ids(find(store, DEMO_USER, {"limit_to": 1})) == [SPEC_CONVERSATION]
    with pytest.raises(Forbidden):
        store.get(OTHER_USER, SPEC_CONVERSATION, NOW)


# The bodies of the spec's find examples (1-8, 11), each with what it must select from the data.
EXAMPLES: list[tuple[int, dict[str, Any], Callable[[Document], bool], slice]] = [
    (1, {}, lambda d: True, slice(None)),
    (2, {"sort_key": "updated.timestamp", "sort_order": 1}, lambda d: True, slice(None)),
    (
        3,
        {"sort_key": "updated.timestamp", "sort_order": 1, "limit_from": 0, "limit_to": 10},
        lambda d: True,
        slice(0, 10),
    ),
    (4, {"filters": [["model", "==", "gpt-4o"]]}, lambda d: d["model"] == "gpt-4o", slice(None)),
    (
        5,
        {"filters": [["name", "regex", ".*Python.*"]]},
        lambda d: "Python" in d["name"],
        slice(None),
    ),
    (
        6,
        {"filters": [["assistant_id", "==", SPEC_ASSISTANT]]},
        lambda d: d["assistant_id"] == SPEC_ASSISTANT,
        slice(None),
    ),
    (
        7,
        {"filters": [["created.timestamp", ">", SPEC_SINCE]]},
        lambda d: d["created"]["timestamp"] > SPEC_SINCE,
        slice(None),
    ),
    (
        8,
        {
            "sort_key": "updated.timestamp",
            "sort_order": 1,
            "limit_from": 0,
            "limit_to": 20,
            "filters": [["model", "==", "gpt-4o"], ["created.timestamp", ">", SPEC_SINCE]],
        },
        lambda d: d["model"] == "gpt-4o" and d["created"]["timestamp"] > SPEC_SINCE,
        slice(0, 20),
    ),
    (11, {"limit_from": 0, "limit_to": 5}, lambda d: True, slice(0, 5)),
]


@pytest.mark.parametrize(
    ("body", "selects", "page"),
    [pytest.param(body, selects, page, id=f"example-{n}") for n, body, selects, page in EXAMPLES],
)
def test_each_find_example_returns_the_demo_users_matches(
    store: Store,
    documents: list[Document],
    body: dict[str, Any],
    selects: Callable[[Document], bool],
    page: slice,
) -> None:
    store.upsert(documents)
    mine = [d for d in documents if d["created"]["user_id"] == DEMO_USER]
    expected = ids(newest_first([d for d in mine if selects(d)]))[page]
    assert expected != []
    assert ids(find(store, DEMO_USER, body)) == expected
    # The other user's conversations answer the same query for their owner only.
    theirs = [d for d in documents if d["created"]["user_id"] == OTHER_USER]
    assert (
        ids(find(store, OTHER_USER, body))
        == ids(newest_first([d for d in theirs if selects(d)]))[page]
    )


def test_the_whole_history_is_newer_than_example_7s_date(documents: list[Document]) -> None:
    assert all(d["created"]["timestamp"] > SPEC_SINCE for d in documents)


def test_get_then_delete_the_spec_conversation_and_the_filter_examples_still_answer(
    store: Store, documents: list[Document]
) -> None:
    store.upsert(documents)
    got = store.get(DEMO_USER, SPEC_CONVERSATION, NOW)  # example 9
    assert (got["id"], got["accessed"]) == (
        SPEC_CONVERSATION,
        {"user_id": DEMO_USER, "timestamp": NOW},
    )
    store.delete(DEMO_USER, SPEC_CONVERSATION)  # example 10
    with pytest.raises(NotFound):
        store.get(DEMO_USER, SPEC_CONVERSATION, NOW)
    for body in (
        {"filters": [["model", "==", "gpt-4o"]]},
        {"filters": [["name", "regex", "Python"]]},
    ):
        assert find(store, DEMO_USER, body) != []

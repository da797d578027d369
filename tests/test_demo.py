"""The demo data: valid documents, deterministic, and enough for every curl example of the spec."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ayeto.auth import authenticate, create_key
from ayeto.demo import (
    DEMO_USER,
    OTHER_USER,
    OTHER_USER_COUNT,
    SPEC_ASSISTANT,
    SPEC_CONVERSATION,
    SPEC_SINCE,
    DemoLoad,
    demo_conversations,
    instructions,
    load_demo,
)
from ayeto.errors import Forbidden, NotFound, Unauthorized
from ayeto.models import PublicConversationView
from ayeto.query import parse_query
from ayeto.store import Store

NOW = 1_760_000_000_000  # 2025-10-09T08:53:20Z
ARCHIVE_END = 1_734_652_800_000  # 2024-12-20T00:00:00Z
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


def test_a_now_too_close_to_example_7s_date_is_refused() -> None:
    early = SPEC_SINCE + 60 * DAY
    with pytest.raises(ValueError, match=f"^now_ms must be later than 2025-03-02, got {early}$"):
        demo_conversations(DEMO_USER, now_ms=early)


def test_timestamps_are_consistent(documents: list[Document]) -> None:
    for document in documents:
        created, updated = document["created"], document["updated"]
        stamps = [m["timestamp"] for m in document["messages"]]
        # The last 60 days, or 60 days of late 2024 ending an hour before 2024-12-20 at the latest.
        until = NOW if created["timestamp"] > SPEC_SINCE else ARCHIVE_END - 3600 * 1000
        assert until - 60 * DAY <= created["timestamp"] <= stamps[0] <= stamps[-1] <= until
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


# How many conversations of each user the examples answer: 7 and 8 leave the 2024 ones out.
COUNTS = [(1, 40, 4), (4, 19, 2), (7, 28, 3), (8, 14, 2)]


@pytest.mark.parametrize(
    ("body", "demo_user_count", "other_user_count"),
    [
        pytest.param(
            next(b for n, b, *_ in EXAMPLES if n == number), mine, theirs, id=f"example-{number}"
        )
        for number, mine, theirs in COUNTS
    ],
)
def test_examples_7_and_8_visibly_filter(
    store: Store,
    documents: list[Document],
    body: dict[str, Any],
    demo_user_count: int,
    other_user_count: int,
) -> None:
    store.upsert(documents)
    assert len(find(store, DEMO_USER, body)) == demo_user_count
    assert len(find(store, OTHER_USER, body)) == other_user_count


def test_the_split_around_example_7s_date_is_the_same_whenever_the_demo_runs() -> None:
    def after(now: int) -> list[tuple[str, bool]]:
        return [
            (d["id"], d["created"]["timestamp"] > SPEC_SINCE)
            for d in demo_conversations(DEMO_USER, now_ms=now)
        ]

    assert after(NOW) == after(NOW + 3 * 365 * DAY) == after(SPEC_SINCE + 61 * DAY)


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


# -- loading, and what the user is told ------------------------------------------------------------


def test_loading_again_revokes_the_earlier_demo_keys_only(store: Store) -> None:
    first = load_demo(store, NOW)
    assert (first.demo_user_count, first.other_user_count, first.revoked) == (40, 4, 0)
    own, _ = create_key(store, DEMO_USER, name="my own")
    _, expired = create_key(store, DEMO_USER, name="demo", expires_at=NOW - 1)
    second = load_demo(store, NOW + DAY)
    assert (second.demo_user_count, second.other_user_count, second.revoked) == (40, 4, 1)
    with pytest.raises(Unauthorized):
        authenticate(store, first.key, NOW + DAY)
    for key in (own, second.key):
        assert authenticate(store, key, NOW + DAY).user_id == DEMO_USER
    statuses = [(k.name, k.revoked_at, k.expires_at) for k in store.list_keys(DEMO_USER)]
    # Keys made within one millisecond list in the order of their (random) ids: in any order.
    assert sorted(statuses, key=repr) == sorted(
        [
            ("demo", NOW + DAY, NOW + 30 * DAY),
            ("my own", None, None),
            ("demo", None, expired.expires_at),
            ("demo", None, NOW + 31 * DAY),
        ],
        key=repr,
    )
    assert len(list(store.export())) == 40 + OTHER_USER_COUNT


def test_the_demo_key_expires_after_30_days(store: Store) -> None:
    key = load_demo(store, NOW).key
    assert authenticate(store, key, NOW + 30 * DAY - 1).user_id == DEMO_USER
    with pytest.raises(Unauthorized):
        authenticate(store, key, NOW + 30 * DAY)


KEY = "ayeto-" + "0" * 64
BODY = '{"sort_key": "updated.timestamp", "sort_order": 1, "limit_from": 0, "limit_to": 3}'


def printed(
    *,
    revoked: int = 0,
    db: str = "sqlite:///./ayeto.db",
    host: str = "127.0.0.1",
    port: int = 8000,
    serving: bool = True,
    key: str = KEY,
) -> str:
    """What the demo prints after loading the 44 conversations."""
    load = DemoLoad(key, 40, 4, revoked)
    return instructions(load, database_url=db, host=host, port=port, serving=serving)


def test_what_serve_demo_prints_on_the_default_database() -> None:
    text = printed()
    assert text.splitlines() == [
        "Loaded 44 demo conversations: 40 for the demo user "
        "880e8400-e29b-41d4-a716-446655440003 (its key sees these) and 4 of another user "
        "(the key never sees them).",
        "The demo user's API key (shown only now; it expires in 30 days):",
        "",
        f"  export AYETO_KEY={KEY}",
        "",
        "Then try:",
        "",
        '  curl -X POST "http://127.0.0.1:8000/api/v3/conversation/find" \\',
        '    -H "uni-api-key: $AYETO_KEY" -H "Content-Type: application/json" \\',
        f"    -d '{BODY}'",
        "",
        "or, without the variable:",
        "",
        f"  curl -X POST http://127.0.0.1:8000/api/v3/conversation/find -H 'uni-api-key: {KEY}'"
        f" -d '{BODY}'",
        "",
        "Or browse them: open http://127.0.0.1:8000/web/ and sign in with the key.",
    ]


@pytest.mark.parametrize(
    ("revoked", "line"),
    [
        (1, "Revoked 1 earlier demo key: a key is shown only once, so each run of the demo makes "
         "a new one."),
        (2, "Revoked 2 earlier demo keys: a key is shown only once, so each run of the demo makes "
         "a new one."),
    ],
)  # fmt: skip
def test_the_revoked_demo_keys_are_counted(revoked: int, line: str) -> None:
    text = printed(revoked=revoked)
    assert text.splitlines()[1:3] == [
        line,
        "The demo user's API key (shown only now; it expires in 30 days):",
    ]


def test_loading_only_says_how_to_serve_and_reach_another_database() -> None:
    text = printed(db="sqlite:///./demo.db", host="192.0.2.1", port=8001, serving=False)
    assert "http://192.0.2.1:8001/api/v3/conversation/find" in text
    assert text.splitlines()[-8:] == [
        "",
        "Serve it with:",
        "",
        "  ayeto serve --db sqlite:///./demo.db --host 192.0.2.1 --port 8001",
        "",
        "The demo database is sqlite:///./demo.db, not the default one; for other ayeto "
        "commands (ayeto keys list, ...) to use it, first run in their terminal:",
        "",
        "  export AYETO_DATABASE_URL=sqlite:///./demo.db",
    ]


def test_loading_only_into_the_default_database_says_to_serve_it() -> None:
    text = printed(serving=False)
    assert text.splitlines()[-3:] == ["Serve it with:", "", "  ayeto serve"]


def test_the_readme_shows_what_make_demo_prints() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"`make demo` prints \(with another key\):\n\n```\n(.*?)```", readme, re.S)
    assert shown is not None
    key = re.search(r"ayeto-[0-9a-f]{64}", shown[1])
    assert key is not None
    assert shown[1] == printed(db="sqlite:///./demo.db", key=key[0])

"""`ayeto delete --filter` and `ayeto prune`, run in-process on both databases: exact output,
exactly what is deleted, and nothing when what matches changes between the count and the delete."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ayeto.cli import _filter_value
from ayeto.clock import now_ms
from ayeto.config import duration_ms
from ayeto.store import SqlStore, open_store
from tests.factories import ALICE, BOB, conversation, message
from tests.test_cli import run

DAY = 86_400_000
A_OLD = "a0000000-0000-4000-8000-000000000001"
A_GPT = "a0000000-0000-4000-8000-000000000002"
A_NEW = "a0000000-0000-4000-8000-000000000003"
B_OLD = "b0000000-0000-4000-8000-000000000001"
B_GPT = "b0000000-0000-4000-8000-000000000002"


# id, owner, model, days since its update, a message's content (None: no message)
ROWS = [
    (A_OLD, ALICE, "o1", 100, None),
    (A_GPT, ALICE, "gpt-4o", 40, "tell me about Kafka"),
    (A_NEW, ALICE, "gpt-4o", 1, None),
    (B_OLD, BOB, "o1", 200, None),
    (B_GPT, BOB, "gpt-4o", 2, "tell me about Kafka"),
]


def dataset(now: int) -> list[dict[str, Any]]:
    return [
        conversation(
            owner,
            id=id_,
            model=model,
            updated={"user_id": owner, "timestamp": now - days * DAY},
            messages=[] if content is None else [message(content=content)],
        )
        for id_, owner, model, days, content in ROWS
    ]


@pytest.fixture
def url(database_url: str) -> str:
    store = open_store(database_url)
    try:
        store.upsert(dataset(now_ms()))
    finally:
        store.close()
    return database_url


def remaining(url: str) -> list[str]:
    store = open_store(url)
    try:
        return sorted(document["id"] for document in store.export())
    finally:
        store.close()


EVERYTHING = [A_OLD, A_GPT, A_NEW, B_OLD, B_GPT]


@pytest.mark.parametrize(
    ("filters", "deleted"),
    [
        (["--filter", "model", "==", "gpt-4o"], [A_GPT, A_NEW]),
        (
            ["--filter", "model", "==", "gpt-4o", "--filter", "messages.content", "regex", "Kafka"],
            [A_GPT],
        ),
        (
            ["--filter", "organization_id", "==", "null", "--filter", "model", "!=", "gpt-4o"],
            [A_OLD],
        ),
        (["--filter", "name", "==", "nobody's"], []),
        (["--all"], [A_OLD, A_GPT, A_NEW]),
    ],
)
def test_delete_deletes_what_the_filters_match(
    url: str, filters: list[str], deleted: list[str]
) -> None:
    out, err = run("delete", "--user", ALICE, *filters, "--db", url)
    assert out == ""
    done = [f"deleted {len(deleted)} conversation(s)"] if deleted else []
    assert err.splitlines() == [f"{len(deleted)} conversation(s) match", *done]
    assert remaining(url) == [id_ for id_ in EVERYTHING if id_ not in deleted]


def test_dry_run_prints_the_ids_and_deletes_nothing(url: str) -> None:
    out, err = run(
        "delete", "--user", ALICE, "--filter", "model", "==", "gpt-4o", "--dry-run", "--db", url
    )
    assert out.splitlines() == [A_GPT, A_NEW]
    assert err.splitlines() == ["2 conversation(s) match", "dry run: nothing was deleted"]
    assert remaining(url) == EVERYTHING


@pytest.mark.parametrize(
    ("op", "when", "matched"),
    [
        # Every conversation of the fixture was updated after 2001; none before.
        (">", "2001-01-01", [A_OLD, A_GPT, A_NEW]),
        ("<", "2001-01-01T00:00:00Z", []),
        ("<", "2001-01-01T00:00:00+01:00", []),
    ],
)
def test_timestamps_as_dates(url: str, op: str, when: str, matched: list[str]) -> None:
    args = ("--filter", "updated.timestamp", op, when, "--dry-run")
    out, _ = run("delete", "--user", ALICE, *args, "--db", url)
    assert out.splitlines() == matched


def test_what_changes_after_the_count_deletes_nothing(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SqlStore.delete_matching
    late = conversation(ALICE, model="gpt-4o")

    def racing(self: SqlStore, owner: str | None, query: Any, **options: Any) -> list[str]:
        ids = original(self, owner, query, **options)
        if options.get("dry_run"):
            # Another client adds a matching conversation between the count and the delete.
            self.upsert([late])
        return ids

    monkeypatch.setattr(SqlStore, "delete_matching", racing)
    _, err = run(
        "delete", "--user", ALICE, "--filter", "model", "==", "gpt-4o", "--db", url, code=1
    )
    assert err.splitlines() == [
        "2 conversation(s) match",
        "error: 3 conversations match now, not the 2 counted before; nothing was deleted",
    ]
    assert remaining(url) == sorted([*EVERYTHING, late["id"]])


@pytest.mark.parametrize(
    ("args", "deleted"),
    [
        (["--older-than", "30d"], [A_OLD, A_GPT, B_OLD]),
        (["--older-than", "6w"], [A_OLD, B_OLD]),
        (["--older-than", "150d"], [B_OLD]),
        (["--older-than", "30d", "--user", BOB], [B_OLD]),
        (["--older-than", "1000w"], []),
    ],
)
def test_prune_deletes_what_was_not_updated_in_time(
    url: str, args: list[str], deleted: list[str]
) -> None:
    _, err = run("prune", *args, "--db", url)
    lines = err.splitlines()
    assert lines[0].startswith(f"{len(deleted)} conversation(s) not updated since ")
    assert lines[1:] == ([f"deleted {len(deleted)} conversation(s)"] if deleted else [])
    assert remaining(url) == [id_ for id_ in EVERYTHING if id_ not in deleted]


def test_prune_dry_run_lists_and_keeps(url: str) -> None:
    out, err = run("prune", "--older-than", "30d", "--dry-run", "--db", url)
    assert out.splitlines() == [A_OLD, A_GPT, B_OLD]
    assert err.splitlines()[1:] == ["dry run: nothing was deleted"]
    assert remaining(url) == EVERYTHING


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("name", "null", None),
        ("name", '"null"', "null"),
        ("name", '"42"', "42"),
        ("name", "42", "42"),
        ("name", "gpt-4o", "gpt-4o"),
        ("name", '"unterminated', '"unterminated'),
        ("organization_id", "null", None),
        ("updated.timestamp", "42", 42),
        ("updated.timestamp", "-1", -1),
        ("messages.timestamp", "1.5e3", 1500.0),
        ("created.timestamp", "2026-01-01", 1_767_225_600_000),
        ("created.timestamp", "2026-01-01T01:30:00+01:00", 1_767_227_400_000),
        ("created.timestamp", "2026-01-01T00:00:00.5Z", 1_767_225_600_500),
        ("created.timestamp", "soon", "soon"),
        ("created.timestamp", "true", "true"),
        ("nme", "42", "42"),
    ],
)
def test_how_a_filter_value_is_read(field: str, text: str, value: object) -> None:
    assert _filter_value(field, text) == value
    assert type(_filter_value(field, text)) is type(value)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1s", 1000),
        ("90m", 5_400_000),
        ("12h", 43_200_000),
        ("90d", 7_776_000_000),
        ("2w", 1_209_600_000),
        (" 7d ", 604_800_000),
        ("36525d", 3_155_760_000_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert duration_ms(text) == ms


@pytest.mark.parametrize(
    "text", ["", "d", "90", "0s", "-1d", "1.5d", "36526d", "9" * 40 + "s", "1D"]
)
def test_durations_refused(text: str) -> None:
    # The text as given: the caller names the setting around it.
    with pytest.raises(ValueError, match=f"^{re.escape(text)}$"):
        duration_ms(text)

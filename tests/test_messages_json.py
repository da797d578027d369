"""Each conversation's messages kept as the JSON the API answers (`conversations.messages_json`):
written with the conversation, replaced with it, and filled by migration 0007 for a database of
an earlier revision, answers byte for byte as before."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from ayeto.query import parse_query
from ayeto.store import SqlStore, Store, migrations, open_store
from ayeto.store.schema import conversations
from ayeto.transfer import import_documents
from tests.conftest import at_revision, empty_postgres
from tests.factories import ALICE, BOB, conversation, img_gen, message

NOW = 1_800_000_000_000


def answered(document: dict[str, Any]) -> bytes:
    """The document as the API answers it: its messages in timestamp order, ties as given
    (the factories' documents have every field in the answer's order)."""
    thread = sorted(document["messages"], key=lambda m: m["timestamp"])
    return orjson.dumps(document | {"messages": thread})


def stored(store: Store, conversation_id: str) -> str:
    assert isinstance(store, SqlStore)
    column = conversations.c.messages_json
    with store.engine.connect() as connection:
        found: str = connection.execute(
            select(column).where(conversations.c.id == conversation_id)
        ).scalar_one()
    return found


def stored_of(document: dict[str, Any]) -> str:
    """What `messages_json` holds for `document`: its messages as the API answers them."""
    return orjson.dumps(orjson.loads(answered(document))["messages"]).decode()


def test_an_upsert_of_a_changed_document_replaces_its_stored_messages(store: Store) -> None:
    first = conversation(messages=[message(2, content="two"), message(1, content="one")])
    store.upsert([first])
    assert stored(store, first["id"]) == stored_of(first)
    changed = first | {
        "messages": [
            message(5, role="assistant", content="é😀", img_gen=img_gen(prompt="a cat")),
            first["messages"][1] | {"content": "one, edited"},
        ]
    }
    store.upsert([changed])
    after = stored(store, first["id"])
    assert after == stored_of(changed)
    assert after != stored_of(first)
    assert orjson.dumps(store.get(ALICE, first["id"], NOW)) == answered(
        changed | {"accessed": {"user_id": ALICE, "timestamp": NOW}}
    )
    store.upsert([changed | {"messages": []}])
    assert stored(store, first["id"]) == "[]"


def test_a_reimport_of_a_changed_document_replaces_its_stored_messages(store: Store) -> None:
    first = conversation(BOB, messages=[message(1, content="before")])
    changed = first | {"messages": [message(3, content="after"), message(2, content="between")]}
    for document in (first, changed):
        assert import_documents(store, io.BytesIO(orjson.dumps(document) + b"\n")) == 1
        assert stored(store, first["id"]) == stored_of(document)
    found = [d for batch in store.find(BOB, parse_query({})) for d in batch]
    assert orjson.dumps(found) == orjson.dumps([orjson.loads(answered(changed))])


# More conversations than the migration renders per batch (1,000), some without messages.
OWNERS = (ALICE, BOB, None)


def _dataset() -> list[dict[str, Any]]:
    documents = []
    for n in range(1_205):
        owner = OWNERS[n % len(OWNERS)]
        thread = [
            message(
                1_000 + (k if n % 7 else 0),  # every 7th: all at one time, kept in given order
                content=None if k == 1 else f'message {k} of {n}, é😀\n"quoted" \\ \u2028',
                reasoning_content="thought" if k == 2 else None,
                model="gpt-4o" if k == 2 else None,
                img_gen=img_gen(prompt=f"picture {n}", hd=True) if k == 3 else None,
                role="assistant" if k % 2 else "user",
            )
            for k in range(n % 5)
        ]
        documents.append(
            conversation(
                owner,
                name=f"chat {n}",
                updated={"user_id": owner, "timestamp": 2_000 + n},
                messages=list(reversed(thread)) if n % 11 == 0 else thread,
            )
        )
    return documents


def _answers(store: Store) -> list[bytes]:
    """Every answer of `find` (a page of 200 read whole, and every conversation in batches),
    `get` and `export`, serialized as the API serializes them."""
    answers = []
    for owner in ("" if owner is None else owner for owner in OWNERS):
        for body in ({"limit_to": 200}, {"sort_key": "id"}):
            answers += [orjson.dumps(batch) for batch in store.find(owner, parse_query(body))]
    documents = list(store.export())
    answers.append(orjson.dumps(documents))
    for document in documents[::50]:
        owner = document["created"]["user_id"] or ""
        answers.append(orjson.dumps(store.get(owner, document["id"], NOW)))
    return answers


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_of_revision_0006_answers_byte_for_byte_the_same_after_0007(
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    documents = _dataset()
    if backend == "sqlite":
        old_url, fresh_url = (f"sqlite:///{tmp_path / name}" for name in ("old.db", "fresh.db"))
    else:
        old_url = request.getfixturevalue("bare_postgres")
        fresh_url = empty_postgres(request.getfixturevalue("postgres_url"))
    at_revision(old_url, "0006", documents)
    monkeypatch.setattr(migrations, "REPORT_FROM", 10)
    migrated = open_store(old_url)
    fresh = open_store(fresh_url)
    try:
        fresh.upsert(documents)
        # What the API answered before: each conversation as stored, its messages in order.
        for document in migrated.export():
            original = next(d for d in documents if d["id"] == document["id"])
            assert orjson.dumps(document) == answered(original)
        assert _answers(migrated) == _answers(fresh)
        # Written as any other conversation is, once migrated.
        replaced = documents[1] | {"messages": [message(9, content="new")]}
        migrated.upsert([replaced])
        assert stored(migrated, replaced["id"]) == stored_of(replaced)
    finally:
        migrated.close()
        fresh.close()
    messages = sum(len(d["messages"]) for d in documents)
    err = capsys.readouterr().err
    assert err == (
        f"storing the messages of 1,205 conversations ({messages:,} messages) as responses give "
        "them (once, on this upgrade)\n"
        "stored the messages of 1,000 of 1,205 conversations\n"
        "stored the messages of 1,205 of 1,205 conversations\n"
        "messages stored\n"
    )

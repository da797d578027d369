"""What `find`, `get` and `delete` answer on a small hand-built dataset, row by row.

ALICE owns A1..A5. BOB's B1, B2 and the creatorless N1 share many of their values, so every row
also checks that nothing but the caller's own conversations ever comes back.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from ayeto.errors import Forbidden, NotFound
from ayeto.models import INT64_MAX, INT64_MIN
from ayeto.query import parse_query
from ayeto.store import SqlStore, Store
from ayeto.store.schema import messages as messages_table
from tests.factories import ALICE, BOB, conversation, img_gen, message

CAROL = "33333333-3333-4333-8333-333333333333"

A1 = "a0000000-0000-4000-8000-000000000001"
A2 = "a0000000-0000-4000-8000-000000000002"
A3 = "a0000000-0000-4000-8000-000000000003"
A4 = "a0000000-0000-4000-8000-000000000004"
A5 = "a0000000-0000-4000-8000-000000000005"
B1 = "b0000000-0000-4000-8000-000000000001"
B2 = "b0000000-0000-4000-8000-000000000002"
N1 = "c0000000-0000-4000-8000-000000000001"
UNKNOWN = "d0000000-0000-4000-8000-000000000001"
ALL = [A1, A2, A3, A4, A5]

ORG_X = "0a0a0a0a-0000-4000-8000-00000000abcd"
ORG_Y = "0f0f0f0f-0000-4000-8000-00000000ffff"
AST = "5a5a5a5a-0000-4000-8000-000000000000"
MSG1 = "e0000000-0000-4000-8000-000000000001"
MSG2 = "e0000000-0000-4000-8000-0000000000b2"
MSG3 = "e0000000-0000-4000-8000-000000000003"
MSG4 = "e0000000-0000-4000-8000-000000000004"
MSG5 = "e0000000-0000-4000-8000-000000000005"
MIN_UUID = "00000000-0000-0000-0000-000000000000"
MAX_UUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"


def meta(user_id: str | None, timestamp: int) -> dict[str, Any]:
    return {"user_id": user_id, "timestamp": timestamp}


def msg(id_: str, timestamp: int, role: str, content: str | None, **fields: Any) -> dict[str, Any]:
    return message(timestamp, id=id_, role=role, content=content, **fields)


# ALICE's conversations (- is null; updated and accessed as user timestamp):
#   id  name  model     summary             org    assistant  created  updated    accessed
#   A1  "B"   gpt-4o    "Python functions"  ORG_X  -          100      ALICE 500  - 0
#   A2  "a"   claude-3  ""                  -      AST        200      -     400  ALICE 900
#   A3  "é"   gpt-4o    ""                  ORG_Y  AST        300      ALICE 500  - 0
#   A4  "😀"  GPT-4o    "hello"             -      -          400      BOB   300  - 0
#   A5  "ab"  gpt-4o    ""                  ORG_X  -          500      ALICE 600  - 0
# Their messages (id, timestamp, role, content, reasoning_content, model):
#   A1: (MSG1, 10, user, "Hello world", -, -),
#       (MSG2, 20, assistant, "line1\nline2", "thinking", gpt-4o)
#   A2: none
#   A3: (MSG3, 5, user, -, -, o1)
#   A4: (MSG4, 7, system, "HELLO", "", -)
#   A5: (MSG5, 30, tool, "Hello world", -, -)
DATASET = [
    conversation(
        ALICE,
        id=A1,
        name="B",
        model="gpt-4o",
        summary="Python functions",
        organization_id=ORG_X,
        messages=[
            msg(MSG1, 10, "user", "Hello world"),
            msg(
                MSG2, 20, "assistant", "line1\nline2", reasoning_content="thinking", model="gpt-4o"
            ),
        ],
        created=meta(ALICE, 100),
        updated=meta(ALICE, 500),
    ),
    conversation(
        ALICE,
        id=A2,
        name="a",
        model="claude-3",
        assistant_id=AST,
        created=meta(ALICE, 200),
        updated=meta(None, 400),
        accessed=meta(ALICE, 900),
    ),
    conversation(
        ALICE,
        id=A3,
        name="é",
        model="gpt-4o",
        organization_id=ORG_Y,
        assistant_id=AST,
        messages=[msg(MSG3, 5, "user", None, model="o1")],
        created=meta(ALICE, 300),
        updated=meta(ALICE, 500),
    ),
    conversation(
        ALICE,
        id=A4,
        name="😀",
        model="GPT-4o",
        summary="hello",
        messages=[msg(MSG4, 7, "system", "HELLO", reasoning_content="")],
        created=meta(ALICE, 400),
        updated=meta(BOB, 300),
    ),
    conversation(
        ALICE,
        id=A5,
        name="ab",
        model="gpt-4o",
        organization_id=ORG_X,
        messages=[msg(MSG5, 30, "tool", "Hello world")],
        created=meta(ALICE, 500),
        updated=meta(ALICE, 600),
    ),
    # Others' conversations look like ALICE's, so a leak would show in almost every row.
    conversation(
        BOB,
        id=B1,
        name="a",
        model="gpt-4o",
        organization_id=ORG_X,
        assistant_id=AST,
        messages=[msg(MSG1, 10, "user", "Hello world")],
        created=meta(BOB, 100),
        updated=meta(ALICE, 700),
        accessed=meta(ALICE, 900),
    ),
    conversation(
        BOB,
        id=B2,
        name="B",
        model="gpt-4o",
        created=meta(BOB, 300),
        updated=meta(None, 800),
    ),
    conversation(
        None,
        id=N1,
        name="a",
        model="gpt-4o",
        organization_id=ORG_X,
        messages=[msg(MSG5, 30, "user", "Hello world")],
        created=meta(None, 100),
        updated=meta(None, 999),
    ),
]


@pytest.fixture
def filled(store: Store) -> Store:
    assert store.upsert(DATASET) == len(DATASET)
    return store


def plain(value: object) -> Any:
    """A store result as the API serializes it (messages are an orjson.Fragment)."""
    return orjson.loads(orjson.dumps(value))


def find(store: Store, body: dict[str, Any], owner: str = ALICE) -> list[dict[str, Any]]:
    return [document for batch in store.find(owner, parse_query(body)) for document in batch]


def ids(store: Store, body: dict[str, Any], owner: str = ALICE) -> list[str]:
    return [document["id"] for document in find(store, body, owner)]


def by_id(*filters: list[Any]) -> dict[str, Any]:
    """A body with these filters, sorted by id ascending so the expected lists read easily."""
    return {"filters": list(filters), "sort_key": "id"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A string field, by code point: "B" < "a" < "ab" < "é" < "😀".
        (by_id(["name", "==", "a"]), [A2]),
        (by_id(["name", "==", "A"]), []),
        (by_id(["name", "!=", "a"]), [A1, A3, A4, A5]),
        (by_id(["name", "<", "a"]), [A1]),
        (by_id(["name", "<=", "a"]), [A1, A2]),
        (by_id(["name", ">", "a"]), [A3, A4, A5]),
        (by_id(["name", ">=", "é"]), [A3, A4]),
        (by_id(["name", "<", "é"]), [A1, A2, A5]),
        (by_id(["name", ">", "é"]), [A4]),
        (by_id(["model", "==", "gpt-4o"]), [A1, A3, A5]),
        (by_id(["summary", "==", ""]), [A2, A3, A5]),
        (by_id(["summary", "!=", ""]), [A1, A4]),
        # Regex: an unanchored, case-sensitive search; `.` is one code point, never a newline.
        (by_id(["name", "regex", "a"]), [A2, A5]),
        (by_id(["name", "regex", "^a$"]), [A2]),
        (by_id(["name", "regex", "b"]), [A5]),
        (by_id(["name", "regex", "(?i)^b"]), [A1]),
        (by_id(["name", "regex", "^.$"]), [A1, A2, A3, A4]),
        (by_id(["name", "regex", ""]), ALL),
        # RE2's classes: \w and \b are ASCII, \pL is any letter, (?i) folds non-ASCII too.
        (by_id(["name", "regex", "\\w"]), [A1, A2, A5]),
        (by_id(["name", "regex", "^\\pL$"]), [A1, A2, A3]),
        (by_id(["name", "regex", "[^a]"]), [A1, A3, A4, A5]),
        (by_id(["name", "regex", "(?i)É"]), [A3]),
        (by_id(["name", "regex", "É"]), []),
        (by_id(["model", "regex", "(?i)^gpt"]), [A1, A3, A4, A5]),
        (by_id(["model", "regex", "gpt"]), [A1, A3, A5]),
        (by_id(["summary", "regex", "hello"]), [A4]),
        (by_id(["summary", "regex", "Python"]), [A1]),
        (by_id(["summary", "regex", "python"]), []),
        # A nullable UUID field (A2 and A4 have no organization).
        (by_id(["organization_id", "==", ORG_X]), [A1, A5]),
        (by_id(["organization_id", "==", ORG_X.upper()]), [A1, A5]),
        (by_id(["organization_id", "!=", ORG_X]), [A2, A3, A4]),
        (by_id(["organization_id", "==", None]), [A2, A4]),
        (by_id(["organization_id", "!=", None]), [A1, A3, A5]),
        (by_id(["organization_id", "<", ORG_Y]), [A1, A5]),
        (by_id(["organization_id", "<=", ORG_Y]), [A1, A3, A5]),
        (by_id(["organization_id", ">", ORG_X]), [A3]),
        (by_id(["organization_id", ">=", ORG_X]), [A1, A3, A5]),
        (by_id(["organization_id", "<", MAX_UUID]), [A1, A3, A5]),
        (by_id(["organization_id", ">", MIN_UUID]), [A1, A3, A5]),
        # Regex on a UUID sees its canonical lowercase text; it never matches null.
        (by_id(["organization_id", "regex", "abcd$"]), [A1, A5]),
        (by_id(["organization_id", "regex", "ABCD"]), []),
        (by_id(["organization_id", "regex", "(?i)ABCD"]), [A1, A5]),
        (by_id(["organization_id", "regex", ""]), [A1, A3, A5]),
        (by_id(["assistant_id", "==", AST]), [A2, A3]),
        (by_id(["assistant_id", "!=", AST]), [A1, A4, A5]),
        (by_id(["assistant_id", "==", None]), [A1, A4, A5]),
        (by_id(["updated.user_id", "==", BOB]), [A4]),
        (by_id(["updated.user_id", "!=", ALICE]), [A2, A4]),
        (by_id(["updated.user_id", "==", None]), [A2]),
        (by_id(["updated.user_id", "!=", None]), [A1, A3, A4, A5]),
        (by_id(["updated.user_id", "<", BOB]), [A1, A3, A5]),
        (by_id(["updated.user_id", ">=", ALICE]), [A1, A3, A4, A5]),
        (by_id(["accessed.user_id", "==", ALICE]), [A2]),
        (by_id(["accessed.user_id", "==", None]), [A1, A3, A4, A5]),
        (by_id(["accessed.user_id", ">", MIN_UUID]), [A2]),
        # The id itself.
        (by_id(["id", "==", A3.upper()]), [A3]),
        (by_id(["id", "!=", A3]), [A1, A2, A4, A5]),
        (by_id(["id", "<", A3]), [A1, A2]),
        (by_id(["id", ">=", A3]), [A3, A4, A5]),
        (by_id(["id", "regex", "-00000000000[13]$"]), [A1, A3]),
        (by_id(["id", "regex", "^A0"]), []),
        (by_id(["id", "regex", "(?i)^A0"]), ALL),
        # A timestamp field.
        (by_id(["created.timestamp", "==", 300]), [A3]),
        (by_id(["created.timestamp", "!=", 300]), [A1, A2, A4, A5]),
        (by_id(["created.timestamp", "<", 300]), [A1, A2]),
        (by_id(["created.timestamp", "<=", 300]), [A1, A2, A3]),
        (by_id(["created.timestamp", ">", 300]), [A4, A5]),
        (by_id(["created.timestamp", ">=", 300]), [A3, A4, A5]),
        (by_id(["created.timestamp", "<", INT64_MIN]), []),
        (by_id(["created.timestamp", "<=", INT64_MAX]), ALL),
        (by_id(["updated.timestamp", "==", 500]), [A1, A3]),
        (by_id(["accessed.timestamp", "==", 0]), [A1, A3, A4, A5]),
        (by_id(["accessed.timestamp", ">", 0]), [A2]),
        # Message fields: any message matches; `!=` when none is equal (A2 has no messages).
        (by_id(["messages.content", "==", "Hello world"]), [A1, A5]),
        (by_id(["messages.content", "!=", "Hello world"]), [A2, A3, A4]),
        (by_id(["messages.content", "==", None]), [A3]),
        (by_id(["messages.content", "!=", None]), [A1, A2, A4, A5]),
        (by_id(["messages.content", "<", "Hello world"]), [A4]),
        (by_id(["messages.content", "<=", "HELLO"]), [A4]),
        (by_id(["messages.content", ">", "Hello world"]), [A1]),
        (by_id(["messages.content", ">=", "Hello world"]), [A1, A5]),
        (by_id(["messages.content", "regex", "world"]), [A1, A5]),
        (by_id(["messages.content", "regex", "hello"]), []),
        (by_id(["messages.content", "regex", "(?i)hello"]), [A1, A4, A5]),
        (by_id(["messages.content", "regex", "line1.line2"]), []),
        (by_id(["messages.content", "regex", "(?s)line1.line2"]), [A1]),
        (by_id(["messages.content", "regex", "^line2"]), []),
        (by_id(["messages.content", "regex", "line2$"]), [A1]),
        (by_id(["messages.content", "regex", "(?m)^line2$"]), [A1]),
        (by_id(["messages.content", "regex", "\\bworld\\b"]), [A1, A5]),
        (by_id(["messages.content", "regex", "\\bworl\\b"]), []),
        (by_id(["messages.content", "regex", ""]), [A1, A4, A5]),
        (by_id(["messages.role", "==", "user"]), [A1, A3]),
        (by_id(["messages.role", "!=", "user"]), [A2, A4, A5]),
        (by_id(["messages.role", "!=", "assistant"]), [A2, A3, A4, A5]),
        (by_id(["messages.role", "<", "system"]), [A1]),
        (by_id(["messages.role", ">=", "user"]), [A1, A3]),
        (by_id(["messages.role", "regex", "^(system|tool)$"]), [A4, A5]),
        (by_id(["messages.reasoning_content", "==", None]), [A1, A3, A5]),
        (by_id(["messages.reasoning_content", "!=", None]), [A2, A4]),
        (by_id(["messages.reasoning_content", "==", ""]), [A4]),
        (by_id(["messages.reasoning_content", "!=", "thinking"]), [A2, A3, A4, A5]),
        (by_id(["messages.reasoning_content", "regex", "^$"]), [A4]),
        (by_id(["messages.model", "==", "gpt-4o"]), [A1]),
        (by_id(["messages.model", ">", "gpt-4o"]), [A3]),
        (by_id(["messages.model", "==", None]), [A1, A4, A5]),
        (by_id(["messages.model", "!=", None]), [A2, A3]),
        (by_id(["messages.timestamp", "==", 20]), [A1]),
        (by_id(["messages.timestamp", "!=", 10]), [A2, A3, A4, A5]),
        (by_id(["messages.timestamp", "<", 10]), [A3, A4]),
        (by_id(["messages.timestamp", "<=", 7]), [A3, A4]),
        (by_id(["messages.timestamp", ">", 10]), [A1, A5]),
        (by_id(["messages.timestamp", ">=", 30]), [A5]),
        (by_id(["messages.id", "==", MSG2.upper()]), [A1]),
        (by_id(["messages.id", "!=", MSG1]), [A2, A3, A4, A5]),
        (by_id(["messages.id", "<", MSG3]), [A1]),
        (by_id(["messages.id", "regex", "b2$"]), [A1]),
        (by_id(["messages.id", "regex", "B2$"]), []),
        # Filters all hold (AND); each message filter may be met by a different message.
        (by_id(["model", "==", "gpt-4o"], ["created.timestamp", ">", 100]), [A3, A5]),
        (by_id(["messages.role", "==", "assistant"], ["messages.timestamp", "<", 15]), [A1]),
        (by_id(["messages.role", "==", "tool"], ["messages.content", "==", None]), []),
        (by_id(["name", ">", "a"], ["name", "<", "é"]), [A5]),
        # Owner isolation: no filter reaches beyond the caller's own conversations.
        (by_id(["created.user_id", "==", BOB]), []),
        (by_id(["created.user_id", "!=", BOB]), ALL),
        (by_id(["created.user_id", "==", ALICE]), ALL),
        (by_id(["created.user_id", "==", None]), []),
        (by_id(["created.user_id", "!=", None]), ALL),
        (by_id(["created.user_id", "regex", ".*"]), ALL),
        (by_id(["created.user_id", ">", ALICE]), []),
        (by_id(["id", "==", B1]), []),
        (by_id(["id", "==", N1]), []),
    ],
)
def test_filter(filled: Store, body: dict[str, Any], expected: list[str]) -> None:
    assert ids(filled, body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Without sort_key: updated.timestamp DESC, ties (A1, A3 at 500) by id DESC.
        ({}, [A5, A3, A1, A2, A4]),
        ({"sort_order": 1}, [A5, A3, A1, A2, A4]),
        ({"sort_order": 0}, [A4, A2, A1, A3, A5]),
        ({"sort_key": "updated.timestamp"}, [A4, A2, A1, A3, A5]),
        ({"sort_key": "updated.timestamp", "sort_order": 1}, [A5, A3, A1, A2, A4]),
        # Strings by code point: "B" < "a" < "ab" < "é" < "😀"; "GPT-4o" < "claude-3" < "gpt-4o".
        ({"sort_key": "name"}, [A1, A2, A5, A3, A4]),
        ({"sort_key": "name", "sort_order": 1}, [A4, A3, A5, A2, A1]),
        ({"sort_key": "model"}, [A4, A2, A1, A3, A5]),
        ({"sort_key": "model", "sort_order": 1}, [A5, A3, A1, A2, A4]),
        ({"sort_key": "summary"}, [A2, A3, A5, A1, A4]),
        ({"sort_key": "img_gen_model"}, [A1, A2, A3, A4, A5]),
        ({"sort_key": "img_gen_model", "sort_order": 1}, [A5, A4, A3, A2, A1]),
        # Nulls are lowest: first ascending, last descending, ties by id in the same direction.
        ({"sort_key": "organization_id"}, [A2, A4, A1, A5, A3]),
        ({"sort_key": "organization_id", "sort_order": 1}, [A3, A5, A1, A4, A2]),
        ({"sort_key": "assistant_id"}, [A1, A4, A5, A2, A3]),
        ({"sort_key": "assistant_id", "sort_order": 1}, [A3, A2, A5, A4, A1]),
        ({"sort_key": "updated.user_id"}, [A2, A1, A3, A5, A4]),
        ({"sort_key": "updated.user_id", "sort_order": 1}, [A4, A5, A3, A1, A2]),
        ({"sort_key": "accessed.user_id"}, [A1, A3, A4, A5, A2]),
        ({"sort_key": "accessed.user_id", "sort_order": 1}, [A2, A5, A4, A3, A1]),
        # Every conversation has the same creator: the order is the id's.
        ({"sort_key": "created.user_id"}, [A1, A2, A3, A4, A5]),
        ({"sort_key": "created.user_id", "sort_order": 1}, [A5, A4, A3, A2, A1]),
        ({"sort_key": "id"}, [A1, A2, A3, A4, A5]),
        ({"sort_key": "id", "sort_order": 1}, [A5, A4, A3, A2, A1]),
        ({"sort_key": "created.timestamp"}, [A1, A2, A3, A4, A5]),
        ({"sort_key": "created.timestamp", "sort_order": 1}, [A5, A4, A3, A2, A1]),
        ({"sort_key": "accessed.timestamp"}, [A1, A3, A4, A5, A2]),
        ({"sort_key": "accessed.timestamp", "sort_order": 1}, [A2, A5, A4, A3, A1]),
        # The slice [limit_from, limit_to) of the sorted matches.
        ({"limit_from": 0, "limit_to": 2}, [A5, A3]),
        ({"limit_from": 2, "limit_to": 4}, [A1, A2]),
        ({"limit_from": 3}, [A2, A4]),
        ({"limit_to": 1}, [A5]),
        ({"limit_to": 0}, []),
        ({"limit_from": 2, "limit_to": 2}, []),
        ({"limit_from": 4, "limit_to": 10}, [A4]),
        ({"limit_from": 5}, []),
        ({"limit_from": 10, "limit_to": 20}, []),
        ({"limit_to": 100}, [A5, A3, A1, A2, A4]),
        ({"limit_from": INT64_MAX}, []),
        ({"limit_to": INT64_MAX}, [A5, A3, A1, A2, A4]),
        ({"sort_key": "organization_id", "limit_from": 1, "limit_to": 3}, [A4, A1]),
        (
            {
                "filters": [["model", "==", "gpt-4o"]],
                "sort_key": "name",
                "sort_order": 1,
                "limit_from": 1,
                "limit_to": 2,
            },
            [A5],
        ),
    ],
)
def test_order_and_slice(filled: Store, body: dict[str, Any], expected: list[str]) -> None:
    assert ids(filled, body) == expected


@pytest.mark.parametrize(
    ("owner", "body", "expected"),
    [
        (BOB, {"sort_key": "id"}, [B1, B2]),
        (BOB, by_id(["name", "==", "B"]), [B2]),
        (BOB, by_id(["created.user_id", "==", ALICE]), []),
        (BOB, by_id(["created.user_id", "regex", ".*"]), [B1, B2]),
        (BOB, by_id(["messages.content", "==", "Hello world"]), [B1]),
        (BOB, by_id(["id", "==", A1]), []),
        (CAROL, {}, []),
        (CAROL, by_id(["created.user_id", "!=", ALICE]), []),
        (CAROL, by_id(["organization_id", "==", ORG_X]), []),
    ],
)
def test_other_owners(filled: Store, owner: str, body: dict[str, Any], expected: list[str]) -> None:
    assert ids(filled, body, owner) == expected


def test_code_point_order(store: Store) -> None:
    # U+FF5E (fullwidth tilde) sorts after U+1F600 in UTF-16 order, before it by code point.
    tilde = "\uff5e"
    names = ["😀", tilde, "é", "a", "Z", "B", "", "aa", "a b"]
    store.upsert([conversation(ALICE, name=name) for name in names])
    found = find(store, {"sort_key": "name"})
    assert [d["name"] for d in found] == ["", "B", "Z", "a", "a b", "aa", "é", tilde, "😀"]
    found = find(store, {"sort_key": "name", "filters": [["name", ">", "é"]]})
    assert [d["name"] for d in found] == [tilde, "😀"]


def test_documents_come_back_whole(filled: Store) -> None:
    # Every field, messages in timestamp order; find records no access.
    assert plain(find(filled, {"sort_key": "id"})) == DATASET[:5]
    assert plain(find(filled, {"sort_key": "id"}, BOB)) == DATASET[5:7]


def test_img_gen_is_returned_with_every_field(store: Store) -> None:
    full = img_gen(
        id="f0000000-0000-4000-8000-000000000001",
        timestamp=1_735_815_583_000,
        model="gpt-image-1",
        format="16:9",
        hd=True,
        prompt="a lighthouse at dusk, é😀",
        content="revised prompt",
        response_id="resp_123",
        image_url="https://example.com/image.png",
        image_file_id="f0000000-0000-4000-8000-000000000002",
    )
    document = conversation(
        messages=[
            message(1, role="assistant", img_gen=full),
            message(2, role="assistant", img_gen=img_gen()),
            message(3),
        ]
    )
    store.upsert([document])
    returned = plain(find(store, {}))
    assert returned == [document]
    assert [m["img_gen"] for m in returned[0]["messages"]] == [full, img_gen(), None]
    assert list(returned[0]["messages"][0]["img_gen"]) == [
        "id",
        "timestamp",
        "model",
        "format",
        "hd",
        "prompt",
        "content",
        "response_id",
        "image_url",
        "image_file_id",
    ]
    assert plain(store.get(ALICE, document["id"], now=5))["messages"] == document["messages"]


def test_messages_in_timestamp_order_ties_in_insertion_order(store: Store) -> None:
    given = [
        message(30, id="e0000000-0000-4000-8000-000000000030"),
        message(10, id="e0000000-0000-4000-8000-000000000011"),
        message(30, id="e0000000-0000-4000-8000-000000000031"),
        message(20, id="e0000000-0000-4000-8000-000000000020"),
        message(10, id="e0000000-0000-4000-8000-000000000010"),
        message(-5, id="e0000000-0000-4000-8000-000000000005"),
    ]
    document = conversation(messages=given)
    store.upsert([document])
    expected = [
        "e0000000-0000-4000-8000-000000000005",
        "e0000000-0000-4000-8000-000000000011",
        "e0000000-0000-4000-8000-000000000010",
        "e0000000-0000-4000-8000-000000000020",
        "e0000000-0000-4000-8000-000000000030",
        "e0000000-0000-4000-8000-000000000031",
    ]
    assert [m["id"] for m in plain(find(store, {}))[0]["messages"]] == expected
    assert [m["id"] for m in plain(store.get(ALICE, document["id"], now=1))["messages"]] == expected


def test_get_records_the_access(filled: Store) -> None:
    got = plain(filled.get(ALICE, A1, now=1_800_000_000_000))
    expected = DATASET[0] | {"accessed": meta(ALICE, 1_800_000_000_000)}
    assert got == expected
    assert got["updated"] == meta(ALICE, 500)
    # Stored, not only returned; other conversations are untouched.
    assert plain(find(filled, {"sort_key": "id"})) == [expected, *DATASET[1:5]]
    again = plain(filled.get(ALICE, A2, now=7))
    assert again == DATASET[1] | {"accessed": meta(ALICE, 7)}
    assert again["updated"] == meta(None, 400)


def test_get_someone_elses_is_forbidden(filled: Store) -> None:
    with pytest.raises(Forbidden) as caught:
        filled.get(ALICE, B1, now=1)
    assert caught.value.detail == f"conversation {B1} belongs to another user"
    # A conversation without a creator is nobody's, so no caller may read it.
    with pytest.raises(Forbidden) as caught:
        filled.get(ALICE, N1, now=1)
    assert caught.value.detail == f"conversation {N1} belongs to another user"
    # The refused read recorded nothing.
    assert plain(find(filled, {"sort_key": "id"}, BOB)) == DATASET[5:7]


def test_get_unknown_is_not_found(filled: Store) -> None:
    with pytest.raises(NotFound) as caught:
        filled.get(ALICE, UNKNOWN, now=1)
    assert caught.value.detail == f"not found, id: {UNKNOWN}"


def message_count(store: Store, conversation_id: str) -> int:
    assert isinstance(store, SqlStore)
    statement = select(func.count()).where(messages_table.c.conversation_id == conversation_id)
    with store.engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def test_delete_removes_the_conversation_and_its_messages(filled: Store) -> None:
    assert message_count(filled, A1) == 2
    assert filled.delete(ALICE, A1) is None  # type: ignore[func-returns-value]
    assert message_count(filled, A1) == 0
    assert ids(filled, {"sort_key": "id"}) == [A2, A3, A4, A5]
    assert ids(filled, by_id(["messages.id", "==", MSG2])) == []
    with pytest.raises(NotFound) as caught:
        filled.get(ALICE, A1, now=1)
    assert caught.value.detail == f"not found, id: {A1}"
    with pytest.raises(NotFound) as caught:
        filled.delete(ALICE, A1)
    assert caught.value.detail == f"not found, id: {A1}"
    # Another conversation may now carry the same message ids.
    reused = conversation(
        id=UNKNOWN, messages=[msg(MSG1, 1, "user", "again"), msg(MSG2, 2, "assistant", None)]
    )
    assert filled.upsert([reused]) == 1
    assert plain(filled.get(ALICE, UNKNOWN, now=3))["messages"] == reused["messages"]
    assert ids(filled, by_id(["messages.id", "==", MSG2])) == [UNKNOWN]


def test_delete_someone_elses_is_forbidden(filled: Store) -> None:
    with pytest.raises(Forbidden) as caught:
        filled.delete(ALICE, B1)
    assert caught.value.detail == f"conversation {B1} belongs to another user"
    with pytest.raises(Forbidden):
        filled.delete(ALICE, N1)
    assert ids(filled, {"sort_key": "id"}, BOB) == [B1, B2]
    assert message_count(filled, B1) == 1
    assert message_count(filled, N1) == 1


def test_delete_unknown_is_not_found(filled: Store) -> None:
    with pytest.raises(NotFound) as caught:
        filled.delete(ALICE, UNKNOWN)
    assert caught.value.detail == f"not found, id: {UNKNOWN}"
    assert ids(filled, {"sort_key": "id"}) == ALL

"""`ayeto import` / `ayeto export`: exact round trips, upserts, and the all-or-nothing refusal."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ayeto.store import Store, open_store
from ayeto.transfer import (
    HINT,
    PROGRESS_STEP,
    REPORTED,
    InvalidRecords,
    NotConversations,
    RecordError,
    export_documents,
    import_documents,
)
from tests.factories import ALICE, BOB, conversation, img_gen, message

# Ids in a known order: the export sorts by owner, then id.
C1 = "c0000000-0000-4000-8000-000000000001"
C2 = "c0000000-0000-4000-8000-000000000002"
C3 = "c0000000-0000-4000-8000-000000000003"
C4 = "c0000000-0000-4000-8000-000000000004"
C5 = "c0000000-0000-4000-8000-000000000005"
M1 = "a0000000-0000-4000-8000-000000000001"
M2 = "a0000000-0000-4000-8000-000000000002"
M3 = "a0000000-0000-4000-8000-000000000003"
M4 = "a0000000-0000-4000-8000-000000000004"
ORG = "0a000000-0000-4000-8000-0000000000ab"
IMAGE = "1f000000-0000-4000-8000-0000000000cd"

ROLE_ERROR = "Input should be 'system', 'user', 'assistant', 'tool' or 'internal'"


@pytest.fixture
def other_store(tmp_path: Path) -> Iterator[Store]:
    """A second, empty database, to import an export into."""
    opened = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    yield opened
    opened.close()


def jsonl(*documents: Any) -> bytes:
    return b"".join(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in documents)


def load(store: Store, data: bytes) -> int:
    return import_documents(store, io.BytesIO(data))


def dump(store: Store, user: str | None = None) -> bytes:
    sink = io.BytesIO()
    count = export_documents(store, sink, user=user)
    assert count == sink.getvalue().count(b"\n")
    return sink.getvalue()


def refusal(store: Store, data: bytes) -> list[RecordError]:
    with pytest.raises(InvalidRecords) as raised:
        load(store, data)
    return raised.value.errors


def full_message(id_: str, timestamp: int, **fields: Any) -> dict[str, Any]:
    return message(timestamp, id=id_, **fields)


# -- round trips -----------------------------------------------------------------------------------


def test_export_import_export_is_byte_identical(store: Store, other_store: Store) -> None:
    documents = [
        # Every nullable field null, the creator included (such a conversation is nobody's).
        conversation(
            None,
            id=C2,
            name="",
            model="",
            img_gen_model="",
            updated={"user_id": None, "timestamp": 5},
            messages=[full_message(M1, 7, role="internal", content=None)],
        ),
        conversation(
            BOB,
            id=C1,
            name="مرحبا بالعالم — שלום",
            summary="e\u0301 n\u0303 a\u030a\u0323 🧑🏽‍💻 𝄞 🇺🇳 \u200f",
            organization_id=ORG,
            assistant_id=C5,
            accessed={"user_id": BOB, "timestamp": 1_735_815_590_123},
            messages=[
                full_message(M3, 0, role="tool", img_gen=img_gen()),
                full_message(
                    M2,
                    -(2**63),
                    role="assistant",
                    content='line 1\nline 2\t"quoted" \\ 🚀',
                    reasoning_content="\u202eRTL override\u202c",
                    model="gpt-4o",
                    img_gen=img_gen(
                        id=IMAGE,
                        timestamp=2**63 - 1,
                        format="16:9",
                        hd=True,
                        content="ok",
                        response_id="resp_1",
                        image_url="https://example.com/a.png?x=1&y=ü",
                        image_file_id=IMAGE,
                    ),
                ),
            ],
        ),
        conversation(ALICE, id=C3, messages=[full_message(M4, 1, role="system")]),
    ]
    assert load(store, jsonl(*documents)) == 3
    exported = dump(store)
    # Nobody's first (the empty owner), then by owner and id; messages in timestamp order.
    first, bob, alice = documents
    bob["messages"].reverse()
    assert exported == jsonl(first, alice, bob)

    assert load(other_store, exported) == 3
    assert dump(other_store) == exported


def test_img_gen_is_exported_with_every_field(store: Store) -> None:
    document = conversation(
        id=C1,
        messages=[
            full_message(M1, 1, img_gen={"model": "flux", "format": "1440-768", "prompt": "a cat"})
        ],
    )
    load(store, jsonl(document))
    assert orjson.loads(dump(store))["messages"][0]["img_gen"] == {
        "id": None,
        "timestamp": None,
        "model": "flux",
        "format": "1440-768",
        "hd": False,
        "prompt": "a cat",
        "content": "",
        "response_id": "",
        "image_url": "",
        "image_file_id": None,
    }


def test_fields_of_an_image_beyond_the_spec_are_kept_as_given(store: Store) -> None:
    # DESIGN.md: ImgGenMessage is undefined by the spec; the hosted service may carry more.
    extras = {"seed": 7, "style": {"preset": "vivid", "weights": [0.5, 1]}, "note": None}
    image = img_gen(**extras)
    load(store, jsonl(conversation(id=C1, messages=[full_message(M1, 1, img_gen=image)])))
    exported = dump(store)
    assert orjson.loads(exported)["messages"][0]["img_gen"] == image
    assert b'"image_file_id":null,"seed":7,"style":{"preset":"vivid","weights":[0.5,1]}' in exported


def test_defaults_of_the_model_are_filled_in(store: Store) -> None:
    minimal = {
        "id": C1,
        "name": "n",
        "model": "m",
        "created": {"user_id": ALICE, "timestamp": 1},
        "updated": {"user_id": ALICE, "timestamp": 2},
    }
    load(store, jsonl(minimal))
    assert dump(store) == jsonl(
        {
            "id": C1,
            "name": "n",
            "model": "m",
            "img_gen_model": "",
            "summary": "",
            "organization_id": None,
            "assistant_id": None,
            "messages": [],
            "created": {"user_id": ALICE, "timestamp": 1},
            "updated": {"user_id": ALICE, "timestamp": 2},
            "accessed": {"user_id": None, "timestamp": 0},
        }
    )


def test_messages_are_exported_in_timestamp_order_ties_in_file_order(store: Store) -> None:
    ids = [f"a0000000-0000-4000-8000-00000000000{n}" for n in range(1, 7)]
    timestamps = [30, 10, 20, 10, 30, 10]
    document = conversation(
        id=C1, messages=[full_message(i, t) for i, t in zip(ids, timestamps, strict=True)]
    )
    load(store, jsonl(document))
    exported = orjson.loads(dump(store))
    assert [(m["id"], m["timestamp"]) for m in exported["messages"]] == [
        (ids[1], 10),
        (ids[3], 10),
        (ids[5], 10),
        (ids[2], 20),
        (ids[0], 30),
        (ids[4], 30),
    ]


def test_uuids_in_any_case_are_stored_lowercase(store: Store) -> None:
    document = conversation(
        ALICE.upper(),
        id=C1.upper(),
        organization_id=ORG.upper(),
        updated={"user_id": BOB.upper(), "timestamp": 2},
        messages=[full_message(M1.upper(), 1, img_gen=img_gen(image_file_id=IMAGE.upper()))],
    )
    load(store, jsonl(document))
    assert dump(store, user=ALICE) == jsonl(
        conversation(
            ALICE,
            id=C1,
            organization_id=ORG,
            updated={"user_id": BOB, "timestamp": 2},
            messages=[full_message(M1, 1, img_gen=img_gen(image_file_id=IMAGE))],
        )
    )


def test_a_conversation_without_creator_is_kept_and_belongs_to_nobody(store: Store) -> None:
    nobodys = conversation(None, id=C1)
    alices = conversation(ALICE, id=C2)
    load(store, jsonl(alices, nobodys))
    assert dump(store) == jsonl(nobodys, alices)
    assert dump(store, user=ALICE) == jsonl(alices)


def test_a_json_array_imports_as_its_lines_would(
    store: Store, other_store: Store, tmp_path: Path
) -> None:
    documents = [
        conversation(BOB, id=C1, messages=[full_message(M1, 2), full_message(M2, 1)]),
        conversation(ALICE, id=C2, name="👋 hello"),
        conversation(None, id=C3),
    ]
    assert load(store, jsonl(*documents)) == 3
    path = tmp_path / "array.json"
    path.write_bytes(b"\n \t" + orjson.dumps(documents, option=orjson.OPT_INDENT_2) + b"\r\n")
    with path.open("rb") as source:
        assert import_documents(other_store, source) == 3
    assert dump(other_store) == dump(store)
    assert dump(store) == jsonl(
        documents[2],
        documents[1],
        conversation(BOB, id=C1, messages=[full_message(M2, 1), full_message(M1, 2)]),
    )


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(store: Store) -> None:
    one, two = conversation(id=C1), conversation(id=C2)
    data = b"\xef\xbb\xbf" + jsonl(one).replace(b"\n", b"\r\n") + b"\r\n" + jsonl(two)
    assert load(store, data) == 2
    assert dump(store) == jsonl(one, two)


@pytest.mark.parametrize("data", [b"", b"\n", b"  \n\r\n\t\n", b"[]", b"\xef\xbb\xbf[ \n ]\n"])
def test_an_input_without_documents_imports_nothing(store: Store, data: bytes) -> None:
    assert load(store, data) == 0
    assert dump(store) == b""


# -- upserts ---------------------------------------------------------------------------------------


def test_importing_again_changes_nothing(store: Store) -> None:
    data = jsonl(
        conversation(ALICE, id=C1, messages=[full_message(M1, 2), full_message(M2, 1)]),
        conversation(BOB, id=C2),
        conversation(None, id=C3),
    )
    assert load(store, data) == 3
    before = dump(store)
    assert load(store, data) == 3
    assert dump(store) == before
    assert load(store, before) == 3
    assert dump(store) == before


def test_a_document_replaces_the_stored_one_with_its_id(store: Store) -> None:
    old = conversation(
        ALICE,
        id=C1,
        name="Before",
        messages=[full_message(M1, 1), full_message(M2, 2), full_message(M3, 3)],
    )
    untouched = conversation(ALICE, id=C2)
    load(store, jsonl(old, untouched))
    new = conversation(ALICE, id=C1, name="After", messages=[full_message(M4, 9, role="tool")])
    assert load(store, jsonl(new)) == 1
    assert dump(store) == jsonl(new, untouched)


def test_a_replacement_may_change_the_owner(store: Store) -> None:
    load(store, jsonl(conversation(ALICE, id=C1, messages=[full_message(M1, 1)])))
    bobs = conversation(BOB, id=C1, messages=[full_message(M2, 1)])
    load(store, jsonl(bobs))
    assert dump(store) == jsonl(bobs)
    assert dump(store, user=ALICE) == b""


def test_the_last_of_several_documents_with_one_id_wins(store: Store) -> None:
    first = conversation(id=C1, name="first")
    last = conversation(id=C1, name="last", messages=[full_message(M1, 1)])
    # Each document read counts, as each was upserted in turn.
    assert load(store, jsonl(first, conversation(id=C2), last)) == 3
    assert dump(store) == jsonl(last, conversation(id=C2))


# -- export ----------------------------------------------------------------------------------------


def test_export_of_one_user_holds_only_their_conversations(store: Store) -> None:
    alices = [conversation(ALICE, id=C3), conversation(ALICE, id=C1)]
    bobs = [conversation(BOB, id=C2)]
    load(store, jsonl(*alices, *bobs, conversation(None, id=C4)))
    assert dump(store, user=ALICE) == jsonl(alices[1], alices[0])
    assert dump(store, user=BOB.upper()) == jsonl(*bobs)
    assert dump(store, user="33333333-3333-4333-8333-333333333333") == b""


def test_export_of_a_user_that_is_not_a_uuid_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match=r"^not a UUID: 'alice'$"):
        export_documents(store, io.BytesIO(), user="alice")


# -- the all-or-nothing refusal --------------------------------------------------------------------


def test_one_invalid_record_imports_nothing(store: Store) -> None:
    existing = [conversation(ALICE, id=C1, name="stored"), conversation(BOB, id=C5)]
    load(store, jsonl(*existing))
    before = dump(store)
    bad = conversation(id=C3, messages=[full_message(M1, 1, role="robot")])
    data = jsonl(
        conversation(ALICE, id=C1, name="replaced"),
        conversation(id=C2),
        bad,
        conversation(id=C4),
        conversation(BOB, id=C5, messages=[full_message(M2, 1)]),
    )
    assert refusal(store, data) == [RecordError("line 3", f"messages.0.role: {ROLE_ERROR}")]
    assert dump(store) == before


def test_an_invalid_record_late_in_a_big_file_undoes_what_was_written(store: Store) -> None:
    # The store writes in chunks of a few hundred documents: by line 1100, whole chunks (with the
    # replacement on line 1) are written, and must be rolled back.
    existing = conversation(ALICE, id=C1, name="stored", messages=[full_message(M1, 1)])
    load(store, jsonl(existing))
    before = dump(store)
    documents = [conversation(ALICE, id=C1, name="replaced")]
    documents += [conversation(BOB) for _ in range(1098)]
    documents += [conversation(BOB, created={"user_id": BOB, "timestamp": "x"})]
    documents += [conversation(BOB) for _ in range(100)]
    assert refusal(store, jsonl(*documents)) == [
        RecordError("line 1100", "created.timestamp: Input should be a valid integer")
    ]
    assert dump(store) == before


def test_every_invalid_record_is_reported_with_its_line(store: Store) -> None:
    load(store, jsonl(conversation(id=C5)))
    before = dump(store)
    missing_model = conversation(id=C3)
    del missing_model["model"]
    lines = [
        jsonl(conversation(id=C1)),  # 1
        b"\n",  # 2
        b'{"id": "' + C2.encode() + b'", "name": \n',  # 3
        jsonl(conversation(id=C2)),  # 4
        jsonl(conversation(id=C3, name=5)),  # 5
        jsonl(conversation(id=C3, colour="red")),  # 6
        jsonl(missing_model),  # 7
        b"   \t\r\n",  # 8
        b"null\n",  # 9
        b"[1, 2]\n",  # 10
        b'{"id": "caf\xc3\xa9\xff"}\n',  # 11
        jsonl(conversation(id="not-a-uuid", created={"user_id": ALICE, "timestamp": 1.5})),  # 12
        b'{"name": "\xc3\xa9\xc3\xa9", x}\n',  # 13
        b'{"name": "\\ud83d"}\n',  # 14
        jsonl(conversation(id=C4)),  # 15
    ]
    errors = refusal(store, b"".join(lines))
    assert [str(error) for error in errors] == [
        "line 3: not valid JSON: EOF while parsing a value at column 55",
        "line 5: name: Input should be a valid string",
        "line 6: colour: Extra inputs are not permitted",
        "line 7: model: Field required",
        "line 9: Input should be an object, not null",
        "line 10: Input should be an object, not an array",
        "line 11: not valid UTF-8: byte 0xff at column 13",
        "line 12: id: Input should be a valid UUID, invalid character: found `n` at 0; "
        "created.timestamp: Input should be a valid integer",
        "line 13: not valid JSON: key must be a string at column 16",
        "line 14: not valid JSON: unexpected end of hex escape at column 17",
    ]
    assert dump(store) == before


def test_the_error_names_the_records_then_how_many_more_then_the_hint() -> None:
    named = [RecordError("line 2", "model: Field required"), RecordError("record 9", "oops")]
    assert str(InvalidRecords(named, 2)) == "line 2: model: Field required\nrecord 9: oops"
    assert InvalidRecords(named, 3, "read the docs").report() == [
        "line 2: model: Field required",
        "record 9: oops",
        "... and 1 more invalid record",
        "hint: read the docs",
    ]
    assert InvalidRecords(named, 414).report()[2] == "... and 412 more invalid records"


def test_a_record_with_many_faults_names_the_first_five(store: Store) -> None:
    document = conversation(messages=[full_message(M1, 1, role="robot")] * 7)
    assert refusal(store, jsonl(document)) == [
        RecordError(
            "line 1",
            "; ".join(f"messages.{n}.role: {ROLE_ERROR}" for n in range(5)) + "; and 2 more",
        )
    ]


def test_a_json_array_reports_where_each_bad_element_starts(store: Store) -> None:
    load(store, jsonl(conversation(id=C5)))
    before = dump(store)
    good = orjson.dumps(conversation(id=C1))
    data = b"".join(
        [
            b"[\n",  # 1
            b"  " + good + b",\n",  # 2
            b"  {\n",  # 3
            b'    "id": "' + C2.encode() + b'",\n',  # 4
            b'    "name": "x", "model": "m",\n',  # 5
            b'    "created": {"user_id": null, "timestamp": 1},\n',  # 6
            b'    "updated": {"user_id": null, "timestamp": "2"}\n',  # 7
            b"  },\n",  # 8
            b'  5, {"name": "\\ude00"},\n',  # 9
            b"  " + good + b"\n",  # 10
            b"]\n",  # 11
        ]
    )
    assert [str(error) for error in refusal(store, data)] == [
        f"record 2 (id {C2}): updated.timestamp: Input should be a valid integer",
        "record 3: Input should be an object, not a number",
        "record 4: not valid JSON: lone leading surrogate in hex escape at line 9 column 21",
    ]
    assert dump(store) == before


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"[\n  {}, \n", RecordError("line 2", "not valid JSON: the file ends inside the array")),
        (
            b"[\n  5,\n  6\n\n",
            RecordError("line 3", "not valid JSON: the file ends inside the array"),
        ),
        (b"[", RecordError("line 1", "not valid JSON: the file ends inside the array")),
        (b"[5]\n [6]", RecordError("line 2", "not valid JSON: data after the array at column 2")),
        (b"[\n5\n6]", RecordError("line 3", "not valid JSON: expected ',' or ']' at column 1")),
        (
            b"[5,\n]",
            RecordError("record 2", "not valid JSON: Expecting value at line 2 column 1"),
        ),
        (
            b'[\n  {"name":\n  "x" "y"}]',
            RecordError("record 1", "not valid JSON: Expecting ',' delimiter at line 3 column 7"),
        ),
        (
            b'[{"name": "\nx"}]',
            RecordError(
                "record 1", "not valid JSON: Invalid control character at line 1 column 12"
            ),
        ),
        (b"[\n\n" + b"[" * 100_000, RecordError("record 1", "not valid JSON: nested too deeply")),
        (
            b'[\n {"name": "\xc3\xa9\xe2\x82"}]',
            RecordError("line 2", "not valid UTF-8: byte 0xe2 at column 13"),
        ),
    ],
)
def test_a_malformed_json_array_is_refused_at_its_first_fault(
    store: Store, data: bytes, error: RecordError
) -> None:
    """Past a fault in the array itself, its elements cannot be told apart: reading stops there."""
    errors = refusal(store, data)
    assert errors[-1] == error
    assert dump(store) == b""


def test_a_malformed_array_also_reports_the_bad_elements_before_the_fault(store: Store) -> None:
    assert refusal(store, b'[\n5,\n{"id": 1} {}]') == [
        RecordError("record 1", "Input should be an object, not a number"),
        RecordError(
            "record 2",
            "id: UUID input should be a string, bytes or UUID object; name: Field required; "
            "model: Field required; created: Field required; updated: Field required",
        ),
        RecordError("line 3", "not valid JSON: expected ',' or ']' at column 11"),
    ]


# -- pretty-printed documents, and what is not conversations at all -------------------------------


def test_one_pretty_printed_document_is_one_conversation(store: Store) -> None:
    document = conversation(ALICE, id=C1, messages=[full_message(M1, 1)])
    assert load(store, b"\xef\xbb\xbf" + orjson.dumps(document, option=orjson.OPT_INDENT_2)) == 1
    assert dump(store) == jsonl(document)


def test_pretty_printed_documents_one_after_another_are_read_as_jq_writes_them(
    store: Store,
) -> None:
    documents = [conversation(ALICE, id=C1), conversation(BOB, id=C2), conversation(id=C3)]
    data = b"\n".join(orjson.dumps(d, option=orjson.OPT_INDENT_2) for d in documents) + b"\n"
    assert load(store, b"\n" + data) == 3
    assert dump(store) == jsonl(documents[0], documents[2], documents[1])


def test_pretty_printed_documents_are_named_by_number_and_id(store: Store) -> None:
    missing_model = conversation(id=C2)
    del missing_model["model"]
    data = b"\n".join(
        orjson.dumps(d, option=orjson.OPT_INDENT_2)
        for d in (conversation(id=C1), missing_model, conversation(id=5))
    )
    # The fourth starts on the line after the others, and is broken at its second character.
    broken_at = data.count(b"\n") + 2
    assert refusal(store, data + b"\n{,\n") == [
        RecordError(f"record 2 (id {C2})", "model: Field required"),
        RecordError("record 3", "id: UUID input should be a string, bytes or UUID object"),
        RecordError("record 4", "not valid JSON: Expecting property name enclosed in double "
                    f"quotes at line {broken_at} column 2"),
    ]  # fmt: skip
    assert dump(store) == b""


def test_past_the_first_ten_invalid_records_they_are_only_counted(store: Store) -> None:
    lines = [jsonl(conversation(id=C1))] + [b"{}\n"] * 25 + [jsonl(conversation(id=C2))]
    with pytest.raises(InvalidRecords) as raised:
        load(store, b"".join(lines))
    named = [f"line {n}: {FIELDS_REQUIRED}" for n in range(2, 2 + REPORTED)]
    assert raised.value.report() == [*named, "... and 15 more invalid records", f"hint: {HINT}"]
    assert raised.value.count == 25
    assert dump(store) == b""


FIELDS_REQUIRED = (
    "id: Field required; name: Field required; model: Field required; created: Field required; "
    "updated: Field required"
)


def test_a_few_invalid_records_among_valid_ones_are_all_named_without_a_hint(
    store: Store,
) -> None:
    lines = [b"{}\n"] * REPORTED + [jsonl(conversation(id=C1))]
    with pytest.raises(InvalidRecords) as raised:
        load(store, b"".join(lines))
    assert raised.value.report() == [f"line {n}: {FIELDS_REQUIRED}" for n in range(1, 1 + REPORTED)]


def test_an_input_without_one_valid_record_gets_the_hint(store: Store) -> None:
    with pytest.raises(InvalidRecords) as raised:
        load(store, b"id,name\nc1,hello\n")
    assert raised.value.report() == [
        "line 1: not valid JSON: expected value at column 1",
        "line 2: not valid JSON: expected value at column 1",
        f"hint: {HINT}",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"SQLite format 3\x00\x10\x00\x02\x02\n{}",
            "the input is an SQLite database, not conversations; to copy an ayeto database, "
            "export it: ayeto export --db sqlite:///PATH | ayeto import -",
        ),
        (
            gzip.compress(jsonl(conversation(id=C1))),
            "the input is gzip-compressed; decompress it as you import: "
            "gunzip -c FILE | ayeto import -",
        ),
    ],
)
def test_a_database_or_a_compressed_file_is_refused_at_once(
    store: Store, data: bytes, message: str
) -> None:
    with pytest.raises(NotConversations) as raised:
        load(store, data)
    assert str(raised.value) == message
    assert dump(store) == b""


# -- progress --------------------------------------------------------------------------------------


def test_progress_is_reported_every_step_and_at_the_end(store: Store) -> None:
    # Lines of exactly 1 KiB, so that every step ends on a line.
    line = jsonl(conversation(id=C1, name=""))
    padded = jsonl(conversation(id=C1, name="x" * (1024 - len(line))))
    assert len(padded) == 1024
    data = padded * (PROGRESS_STEP * 5 // 2 // 1024)
    reported: list[int] = []
    assert import_documents(store, io.BytesIO(data), on_progress=reported.append) == 2560
    assert reported == [PROGRESS_STEP, 2 * PROGRESS_STEP, len(data)]


def test_progress_of_a_json_array_ends_at_its_size(store: Store) -> None:
    data = orjson.dumps([conversation(id=C1), conversation(id=C2)])
    reported: list[int] = []
    assert import_documents(store, io.BytesIO(data), on_progress=reported.append) == 2
    assert reported == [len(data)]

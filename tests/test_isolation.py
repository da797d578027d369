"""User B cannot reach user A's conversations through any endpoint or filter (OWASP API1).

A seeded random attacker: B knows A's conversation ids, message ids and words, and B's own
conversations are full of A's words and name A as their updater, so that A's data is always one
mistake away. Thousands of attempts per database through `find`, `get` and `delete`: ids in any
case, filters on `created.user_id`, regexes on ids, message filters matching A's text, A's ids to
get and delete, repeated `entity_id` parameters, every sort and slice. Every answer is exact:
`find` equals the reference evaluator over B's own data, A's ids are 403, B's own are the
documents B owns, and no answer other than a 403 names one of A's conversations. A's data is
byte-identical afterwards.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import re2
from httpx import Response
from starlette.testclient import TestClient

from ayeto.api import create_app
from ayeto.auth import create_key
from ayeto.query import SORTABLE, parse_query
from ayeto.store import Store
from tests.factories import ALICE, BOB, conversation, img_gen, message
from tests.reference import reference_find

BASE = "/api/v3/conversation"
ATTEMPTS = 3000
SEED = 20261206

# A's vocabulary; B's texts reuse every word of it.
WORDS = ("Nightingale", "budget", "merger", "Zürich", "SECRET-42", "résumé", "😀", "q3 plan")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude")
SHARED_ASSISTANT = "123e4567-e89b-12d3-a456-426614174000"
SHARED_ORGANIZATION = "550e8400-e29b-41d4-a716-446655440000"

Document = dict[str, Any]
Attempt = Callable[[random.Random], None]


def uuid_from(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(1, 3)))


def documents(rng: random.Random, owner: str | None, count: int, base: int) -> list[Document]:
    """`count` conversations of `owner`, made of A's words, with messages and shared ids."""
    made = []
    for n in range(count):
        messages = [
            message(
                base + 1000 * n + index,
                id=uuid_from(rng),
                role=rng.choice(("user", "assistant", "system")),
                content=rng.choice((None, sentence(rng))),
                reasoning_content=rng.choice((None, sentence(rng))),
                model=rng.choice((None, *MODELS)),
                img_gen=img_gen(id=uuid_from(rng)) if index == 2 else None,
            )
            for index in range(rng.randint(0, 3))
        ]
        made.append(
            conversation(
                owner,
                id=uuid_from(rng),
                name=sentence(rng),
                model=rng.choice(MODELS),
                summary=rng.choice(("", sentence(rng))),
                organization_id=rng.choice((None, SHARED_ORGANIZATION)),
                assistant_id=rng.choice((None, SHARED_ASSISTANT)),
                messages=messages,
                created={"user_id": owner, "timestamp": base + n},
                # B's conversations name A as updater and last reader: filters on those fields
                # must still only ever reach B's own.
                updated={"user_id": rng.choice((ALICE, BOB, None)), "timestamp": base + 2 * n},
                accessed={"user_id": rng.choice((ALICE, None)), "timestamp": base + 3 * n},
            )
        )
    return made


def any_case(rng: random.Random, text: str) -> str:
    return rng.choice((text, text.upper(), "".join(rng.choice((c, c.upper())) for c in text)))


class Attacker:
    """B's view of the world: A's known ids and words, and a model of B's own conversations."""

    def __init__(self, store: Store, client: TestClient, key: str, seed: int) -> None:
        rng = random.Random(seed)
        self.store, self.client = store, client
        self.headers = {"uni-api-key": key}
        self.theirs = documents(rng, ALICE, 8, 1_735_000_000_000)
        # A conversation with no creator is nobody's: B may not have it either.
        self.nobodys = documents(rng, None, 1, 1_736_000_000_000)
        self.originals = documents(rng, BOB, 8, 1_735_000_000_000)
        self.foreign_ids = [d["id"] for d in (*self.theirs, *self.nobodys)]
        self.foreign_message_ids = [m["id"] for d in self.theirs for m in d["messages"]]
        self.texts = sorted(
            {t for d in self.theirs for t in (d["name"], d["summary"]) if t}
            | {m["content"] for d in self.theirs for m in d["messages"] if m["content"]}
        )
        self.mine: dict[str, Document] = {}
        self.attempts = 0
        self.outcomes: Counter[tuple[str, int]] = Counter()
        store.upsert([*self.theirs, *self.nobodys])
        self.restore()

    def restore(self) -> None:
        """B's conversations as they were first stored (after B has deleted some)."""
        self.store.upsert(self.originals)
        self.mine = {d["id"]: orjson.loads(orjson.dumps(d)) for d in self.originals}

    def others_data(self) -> bytes:
        """Everything stored that is not B's, exactly as exported."""
        return orjson.dumps([d for d in self.store.export() if d["created"]["user_id"] != BOB])

    # -- requests ----------------------------------------------------------------------------------

    def post(self, endpoint: str, **options: Any) -> Response:
        self.attempts += 1
        response: Response = self.client.post(f"{BASE}/{endpoint}", headers=self.headers, **options)
        found = endpoint == "find" and response.text != "[]"
        self.outcomes[endpoint + (" (some)" if found else ""), response.status_code] += 1
        if response.status_code != 403:
            leaked = [i for i in self.foreign_ids if i in response.text.lower()]
            assert leaked == [], f"{endpoint} {options} answered {leaked}: {response.text}"
        return response

    def expect_entity(self, endpoint: str, entity_id: str, response: Response) -> None:
        """The exact answer of `endpoint` for `entity_id`; the model follows B's own changes."""
        canonical = entity_id.lower()
        if canonical in self.foreign_ids:
            detail = f"conversation {canonical} belongs to another user"
            assert (response.status_code, response.json()) == (403, {"detail": detail})
        elif canonical not in self.mine:
            detail = f"not found, id: {canonical}"
            assert (response.status_code, response.json()) == (404, {"detail": detail})
        elif endpoint == "delete":
            assert (response.status_code, response.json()) == (200, canonical)
            del self.mine[canonical]
        else:
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["accessed"]["user_id"] == BOB
            assert answer["accessed"]["timestamp"] >= self.mine[canonical]["accessed"]["timestamp"]
            self.mine[canonical]["accessed"] = answer["accessed"]
            [expected] = reference_find(
                list(self.mine.values()), BOB, parse_query({"filters": [["id", "==", canonical]]})
            )
            assert answer == expected

    # -- what B tries --------------------------------------------------------------------------

    def target(self, rng: random.Random) -> str:
        """An id to get or delete: mostly A's (or nobody's), else B's own or an unknown one."""
        pool = rng.choice(
            (self.foreign_ids, self.foreign_ids, list(self.mine) or self.foreign_ids, [UNKNOWN])
        )
        return any_case(rng, rng.choice(pool))

    def entity(self, rng: random.Random) -> None:
        endpoint = rng.choice(("get", "delete"))
        entity_id = self.target(rng)
        response = self.post(endpoint, params={"entity_id": entity_id})
        self.expect_entity(endpoint, entity_id, response)

    def repeated(self, rng: random.Random) -> None:
        # The last `entity_id` is the one that counts; an earlier one of A's must change nothing.
        endpoint = rng.choice(("get", "delete"))
        ids = [self.target(rng) for _ in range(rng.randint(2, 4))]
        response = self.post(endpoint, params=[("entity_id", i) for i in ids])
        self.expect_entity(endpoint, ids[-1], response)

    def find(self, rng: random.Random) -> None:
        body: dict[str, Any] = {
            "filters": [self.filter(rng) for _ in range(rng.choice((0, 1, 1, 2, 3)))]
        }
        if rng.random() < 0.6:
            body["sort_key"] = rng.choice(SORTABLE)
        if rng.random() < 0.5:
            body["sort_order"] = rng.choice((0, 1))
        if rng.random() < 0.3:
            body["limit_from"] = rng.randint(0, 5)
        if rng.random() < 0.3:
            body["limit_to"] = body.get("limit_from", 0) + rng.randint(0, 6)
        response = self.post("find", json=body)
        expected = reference_find(list(self.mine.values()), BOB, parse_query(body))
        assert (response.status_code, response.json()) == (200, expected), body

    def filter(self, rng: random.Random) -> list[Any]:
        return rng.choice(self.filters)(rng)

    @property
    def filters(self) -> tuple[Callable[[random.Random], list[Any]], ...]:
        return (
            self.on_ids,
            self.on_ids,
            self.on_creator,
            self.on_people,
            self.on_text,
            self.on_text,
            self.on_message_ids,
            self.on_timestamps,
        )

    def on_ids(self, rng: random.Random) -> list[Any]:
        known = rng.choice(self.foreign_ids)
        op = rng.choice(("==", "!=", "<", ">", "<=", ">=", "regex", "regex"))
        if op != "regex":
            return ["id", op, any_case(rng, known)]
        start = rng.randint(0, 30)
        piece = known[start : start + rng.randint(1, 8)]
        return ["id", "regex", rng.choice((piece, "^" + known[:8], "(?i)" + piece.upper(), "."))]

    def on_creator(self, rng: random.Random) -> list[Any]:
        value = rng.choice((ALICE, ALICE.upper(), BOB, None))
        op = rng.choice(("==", "!=")) if value is None else rng.choice(("==", "!=", "<", ">="))
        if value is not None and rng.random() < 0.3:
            return ["created.user_id", "regex", rng.choice(("^1111", "(?i)1{8}", ALICE[:9]))]
        return ["created.user_id", op, value]

    def on_people(self, rng: random.Random) -> list[Any]:
        field = rng.choice(
            ("updated.user_id", "accessed.user_id", "organization_id", "assistant_id")
        )
        value = rng.choice((ALICE, any_case(rng, ALICE), SHARED_ASSISTANT, SHARED_ORGANIZATION))
        return [field, rng.choice(("==", "!=")), value]

    def on_text(self, rng: random.Random) -> list[Any]:
        field = rng.choice(
            (
                "name",
                "summary",
                "messages.content",
                "messages.reasoning_content",
                "messages.model",
                "model",
            )
        )
        text = rng.choice(self.texts)
        op = rng.choice(("==", "!=", "<", ">=", "regex", "regex", "regex"))
        if op != "regex":
            return [field, op, text]
        word = rng.choice(WORDS)
        pattern = rng.choice(
            (
                "".join(re2.escape(c) for c in word),
                "(?i)" + "".join(re2.escape(c) for c in word.lower()),
                "^" + "".join(re2.escape(c) for c in text) + "$",
                ".",
            )
        )
        return [field, "regex", pattern]

    def on_message_ids(self, rng: random.Random) -> list[Any]:
        known = rng.choice(self.foreign_message_ids)
        return ["messages.id", rng.choice(("==", "!=", ">")), any_case(rng, known)]

    def on_timestamps(self, rng: random.Random) -> list[Any]:
        stamp = rng.choice(self.theirs)["created"]["timestamp"]
        field = rng.choice(("created.timestamp", "updated.timestamp", "messages.timestamp"))
        return [field, rng.choice(("==", "!=", "<", ">", "<=", ">=")), stamp]

    def run(self, attempts: int, rng: random.Random) -> None:
        tries: tuple[Attempt, ...] = (self.find, self.find, self.find, self.entity, self.repeated)
        while self.attempts < attempts:
            if len(self.mine) < len(self.originals) // 2:
                self.restore()
            rng.choice(tries)(rng)


UNKNOWN = "deadbeef-dead-4bee-8fee-deadbeefcafe"


@pytest.fixture
def attacker(store: Store) -> Iterator[Attacker]:
    key = create_key(store, BOB, scopes=("ayeto.conversation",))[0]
    with TestClient(create_app(store)) as client:
        yield Attacker(store, client, key, SEED)


def test_b_never_reaches_a(attacker: Attacker) -> None:
    before = attacker.others_data()
    attacker.run(ATTEMPTS, random.Random(SEED))
    assert attacker.others_data() == before
    # Not vacuous: B's searches found B's own conversations, B read and deleted its own, and was
    # refused A's.
    assert {outcome for outcome, count in attacker.outcomes.items() if count >= 20} == {
        ("find", 200),
        ("find (some)", 200),
        ("get", 200),
        ("get", 403),
        ("get", 404),
        ("delete", 200),
        ("delete", 403),
        ("delete", 404),
    }
    # Run with -s to see the figure bench/RESULTS.md records.
    print(f"\nisolation: {attacker.attempts} attempts, 0 leaks")

"""The web view at /web/, in process: signing in and out, the list and its search, a conversation,
its exports, deleting, and what it does with hostile content and bad input."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from bs4 import BeautifulSoup, Tag
from httpx import Response
from starlette.testclient import TestClient

from ayeto.api import create_app
from ayeto.auth import create_key
from ayeto.clock import now_ms
from ayeto.config import Settings
from ayeto.query import FIELDS, Condition, Op, Query
from ayeto.store import Document, Store, open_store
from ayeto.web.pages import CSP
from ayeto.web.sessions import token_digest
from tests.factories import ALICE, BOB, conversation, img_gen, message
from tests.processes import UNLIMITED, new_key, serving, stop

DAY = 86_400_000
# 2025-01-01T12:00:00Z: conversation i was updated i days later.
START = 1_735_732_800_000
COUNT = 30
ENDED = "Your session has ended; sign in again."
CSRF_FAILED = "the form has expired or did not come from this site; reload it and try again"
SEARCHED = "a.b("


def uid(n: int) -> str:
    return f"{n:08x}-abcd-4ef0-8abc-{n:012x}"


OTHER = uid(999)


def dataset() -> list[Document]:
    """Alice's 30 conversations (i: named `Topic i`, updated i days after START, created in the
    reverse order, model o1 every third) and one of Bob's that matches every search."""
    documents = []
    for i in range(COUNT):
        content = f"note {i}"
        name = f"Topic {i:02d}"
        if i == 5:
            content = f"the literal {SEARCHED} is here"
        if i == 7:
            name = f"Regex {SEARCHED} name"
        if i == 8:
            content = "axb( is only a regex match"
        documents.append(
            conversation(
                ALICE,
                id=uid(i),
                name=name,
                model="o1" if i % 3 == 0 else "gpt-4o",
                created={"user_id": ALICE, "timestamp": START - i * 1000},
                updated={"user_id": ALICE, "timestamp": START + i * DAY},
                messages=[message(START + i * DAY, id=uid(100 + i), content=content)],
            )
        )
    documents.append(
        conversation(BOB, id=OTHER, name=f"Topic 99 {SEARCHED}", messages=[message(content="x")])
    )
    return documents


def alice_ids(documents: list[Document], **order: Any) -> list[str]:
    mine = [d for d in documents if d["created"]["user_id"] == ALICE]
    return [d["id"] for d in sorted(mine, **order)]


NEWEST_FIRST = [uid(i) for i in reversed(range(COUNT))]


@dataclass
class Browser:
    """A browser without JavaScript: follows nothing by itself, keeps cookies."""

    client: TestClient

    def get(self, path: str) -> Response:
        response: Response = self.client.get(path, follow_redirects=False)
        return response

    def page(self, path: str, status: int = 200) -> BeautifulSoup:
        response = self.get(path)
        assert response.status_code == status, response.text
        return soup(response)

    def post(self, path: str, fields: dict[str, str] | list[tuple[str, str]]) -> Response:
        response: Response = self.client.post(
            path,
            content=urlencode(fields),
            headers={"content-type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        return response

    def submit(self, form: Tag, **extra: str) -> Response:
        """Post `form` as a browser would: its hidden and ticked fields, plus `extra`."""
        fields: list[tuple[str, str]] = []
        for field in form.find_all("input"):
            kind = field.get("type", "text")
            if kind == "hidden" or (kind == "checkbox" and field.has_attr("checked")):
                fields.append((str(field["name"]), str(field.get("value", "on"))))
        fields += extra.items()
        return self.post(str(form["action"]), fields)

    def sign_in(self, key: str) -> Response:
        form = self.page("/web/sign-in").find("form", action="/web/sign-in")
        assert isinstance(form, Tag)
        return self.submit(form, key=key)

    def csrf(self) -> str:
        field = self.page("/web/conversations").find("input", attrs={"name": "csrf"})
        assert isinstance(field, Tag)
        return str(field["value"])


def soup(response: Response) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def by_testid(page: BeautifulSoup, testid: str) -> list[Tag]:
    return list(page.find_all(True, attrs={"data-testid": testid}))


def text_of(page: BeautifulSoup, testid: str) -> str:
    found = by_testid(page, testid)
    assert len(found) == 1, f"{len(found)} elements {testid!r}"
    return found[0].get_text(" ", strip=True)


def listed(page: BeautifulSoup) -> list[str]:
    return [str(row["data-id"]) for row in by_testid(page, "conversation-item")]


def stored(store: Store, owner: str = ALICE) -> list[str]:
    return sorted(d["id"] for d in store.export(owner))


@pytest.fixture
def web_store(sqlite_url: str) -> Iterator[Store]:
    """SQLite: the tests of the view itself (the store's paths run on both, below)."""
    opened = open_store(sqlite_url)
    yield opened
    opened.close()


def _browser(store: Store, settings: Settings | None = None, **client: Any) -> Iterator[Browser]:
    store.upsert(dataset())
    app = create_app(store, settings or Settings(rate_limit=UNLIMITED, metrics="off"))
    with TestClient(app, **client) as test_client:
        yield Browser(test_client)


@pytest.fixture
def key(web_store: Store) -> str:
    return create_key(web_store, ALICE)[0]


@pytest.fixture
def browser(web_store: Store) -> Iterator[Browser]:
    yield from _browser(web_store)


@pytest.fixture
def alice(browser: Browser, key: str) -> Browser:
    assert browser.sign_in(key).status_code == 303
    return browser


@pytest.fixture
def on_both(store: Store) -> Iterator[Browser]:
    """Alice signed in, on SQLite and on PostgreSQL."""
    for browser in _browser(store):
        assert browser.sign_in(create_key(store, ALICE)[0]).status_code == 303
        yield browser


# -- signing in and out --------------------------------------------------------------------------


def test_signing_in_sets_a_session_cookie_that_is_not_the_key(browser: Browser, key: str) -> None:
    assert browser.get("/web/").headers["location"] == "/web/sign-in"
    response = browser.sign_in(key)
    assert (response.status_code, response.headers["location"]) == (303, "/web/conversations")
    cookie = next(c for c in response.headers.get_list("set-cookie") if "ayeto_session=" in c)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert attributes == {"httponly", "path", "samesite"}
    assert "Path=/web" in cookie
    assert "SameSite=strict" in cookie
    token = cookie.split(";")[0].removeprefix("ayeto_session=")
    assert key not in cookie
    assert token != key
    assert browser.get("/web/").headers["location"] == "/web/conversations"
    # Nothing the view serves shows the key.
    for path in ("/web/conversations", f"/web/conversations/{uid(1)}", "/web/sign-in"):
        assert key not in browser.client.get(path).text


def test_the_cookie_is_secure_over_https(web_store: Store, key: str) -> None:
    for browser in _browser(web_store, base_url="https://testserver"):
        cookie = browser.sign_in(key).headers["set-cookie"]
        assert "; Secure" in cookie


def test_a_session_lasts_the_setting_and_never_past_its_key(
    web_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = now_ms()
    monkeypatch.setattr("ayeto.web.routes.now_ms", lambda: now)
    short = create_key(web_store, ALICE, expires_at=now + 600_000)[0]
    settings = Settings(rate_limit=UNLIMITED, metrics="off", web_session_hours=1)
    ends = []
    for browser in _browser(web_store, settings):
        for key in (short, create_key(web_store, ALICE)[0]):
            browser.client.cookies.clear()
            browser.sign_in(key)
            token = browser.client.cookies["ayeto_session"]
            session = web_store.web_session(token_digest(token), now)
            assert session is not None
            ends.append(session.expires_at - now)
    assert ends == [600_000, 3_600_000]


def test_an_ended_session_says_so_whatever_ended_it(
    alice: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cookie outlives the session (it has no Max-Age), so the next page can tell.
    later = now_ms() + 12 * 3_600_000
    monkeypatch.setattr("ayeto.web.sessions.now_ms", lambda: later)
    monkeypatch.setattr("ayeto.web.routes.now_ms", lambda: later)
    assert alice.get("/web/conversations").headers["location"] == "/web/sign-in"
    assert text_of(alice.page("/web/sign-in"), "error") == ENDED


def _revoked(store: Store) -> str:
    plain, record = create_key(store, ALICE)
    store.revoke_key(record.id, None, now_ms())
    return plain


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda store: "", "API key not provided"),
        (lambda store: "ayeto-" + "0" * 64, "API key is invalid"),
        (lambda store: "not a key", "API key is invalid"),
        (_revoked, "API key is invalid"),
        (lambda store: create_key(store, ALICE, expires_at=now_ms() - 1)[0], "API key is invalid"),
        (lambda store: create_key(store, ALICE, scopes=("other",))[0], "API key is invalid"),
    ],
    ids=["empty", "unknown", "malformed", "revoked", "expired", "no-scope"],
)
def test_a_key_that_grants_nothing_is_refused_as_the_api_refuses_it(
    web_store: Store, browser: Browser, make: Any, error: str
) -> None:
    response = browser.sign_in(make(web_store))
    assert response.status_code == 401
    page = soup(response)
    assert text_of(page, "error") == error
    assert by_testid(page, "error")[0]["role"] == "alert"
    assert "ayeto_session=" not in response.headers.get("set-cookie", "")
    assert browser.get("/web/conversations").headers["location"] == "/web/sign-in"


def test_signing_in_without_the_form_token_is_refused(browser: Browser, key: str) -> None:
    response = browser.post("/web/sign-in", {"key": key})
    assert response.status_code == 403
    assert text_of(soup(response), "error") == CSRF_FAILED
    browser.page("/web/sign-in")  # the form's cookie, but still no token in the form
    assert browser.post("/web/sign-in", {"key": key, "csrf": "x"}).status_code == 403


def test_signing_out_ends_the_session_on_the_server(
    web_store: Store, alice: Browser, key: str
) -> None:
    token = alice.client.cookies["ayeto_session"]
    response = alice.post("/web/sign-out", {"csrf": alice.csrf()})
    assert (response.status_code, response.headers["location"]) == (303, "/web/sign-in")
    assert web_store.web_session(token_digest(token), now_ms()) is None
    assert alice.get("/web/conversations").headers["location"] == "/web/sign-in"
    assert text_of(alice.page("/web/sign-in"), "error") == ENDED
    # The old token, presented again, opens nothing.
    alice.client.cookies.set("ayeto_session", token, path="/web")
    assert alice.get("/web/conversations").headers["location"] == "/web/sign-in"


def test_signing_out_needs_the_form_token(alice: Browser) -> None:
    response = alice.post("/web/sign-out", {"csrf": "forged"})
    assert response.status_code == 403
    assert alice.get("/web/conversations").status_code == 200


def test_a_revoked_key_ends_its_session_at_the_next_request(
    web_store: Store, browser: Browser
) -> None:
    key, record = create_key(web_store, ALICE)
    browser.sign_in(key)
    assert browser.get("/web/conversations").status_code == 200
    web_store.revoke_key(record.id, None, now_ms())
    assert browser.get("/web/conversations").headers["location"] == "/web/sign-in"
    assert text_of(browser.page("/web/sign-in"), "error") == ENDED


def test_sessions_are_found_by_digest_until_they_end_and_then_removed(store: Store) -> None:
    record = create_key(store, ALICE)[1]
    store.add_web_session("a" * 64, record.id, 1_000, 2_000)
    found = store.web_session("a" * 64, 1_999)
    assert found is not None
    assert (found.key.id, found.created_at, found.expires_at) == (record.id, 1_000, 2_000)
    assert store.web_session("a" * 64, 2_000) is None
    assert store.web_session("b" * 64, 1_500) is None
    # A new session clears those ended by then.
    store.add_web_session("b" * 64, record.id, 2_000, 3_000)
    assert store.web_session("a" * 64, 1_500) is None
    store.delete_web_session("b" * 64)
    assert store.web_session("b" * 64, 2_500) is None


def test_the_sign_in_post_is_logged_without_its_form(
    browser: Browser, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        browser.sign_in(key)
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if key in line]
    signed_in = [line for line in lines if line.startswith("POST /web/sign-in ")]
    assert len(signed_in) == 1
    assert signed_in[0].startswith("POST /web/sign-in 303 ")


# -- the list ------------------------------------------------------------------------------------


def test_the_list_is_newest_first_in_pages_of_25(alice: Browser) -> None:
    first = alice.page("/web/conversations")
    assert text_of(first, "match-count") == "30 conversations"
    assert listed(first) == NEWEST_FIRST[:25]
    assert by_testid(first, "prev-page") == []
    assert by_testid(first, "next-page")[0]["href"] == "/web/conversations?page=2"
    second = alice.page("/web/conversations?page=2")
    assert listed(second) == NEWEST_FIRST[25:]
    assert by_testid(second, "next-page") == []
    assert by_testid(second, "prev-page")[0]["href"] == "/web/conversations"
    beyond = alice.page("/web/conversations?page=9")
    assert (listed(beyond), text_of(beyond, "empty")) == ([], "No conversations on this page.")
    assert by_testid(beyond, "prev-page")[0]["href"] == "/web/conversations?page=2"
    row = by_testid(first, "conversation-item")[0]
    assert [cell.get_text(strip=True) for cell in row.find_all("td")[1:4]] == [
        "Topic 29",
        "gpt-4o",
        "1",
    ]
    assert row.find("time")["datetime"] == "2025-01-30T12:00:00.000Z"  # type: ignore[index]
    assert row.find("a", attrs={"data-testid": "open"})["href"] == f"/web/conversations/{uid(29)}"  # type: ignore[index]
    models = by_testid(first, "model")[0]
    assert [o["value"] for o in models.find_all("option")] == ["", "gpt-4o", "o1"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("model=o1", [uid(i) for i in reversed(range(0, COUNT, 3))]),
        ("from=2025-01-03&to=2025-01-05", [uid(4), uid(3), uid(2)]),
        ("to=2025-01-01", [uid(0)]),
        ("model=o1&from=2025-01-03&to=2025-01-07", [uid(6), uid(3)]),
        ("sort=created&order=asc&page=2", [uid(i) for i in reversed(range(5))]),
        ("sort=updated&order=asc", [uid(i) for i in range(25)]),
        ("model=nobody", []),
    ],
)
def test_filters_and_sorts(alice: Browser, query: str, expected: list[str]) -> None:
    page = alice.page(f"/web/conversations?{query}")
    assert listed(page) == expected
    if not expected:
        assert text_of(page, "empty") == "No conversations match."


def test_sorting_by_name(alice: Browser) -> None:
    expected = alice_ids(dataset(), key=lambda d: (d["name"], d["id"]))
    assert listed(alice.page("/web/conversations?sort=name&order=asc")) == expected[:25]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Plain: a literal, in any case, in the name or in a message.
        (f"q={SEARCHED}", [uid(7), uid(5)]),
        ("q=TOPIC+1", [uid(i) for i in reversed(range(10, 20))]),
        # The same text as a regex: `.` is any character.
        (r"q=a.b\(&regex=on", [uid(8), uid(7), uid(5)]),
        ("q=^Regex&regex=on", [uid(7)]),
        ("q=topic+1&regex=on", []),  # a pattern is case-sensitive unless it says otherwise
        ("q=nothing+like+this", []),
    ],
)
def test_search_in_names_and_messages(on_both: Browser, query: str, expected: list[str]) -> None:
    page = on_both.page(f"/web/conversations?{query.replace('(', '%28')}")
    assert listed(page) == expected
    count = len(expected)
    assert text_of(page, "match-count") == f"{count} conversation{'' if count == 1 else 's'}"


def test_the_search_form_keeps_the_query(alice: Browser) -> None:
    page = alice.page("/web/conversations?q=x%22y&regex=on&model=o1&from=2025-01-02&sort=name")
    assert by_testid(page, "search")[0]["value"] == 'x"y'
    assert by_testid(page, "regex")[0].has_attr("checked")
    assert by_testid(page, "from")[0]["value"] == "2025-01-02"
    selected = [
        str(by_testid(page, name)[0].find("option", selected=True)["value"])  # type: ignore[index]
        for name in ("model", "sort", "order")
    ]
    assert selected == ["o1", "name", "desc"]


def test_a_bad_regex_is_the_apis_400(alice: Browser, key: str) -> None:
    page = alice.page("/web/conversations?q=a(b&regex=on", 400)
    api = alice.client.post(
        "/api/v3/conversation/find",
        headers={"uni-api-key": key},
        json={"filters": [["name", "regex", "a(b"]]},
    )
    assert api.status_code == 400
    # The API's words, with the search box named instead of the filter's place.
    assert api.json()["detail"].startswith("filters[0]: ")
    assert text_of(page, "error") == "search: " + api.json()["detail"].removeprefix("filters[0]: ")
    assert by_testid(page, "search")[0]["value"] == "a(b"


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/web/conversations?page=0", 400, "page must be a whole number from 1 to "),
        ("/web/conversations?page=" + "9" * 5000, 400, "page must be a whole number from 1 to "),
        ("/web/conversations?sort=model", 400, "sort must be one of updated, created, name, got"),
        ("/web/conversations?order=up", 400, "order must be one of desc, asc, got 'up'"),
        ("/web/conversations?from=2025-13-01", 400, "from must be a date as YYYY-MM-DD, got"),
        ("/web/conversations?to=yesterday", 400, "to must be a date as YYYY-MM-DD, got"),
        ("/web/delete?from=x", 400, "from must be a date as YYYY-MM-DD, got 'x'"),
        ("/web/conversations/not-a-uuid", 404, "not found, id: not-a-uuid"),
        (f"/web/conversations/{uid(1)}.exe", 404, f"not found, id: {uid(1)}.exe"),
        (f"/web/conversations/{uid(12345)}", 404, f"not found, id: {uid(12345)}"),
        (f"/web/conversations/{OTHER}", 404, f"not found, id: {OTHER}"),
        (f"/web/conversations/{OTHER}.json", 404, f"not found, id: {OTHER}"),
        (f"/web/conversations/{OTHER}/delete", 404, f"not found, id: {OTHER}"),
        ("/web/nowhere", 404, "no such page"),
        ("/web/static/nothing.css", 404, "not found, id: nothing.css"),
    ],
)
def test_bad_input_is_a_page_that_says_why(
    alice: Browser, path: str, status: int, error: str
) -> None:
    page = alice.page(path, status)
    assert text_of(page, "error").startswith(error)


def test_another_users_conversation_cannot_be_deleted(web_store: Store, alice: Browser) -> None:
    response = alice.post(f"/web/conversations/{OTHER}/delete", {"csrf": alice.csrf()})
    assert response.status_code == 404
    assert stored(web_store, BOB) == [OTHER]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"q=" + b"x" * 70_000, 413, "form larger than 65536 bytes"),
        (b"q=\xff", 400, "the form is not valid UTF-8"),
        (b"&".join([b"ids=x"] * 1001), 400, "a form has at most 1000 fields"),
    ],
)
def test_a_form_too_large_or_malformed_is_refused(
    alice: Browser, body: bytes, status: int, error: str
) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = alice.client.post("/web/delete", content=body, headers=form)
    assert response.status_code == status
    assert text_of(soup(response), "error") == error


# -- a conversation ------------------------------------------------------------------------------


HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)> "
    '<a href="javascript:alert(3)" onclick="alert(4)">click</a> '
    "[link](javascript:alert(5)) ![pic](http://images.example/p.png) "
    '<iframe src="http://evil.example"></iframe> [ok](https://example.com/a)'
)


@pytest.fixture
def shown(web_store: Store, alice: Browser) -> BeautifulSoup:
    web_store.upsert(
        [
            conversation(
                ALICE,
                id=uid(500),
                name="<b onmouseover=alert(6)>Rendered</b>",
                updated={"user_id": ALICE, "timestamp": START},
                messages=[
                    message(START, id=uid(501), content="Show **bold** and code"),
                    message(
                        START + 1,
                        id=uid(502),
                        role="assistant",
                        content="# Title\n\n```python\ndef f():\n    return 1\n```\n",
                        reasoning_content="*Thinking* first",
                        img_gen=img_gen(image_url="https://files.example/i.png", prompt="a cat"),
                    ),
                    message(
                        START + 2,
                        id=uid(503),
                        role="tool",
                        content=HOSTILE,
                        img_gen=img_gen(image_url="javascript:alert(7)"),
                    ),
                ],
            )
        ]
    )
    return alice.page(f"/web/conversations/{uid(500)}")


def test_a_conversation_renders_markdown_code_reasoning_and_images(shown: BeautifulSoup) -> None:
    assert shown.find("h1").get_text() == "<b onmouseover=alert(6)>Rendered</b>"  # type: ignore[union-attr]
    messages = by_testid(shown, "message")
    assert [m["data-role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[0].find("strong").get_text() == "bold"  # type: ignore[union-attr]
    assert messages[1].find("h1").get_text() == "Title"  # type: ignore[union-attr]
    keyword = messages[1].select_one("pre code span.k")
    assert keyword is not None
    assert keyword.get_text() == "def"
    reasoning = by_testid(shown, "reasoning")
    assert len(reasoning) == 1
    assert reasoning[0].name == "details"
    assert reasoning[0].find("em").get_text() == "Thinking"  # type: ignore[union-attr]
    images = by_testid(shown, "image-link")
    assert [(a["href"], a["rel"]) for a in images] == [
        ("https://files.example/i.png", ["noopener", "noreferrer"])
    ]
    times = [t["datetime"] for t in shown.find_all("time")]
    # Created, updated, then each message's.
    assert times == [
        "2025-01-02T10:59:40.000Z",
        "2025-01-01T12:00:00.000Z",
        "2025-01-01T12:00:00.000Z",
        "2025-01-01T12:00:00.001Z",
        "2025-01-01T12:00:00.002Z",
    ]


def assert_inert(page: BeautifulSoup) -> None:
    assert page.find_all(["script", "img", "iframe", "style"]) == []
    for element in page.find_all(True):
        assert not [name for name in element.attrs if name.lower().startswith("on")]
        for name in ("href", "src", "action"):
            assert not str(element.get(name, "")).strip().lower().startswith("javascript:")


def test_hostile_content_is_inert(shown: BeautifulSoup, alice: Browser) -> None:
    assert_inert(shown)
    listing = alice.page("/web/conversations?q=Rendered")
    assert_inert(listing)
    assert by_testid(listing, "open")[0].get_text() == "<b onmouseover=alert(6)>Rendered</b>"
    assert_inert(alice.page(f"/web/conversations/{uid(500)}/delete"))
    hostile = by_testid(shown, "message")[2]
    # The Markdown image is a link, to be followed only when clicked; raw HTML is text.
    links = [(a["href"], a.get_text(), a["rel"]) for a in hostile.find_all("a")]
    assert links == [
        ("http://images.example/p.png", "pic", ["noopener", "noreferrer", "nofollow"]),
        ("https://example.com/a", "ok", ["noopener", "noreferrer", "nofollow"]),
    ]
    assert "<script>alert(1)</script>" in hostile.get_text()


def test_the_json_export_is_the_apis_get(
    alice: Browser, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ayeto.web.routes.now_ms", lambda: START)
    monkeypatch.setattr("ayeto.api.routes.now_ms", lambda: START)
    exported = alice.get(f"/web/conversations/{uid(5)}.json")
    api = alice.client.post(
        f"/api/v3/conversation/get?entity_id={uid(5)}", headers={"uni-api-key": key}
    )
    assert exported.status_code == 200
    assert exported.content == api.content
    assert exported.headers["content-type"] == "application/json"
    disposition = f'attachment; filename="{uid(5)}.json"'
    assert exported.headers["content-disposition"] == disposition
    assert orjson.loads(exported.content)["accessed"] == {"user_id": ALICE, "timestamp": START}


def test_the_markdown_export_is_a_transcript(alice: Browser) -> None:
    exported = alice.get(f"/web/conversations/{uid(5).upper()}.md")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/markdown; charset=utf-8"
    assert exported.headers["content-disposition"] == f'attachment; filename="{uid(5)}.md"'
    assert exported.text.splitlines() == [
        "# Topic 05",
        "",
        f"- Id: {uid(5)}",
        "- Model: gpt-4o",
        "- Created: 2025-01-01T11:59:55.000Z",
        "- Updated: 2025-01-06T12:00:00.000Z",
        "",
        "## User (2025-01-06T12:00:00.000Z)",
        "",
        f"the literal {SEARCHED} is here",
    ]


# -- deleting ------------------------------------------------------------------------------------


def flash(browser: Browser, response: Response) -> str:
    """What the list says after `response`, said once: not when it is shown again."""
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/web/conversations"
    said = text_of(browser.page("/web/conversations"), "flash")
    assert by_testid(browser.page("/web/conversations"), "flash") == []
    return said


def confirm_form(page: BeautifulSoup) -> Tag:
    button = by_testid(page, "confirm-delete")[0]
    form = button.find_parent("form")
    assert isinstance(form, Tag)
    return form


def test_deleting_one_conversation(web_store: Store, alice: Browser) -> None:
    page = alice.page(f"/web/conversations/{uid(3)}")
    ask = by_testid(page, "delete")[0].find_parent("form")
    assert ask["action"] == f"/web/conversations/{uid(3)}/delete"  # type: ignore[index]
    confirm = alice.page(f"/web/conversations/{uid(3)}/delete")
    assert text_of(confirm, "delete-count") == "1"
    assert by_testid(confirm, "cancel")[0]["href"] == f"/web/conversations/{uid(3)}"
    assert [li.get_text() for li in confirm.select("ul.names li")] == ["Topic 03"]
    response = alice.submit(confirm_form(confirm))
    assert flash(alice, response) == "Deleted 1 conversation."
    assert stored(web_store) == sorted(set(NEWEST_FIRST) - {uid(3)})
    assert alice.page(f"/web/conversations/{uid(3)}", 404)


def test_deleting_what_a_search_matches(store: Store, on_both: Browser) -> None:
    page = on_both.page("/web/conversations?q=a.b%28")
    link = by_testid(page, "delete-matching")[0]
    assert link["href"] == "/web/delete?q=a.b%28"
    confirm = on_both.page(str(link["href"]))
    assert text_of(confirm, "delete-count") == "2"
    assert [li.get_text() for li in confirm.select("ul.names li")] == [
        f"Regex {SEARCHED} name",
        "Topic 05",
    ]
    assert by_testid(confirm, "cancel")[0]["href"] == "/web/conversations?q=a.b%28"
    response = on_both.submit(confirm_form(confirm))
    assert flash(on_both, response) == "Deleted 2 conversations."
    assert stored(store) == sorted(set(NEWEST_FIRST) - {uid(5), uid(7)})
    assert stored(store, BOB) == [OTHER]


def test_deleting_the_ticked_ones(store: Store, on_both: Browser) -> None:
    page = on_both.page("/web/conversations")
    ticked = by_testid(page, "delete-selected")[0].find_parent("form")
    assert isinstance(ticked, Tag)
    for box in by_testid(page, "select"):
        if box["value"] in (uid(29), uid(20)):
            box["checked"] = ""
    confirm = soup(on_both.submit(ticked))
    assert text_of(confirm, "delete-count") == "2"
    assert [li.get_text() for li in confirm.select("ul.names li")] == ["Topic 29", "Topic 20"]
    response = on_both.submit(confirm_form(confirm))
    assert flash(on_both, response) == "Deleted 2 conversations."
    assert stored(store) == sorted(set(NEWEST_FIRST) - {uid(29), uid(20)})


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        ([], "tick at least one conversation to delete"),
        (["x"], "ids: not a conversation id: 'x'"),
        ([uid(i) for i in range(501)], "at most 500 conversations at once, got 501"),
    ],
)
def test_ticking_nothing_or_no_conversation_is_a_400(
    alice: Browser, ids: list[str], error: str
) -> None:
    fields = [("csrf", alice.csrf()), ("ticked", "yes"), *(("ids", id_) for id_ in ids)]
    response = alice.post("/web/delete", fields)
    assert response.status_code == 400
    assert text_of(soup(response), "error") == error


def test_when_the_matches_change_nothing_is_deleted(store: Store, on_both: Browser) -> None:
    confirm = on_both.page("/web/delete?q=a.b%28")
    assert text_of(confirm, "delete-count") == "2"
    store.upsert([conversation(ALICE, id=uid(600), name=f"new {SEARCHED}")])
    response = on_both.submit(confirm_form(confirm))
    assert response.status_code == 409
    again = soup(response)
    assert text_of(again, "delete-count") == "3"
    assert stored(store) == sorted([*NEWEST_FIRST, uid(600)])
    assert flash(on_both, on_both.submit(confirm_form(again))) == "Deleted 3 conversations."
    assert stored(store) == sorted(set(NEWEST_FIRST) - {uid(5), uid(7)})


@pytest.mark.parametrize("csrf", [None, "", "0" * 64])
def test_a_post_without_its_form_token_is_refused(
    web_store: Store, alice: Browser, csrf: str | None
) -> None:
    fields = {"q": "Topic", "count": "29", "confirm": "yes"}
    if csrf is not None:
        fields["csrf"] = csrf
    for path in ("/web/delete", f"/web/conversations/{uid(1)}/delete"):
        response = alice.post(path, fields)
        assert response.status_code == 403
        assert text_of(soup(response), "error") == CSRF_FAILED
    assert stored(web_store) == sorted(NEWEST_FIRST)


def test_another_sessions_form_token_is_refused(web_store: Store, alice: Browser, key: str) -> None:
    forged = alice.csrf()
    for other in _browser(web_store):
        other.sign_in(create_key(web_store, ALICE)[0])
        response = other.post(f"/web/conversations/{uid(1)}/delete", {"csrf": forged})
        assert response.status_code == 403
    assert uid(1) in stored(web_store)


def test_any_of_finds_and_deletes_when_one_holds(store: Store) -> None:
    store.upsert(dataset())
    pattern = "(?i)" + re.escape("topic 2")
    either = (
        Condition(FIELDS["name"], Op.REGEX, pattern),
        Condition(FIELDS["messages.content"], Op.REGEX, "note 1$"),
    )
    query = Query(conditions=(Condition(FIELDS["model"], Op.EQ, "gpt-4o"),), any_of=either)
    found = [d["id"] for batch in store.find(ALICE, query) for d in batch]
    expected = [uid(i) for i in (29, 28, 26, 25, 23, 22, 20, 1)]
    assert found == expected
    assert store.count(ALICE, query) == 8
    assert store.delete_matching(ALICE, query, dry_run=True) == sorted(expected)
    assert store.delete_matching(ALICE, query, expect=8) == sorted(expected)
    assert stored(store) == sorted(set(NEWEST_FIRST) - set(expected))


# -- on every answer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/web/",
        "/web/sign-in",
        "/web/conversations",
        f"/web/conversations/{uid(1)}",
        f"/web/conversations/{uid(1)}.json",
        f"/web/conversations/{uid(1)}/delete",
        "/web/delete?q=x",
        "/web/conversations?page=0",
        "/web/nowhere",
        "/web/static/ayeto.css",
    ],
)
def test_every_answer_has_the_security_headers(alice: Browser, path: str) -> None:
    headers = alice.get(path).headers
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_pages_load_only_the_views_own_files(alice: Browser) -> None:
    page = alice.page(f"/web/conversations/{uid(1)}")
    sheets = [link["href"] for link in page.find_all("link", rel="stylesheet")]
    assert sheets == ["/web/static/ayeto.css", "/web/static/code.css"]
    assert page.find_all("style") == []
    assert page.find_all(style=True) == []
    code = alice.get("/web/static/code.css")
    assert code.headers["content-type"] == "text/css; charset=utf-8"
    assert "pre code .k {" in code.text
    assert page.find("html")["lang"] == "en"  # type: ignore[index]


def test_every_control_has_a_label(browser: Browser, key: str) -> None:
    pages = [browser.page("/web/sign-in")]
    browser.sign_in(key)
    pages += [browser.page(f"/web/conversations{path}") for path in ("", f"/{uid(1)}/delete")]
    for page in pages:
        for control in page.find_all(["input", "select"]):
            if control.get("type") == "hidden":
                continue
            labelled = control.has_attr("aria-label") or page.find(
                "label", attrs={"for": str(control.get("id"))}
            )
            assert labelled, control


def test_over_the_rate_limit_is_a_429_page(web_store: Store, key: str) -> None:
    for browser in _browser(web_store, Settings(rate_limit="3/minute", metrics="off")):
        browser.sign_in(key)  # the first of three
        assert browser.get("/web/conversations").status_code == 200
        assert browser.get("/web/conversations").status_code == 200
        response = browser.get("/web/conversations")
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert text_of(soup(response), "error").startswith("rate limit exceeded")
        assert response.headers["content-security-policy"] == CSP


def test_the_view_can_be_turned_off(web_store: Store) -> None:
    settings = Settings(rate_limit=UNLIMITED, metrics="off", web=False)
    for browser in _browser(web_store, settings):
        assert browser.get("/web/sign-in").status_code == 404
        assert "/web" not in browser.get("/openapi.json").text


@pytest.mark.e2e
def test_a_real_server_behind_a_proxy_sets_a_secure_cookie_and_logs_no_key(
    sqlite_url: str,
) -> None:
    key = new_key(sqlite_url, ALICE)
    with serving(sqlite_url, "--forwarded-allow-ips", "127.0.0.1") as server:
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        with httpx.Client(base_url=server.base_url, headers=proxied) as client:
            page = client.get("/web/sign-in")
            # A Secure cookie, which the client here (over plain HTTP to the proxy's side) would
            # not send back by itself; a browser on the HTTPS side does.
            assert "; Secure" in page.headers["set-cookie"]
            client.cookies.set("ayeto_sign_in", page.cookies["ayeto_sign_in"])
            form = soup(page).find("form", action="/web/sign-in")
            assert isinstance(form, Tag)
            csrf = form.find("input", attrs={"name": "csrf"})
            assert isinstance(csrf, Tag)
            response = client.post("/web/sign-in", data={"key": key, "csrf": str(csrf["value"])})
            assert response.status_code == 303
            cookie = response.headers["set-cookie"]
            assert cookie.startswith("ayeto_session=")
            assert "; Secure" in cookie
            assert "HttpOnly" in cookie
            client.cookies.set("ayeto_session", response.cookies["ayeto_session"])
            assert client.get("/web/conversations").status_code == 200
        output = stop(server)
    assert key not in output
    signed_in = [line for line in output.splitlines() if "POST /web/sign-in " in line]
    assert len(signed_in) == 1
    assert " POST /web/sign-in 303 " in signed_in[0]
    assert signed_in[0].endswith("client=203.0.113.9")

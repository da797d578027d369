"""The web view (`/web/`) in a real Chromium, against a real `ayeto serve` on SQLite.

The data comes only through the CLI: `ayeto demo`, then the conversations below (`ayeto import`),
among them hostile ones whose scripts, handlers, frames and images point at a trap server that no
page may ever reach. Every answer the browser shows is compared with the API's own answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Cookie, Dialog, Page, Response

from ayeto.demo import DEMO_USER, OTHER_USER
from tests.browser import Trap, axe_violations, chromium, describe, trap_server
from tests.factories import conversation, img_gen, message
from tests.processes import Server, cli, new_key, serving

pytestmark = pytest.mark.e2e

Document = dict[str, Any]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
INVALID = "API key is invalid"  # the API's 401 detail for every key that does not grant access
ENDED = "session has ended"
PAGE_SIZE = 25

# The imported conversations were all updated on 2026-01-01 (UTC), conversation n at minute n, so
# the newest first order among them is by descending n; the demo's are from other days.
DAY_START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000


def cid(n: int) -> str:
    return f"c0ffee00-0000-4000-8000-{n:012d}"


SHOWCASE = cid(1)
HOSTILE = cid(2)
ZEBRA_NAME, ZEBRA_MESSAGE, ZEBRA_SPACED = cid(3), cid(4), cid(5)
LITERAL, NEAR_MISS = cid(6), cid(7)
PURGE = [cid(8), cid(9), cid(10)]
TICK = [cid(11), cid(12), cid(13)]
LONE = cid(14)
NOJS = [cid(15), cid(16), cid(17)]
STALE = [cid(18), cid(19)]
STALE_LATE = cid(20)
OTHERS = cid(21)  # another user's
PICTURE = cid(22)

HOSTILE_NAME = "<img src=x onerror=alert(1)>Hostile"
REASONING = "The user wants formatting; keep it short."
SHOWCASE_MESSAGES = [
    ("system", "You are concise.", None),
    ("user", "Show me **bold** and a list:\n\n- one\n- two", None),
    (
        "assistant",
        "Here is **bold** text and code:\n\n```python\ndef add(a, b):\n    return a + b\n```",
        REASONING,
    ),
    ("user", "Thanks!", None),
    ("assistant", "You're welcome.", None),
]


def _case(
    n: int,
    name: str,
    contents: list[tuple[str, str, str | None]],
    *,
    model: str = "gpt-4o",
    owner: str = DEMO_USER,
    image_url: str | None = None,
) -> Document:
    updated = DAY_START + n * MINUTE
    messages = [
        message(
            timestamp=updated - MINUTE + i * 1000,
            id=f"d0ffee00-0000-4000-8000-{n * 100 + i:012d}",
            role=role,
            content=content,
            reasoning_content=reasoning,
            model=model if role == "assistant" else None,
        )
        for i, (role, content, reasoning) in enumerate(contents)
    ]
    if image_url is not None:
        messages[-1]["img_gen"] = img_gen(image_url=image_url, timestamp=updated - 1000)
    return conversation(
        owner,
        id=cid(n),
        name=name,
        model=model,
        messages=messages,
        created={"user_id": owner, "timestamp": updated - MINUTE},
        updated={"user_id": owner, "timestamp": updated},
    )


def _said(*contents: str) -> list[tuple[str, str, str | None]]:
    """User and assistant taking turns, without reasoning."""
    return [("user" if i % 2 == 0 else "assistant", c, None) for i, c in enumerate(contents)]


def cases(trap: str) -> list[Document]:
    """The conversations the tests import besides the demo's; hostile ones aim at `trap`."""
    hostile = [
        ("user", "<script>alert(1)</script>", "<script>alert(2)</script>"),
        (
            "assistant",
            "<img src=x onerror=alert(1)> and <b onmouseover=alert(1)>hover me</b>",
            None,
        ),
        ("user", "[click](javascript:alert(1))", None),
        ("assistant", f'<iframe src="{trap}/iframe"></iframe>', None),
        ("user", f"![x]({trap}/planted)", None),
        ("assistant", "That was all.", None),
    ]
    return [
        _case(1, "Markdown showcase", SHOWCASE_MESSAGES, model="o1"),
        _case(2, HOSTILE_NAME, hostile),
        _case(3, "Zebracorn budget", _said("Plan for Q3.", "Sure.")),
        _case(4, "Weekly notes", _said("the zebracorn stampede was loud", "Noted.")),
        _case(5, "Field trip", _said("a zebra corn maze", "Fun.")),
        _case(6, "Algebra", _said("solve a+b (c) now", "Done.")),
        _case(7, "Algebra again", _said("aab c", "Done.")),
        *[_case(8 + i, f"Purgeable {i + 1}", _said("old", "stuff")) for i in range(3)],
        *[_case(11 + i, f"Tickable {'ABC'[i]}", _said("tick", "tock")) for i in range(3)],
        _case(14, "Lone deletion", _said("delete me", "ok")),
        *[_case(15 + i, f"Scriptless {i + 1}", _said("no", "js")) for i in range(3)],
        *[_case(18 + i, f"Quokka {i + 1}", _said("quokka", "facts")) for i in range(2)],
        _case(21, "Somebody else's", _said("private", "x"), owner=OTHER_USER, model="secret-1"),
        _case(
            22, "Generated picture", _said("draw me", "Here it is."), image_url=f"{trap}/img-gen"
        ),
    ]


def import_documents(database_url: str, documents: list[Document], path: Path) -> None:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents))
    cli("import", str(path), "--db", database_url)


@dataclass(frozen=True)
class Site:
    server: Server
    database_url: str
    key: str
    trap: Trap
    directory: Path

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def find(self, body: dict[str, Any]) -> list[Document]:
        """The API's find answer for the demo user."""
        response = httpx.post(
            self.url("/api/v3/conversation/find"), json=body, headers={"uni-api-key": self.key}
        )
        assert response.status_code == 200, response.text
        answer: list[Document] = response.json()
        return answer

    def find_ids(self, body: dict[str, Any]) -> list[str]:
        return [d["id"] for d in self.find(body)]

    def get(self, id_: str) -> httpx.Response:
        return httpx.post(
            self.url("/api/v3/conversation/get"),
            params={"entity_id": id_},
            headers={"uni-api-key": self.key},
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as opened:
        yield opened


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("web")
    database_url = f"sqlite:///{directory / 'ayeto.db'}"
    with trap_server() as trap:
        cli("demo", "--db", database_url)
        import_documents(database_url, cases(trap.base_url), directory / "cases.jsonl")
        key = new_key(database_url, DEMO_USER)
        with serving(database_url) as server:
            yield Site(server, database_url, key, trap, directory)


@pytest.fixture
def dialogs() -> list[str]:
    """Every JavaScript dialog any page opened (none may)."""
    return []


@pytest.fixture
def context_options() -> dict[str, Any]:
    """Options of the test's browser context; a test parametrizes it for others."""
    return {}


@pytest.fixture
def context(
    browser: Browser, dialogs: list[str], context_options: dict[str, Any]
) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 800}, **context_options)
    opened.set_default_timeout(20_000)

    def record(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    opened.on("dialog", record)
    yield opened
    opened.close()
    assert dialogs == []


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, site: Site, key: str | None = None) -> None:
    page.goto(site.url("/web/sign-in"))
    page.get_by_test_id("api-key").fill(key or site.key)
    page.get_by_test_id("sign-in").click()
    page.wait_for_url(site.url("/web/conversations"))


def rows(page: Page) -> list[str]:
    ids: list[str] = page.get_by_test_id("conversation-item").evaluate_all(
        "items => items.map(item => item.dataset.id)"
    )
    return ids


def submit(page: Page, test_id: str) -> Response:
    """Click `test_id` and answer the response of the page it leads to."""
    with page.expect_navigation() as navigation:
        page.get_by_test_id(test_id).click()
    response = navigation.value
    assert response is not None
    return response


def visit(page: Page, url: str) -> Response:
    response = page.goto(url)
    assert response is not None
    return response


def search(page: Page, q: str, *, regex: bool = False) -> Response:
    page.get_by_test_id("search").fill(q)
    page.get_by_test_id("regex").set_checked(regex)
    return submit(page, "apply")


def text(page: Page, test_id: str) -> str:
    return page.get_by_test_id(test_id).inner_text().strip()


def union(site: Site, pattern: str) -> list[str]:
    """The conversations whose name or a message's content `pattern` finds, newest first."""
    found = {
        d["id"]: d
        for field in ("name", "messages.content")
        for d in site.find({"filters": [[field, "regex", pattern]]})
    }
    newest_first = sorted(found.values(), key=lambda d: d["updated"]["timestamp"], reverse=True)
    return [d["id"] for d in newest_first]


# -- signing in and out ----------------------------------------------------------------------------


def test_the_root_sends_to_sign_in_then_to_the_list(page: Page, site: Site) -> None:
    page.goto(site.url("/web/"))
    assert page.url == site.url("/web/sign-in")
    key = page.get_by_test_id("api-key")
    assert key.get_attribute("type") == "password"
    assert key.get_attribute("name") == "key"
    assert page.get_by_label(re.compile("key", re.IGNORECASE)).count() == 1
    sign_in(page, site)
    page.goto(site.url("/web/"))
    assert page.url == site.url("/web/conversations")


def _revoked(site: Site) -> str:
    key = new_key(site.database_url, DEMO_USER)
    cli("keys", "revoke", key, "--db", site.database_url)
    return key


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda site: "ayeto-" + "0" * 64, id="unknown"),
        pytest.param(lambda site: "not-a-key", id="malformed"),
        pytest.param(_revoked, id="revoked"),
        pytest.param(
            lambda site: new_key(site.database_url, DEMO_USER, "--scope", "ayeto.other"),
            id="without-the-conversation-scope",
        ),
    ],
)
def test_a_key_that_does_not_grant_access_is_refused_saying_why(
    page: Page, site: Site, make_key: Any
) -> None:
    page.goto(site.url("/web/sign-in"))
    page.get_by_test_id("api-key").fill(make_key(site))
    response = submit(page, "sign-in")
    assert response.status == 401
    assert page.url == site.url("/web/sign-in")
    assert INVALID in text(page, "error")
    assert page.get_by_test_id("error").get_attribute("role") == "alert"
    assert [c for c in page.context.cookies() if c["name"] == "ayeto_session"] == []


def session_cookie(context: BrowserContext) -> Cookie:
    [cookie] = [c for c in context.cookies() if c["name"] == "ayeto_session"]
    return cookie


def test_signing_in_sets_a_strict_http_only_session_cookie(page: Page, site: Site) -> None:
    sign_in(page, site)
    cookie = session_cookie(page.context)
    assert (cookie["name"], cookie["path"]) == ("ayeto_session", "/web")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Strict", False)
    assert site.key not in cookie["value"]
    assert site.key[len("ayeto-") :] not in page.content()


def test_signing_out_ends_the_session_even_for_a_copied_cookie(
    context: BrowserContext, page: Page, site: Site
) -> None:
    sign_in(page, site)
    kept = session_cookie(context)
    submit(page, "sign-out")
    assert page.url == site.url("/web/sign-in")
    page.goto(site.url("/web/conversations"))
    assert page.url == site.url("/web/sign-in")
    assert ENDED in text(page, "error")
    # The session is ended on the server: the cookie itself, replayed, no longer signs in.
    context.add_cookies([{"name": kept["name"], "value": kept["value"], "url": site.url("/web/")}])
    page.goto(site.url(f"/web/conversations/{SHOWCASE}"))
    assert page.url == site.url("/web/sign-in")
    assert ENDED in text(page, "error")


def test_a_revoked_key_ends_the_session_at_the_next_request(page: Page, site: Site) -> None:
    key = new_key(site.database_url, DEMO_USER)
    sign_in(page, site, key)
    cli("keys", "revoke", key, "--db", site.database_url)
    page.reload()
    assert page.url == site.url("/web/sign-in")
    assert ENDED in text(page, "error")


def test_a_post_without_the_csrf_token_is_refused(page: Page, site: Site) -> None:
    sign_in(page, site)
    forms: list[dict[str, str | float | bool]] = [{}, {"csrf": "forged"}]
    for form in forms:
        answer = page.request.post(site.url("/web/sign-out"), form=form, max_redirects=0)
        assert answer.status == 403, form
    page.goto(site.url("/web/conversations"))
    assert page.url == site.url("/web/conversations")  # still signed in
    # A confirmed deletion whose token was tampered with deletes nothing.
    page.goto(site.url(f"/web/conversations/{PICTURE}/delete"))
    page.locator('main input[name="csrf"]').evaluate("field => { field.value = 'forged'; }")
    assert submit(page, "confirm-delete").status == 403
    assert site.get(PICTURE).status_code == 200


def test_a_key_over_its_rate_limit_gets_a_429_page(page: Page, site: Site) -> None:
    key = new_key(site.database_url, DEMO_USER, "--rate-limit", "10/minute")
    sign_in(page, site, key)
    answers = [visit(page, site.url("/web/conversations")) for _ in range(10)]
    statuses = [answer.status for answer in answers]
    assert 429 in statuses, statuses
    first = statuses.index(429)
    assert set(statuses[:first]) == {200}, statuses
    assert set(statuses[first:]) == {429}, statuses
    assert int(answers[-1].headers["retry-after"]) > 0
    assert page.get_by_test_id("error").is_visible()


# -- the list and the search -----------------------------------------------------------------------


def test_the_list_pages_through_the_api_find_answer(page: Page, site: Site) -> None:
    sign_in(page, site)
    everything = site.find({})
    assert text(page, "match-count") == f"{len(everything)} conversations"
    assert page.get_by_test_id("prev-page").count() == 0
    shown: list[str] = []
    for number in range(1, -(-len(everything) // PAGE_SIZE) + 1):
        start = (number - 1) * PAGE_SIZE
        assert rows(page) == [d["id"] for d in everything[start : start + PAGE_SIZE]], number
        shown += rows(page)
        if start + PAGE_SIZE < len(everything):
            submit(page, "next-page")
    assert page.get_by_test_id("next-page").count() == 0
    assert shown == [d["id"] for d in everything]
    assert number >= 2
    submit(page, "prev-page")
    start = (number - 2) * PAGE_SIZE
    assert rows(page) == [d["id"] for d in everything[start : start + PAGE_SIZE]]


def test_each_row_shows_name_model_message_count_and_updated_time(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.goto(site.url("/web/conversations?q=Markdown+showcase"))
    [row] = page.get_by_test_id("conversation-item").all()
    assert row.get_attribute("data-id") == SHOWCASE
    link = row.get_by_test_id("open")
    assert (link.inner_text().strip(), link.get_attribute("href")) == (
        "Markdown showcase",
        f"/web/conversations/{SHOWCASE}",
    )
    assert "o1" in row.inner_text()
    assert str(len(SHOWCASE_MESSAGES)) in row.inner_text()
    stamp = row.locator("time").get_attribute("datetime")
    assert stamp is not None
    assert datetime.fromisoformat(stamp).timestamp() * 1000 == DAY_START + 1 * MINUTE
    assert row.get_by_test_id("select").get_attribute("value") == SHOWCASE


def test_model_sort_and_order_filter_as_the_api_does(page: Page, site: Site) -> None:
    sign_in(page, site)
    # The models offered are the user's own (another user's "secret-1" is not among them).
    offered = (
        page.get_by_test_id("model")
        .locator("option")
        .evaluate_all("options => options.map(option => option.value)")
    )
    assert [model for model in offered if model] == sorted({d["model"] for d in site.find({})})
    page.get_by_test_id("model").select_option("gpt-4o")
    page.get_by_test_id("sort").select_option("name")
    page.get_by_test_id("order").select_option("asc")
    submit(page, "apply")
    expected = site.find(
        {"filters": [["model", "==", "gpt-4o"]], "sort_key": "name", "sort_order": 0}
    )
    assert text(page, "match-count") == f"{len(expected)} conversations"
    assert rows(page) == [d["id"] for d in expected[:PAGE_SIZE]]
    # The whole query lives in the URL: loading it again shows the same.
    for parameter in ("model=gpt-4o", "sort=name", "order=asc"):
        assert parameter in page.url
    shown = rows(page)
    page.goto(page.url)
    assert rows(page) == shown


def test_the_date_range_filters_on_the_updated_day_inclusive(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.get_by_test_id("from").fill("2026-01-01")
    page.get_by_test_id("to").fill("2026-01-01")
    submit(page, "apply")
    day_end = DAY_START + 24 * 60 * MINUTE
    expected = site.find_ids(
        {"filters": [["updated.timestamp", ">=", DAY_START], ["updated.timestamp", "<", day_end]]}
    )
    assert len(expected) >= 10  # the imported conversations, less any a test deleted already
    assert rows(page) == expected[:PAGE_SIZE]


@pytest.mark.parametrize(
    ("q", "regex", "expected"),
    [
        ("zebracorn", False, [ZEBRA_MESSAGE, ZEBRA_NAME]),  # in a message, in a name
        ("ZEBRACORN", False, [ZEBRA_MESSAGE, ZEBRA_NAME]),  # case-insensitive
        ("a+b (c)", False, [LITERAL]),  # a literal: its metacharacters mean themselves
        (r"zebra\s?corn", True, [ZEBRA_SPACED, ZEBRA_MESSAGE]),  # RE2: case-sensitive
        ("a+b (c)", True, [NEAR_MISS]),  # the same text as a pattern
    ],
)
def test_search_finds_exactly_the_matches(
    page: Page, site: Site, q: str, regex: bool, expected: list[str]
) -> None:
    sign_in(page, site)
    response = search(page, q, regex=regex)
    assert response.status == 200
    assert rows(page) == expected
    assert union(site, q if regex else f"(?i){_quoted(q)}") == expected
    noun = "conversation" if len(expected) == 1 else "conversations"
    assert text(page, "match-count") == f"{len(expected)} {noun}"
    # What was asked stays in the form, and in the URL.
    assert page.get_by_test_id("search").input_value() == q
    assert page.get_by_test_id("regex").is_checked() is regex
    page.goto(page.url)
    assert rows(page) == expected


def _quoted(literal: str) -> str:
    return "".join(f"\\{c}" if c in r"\.+*?()|[]{}^$" else c for c in literal)


def test_a_search_without_matches_says_so(page: Page, site: Site) -> None:
    sign_in(page, site)
    search(page, "no such text anywhere 0xdeadbeef")
    assert rows(page) == []
    assert text(page, "match-count") == "0 conversations"
    assert page.get_by_test_id("empty").is_visible()


def test_a_bad_regex_is_a_400_with_the_api_detail(page: Page, site: Site) -> None:
    sign_in(page, site)
    response = search(page, "(", regex=True)
    assert response.status == 400
    assert text(page, "error").startswith("search: invalid regex: missing ): (")
    assert rows(page) == []


# -- one conversation ----------------------------------------------------------------------------


def open_conversation(page: Page, site: Site, name: str) -> None:
    search(page, name)
    submit(page, "open")


def test_a_conversation_shows_its_messages_rendered(page: Page, site: Site) -> None:
    sign_in(page, site)
    open_conversation(page, site, "Markdown showcase")
    assert page.url == site.url(f"/web/conversations/{SHOWCASE}")
    assert page.locator("h1").inner_text().strip() == "Markdown showcase"
    articles = page.get_by_test_id("message")
    assert articles.evaluate_all("items => items.map(item => item.dataset.role)") == [
        role for role, _, _ in SHOWCASE_MESSAGES
    ]
    question = articles.nth(1)
    assert question.locator("strong").all_inner_texts() == ["bold"]
    assert question.locator("li").all_inner_texts() == ["one", "two"]
    assert "**" not in question.inner_text()
    # The code block is highlighted: its keywords are spans in another colour than plain code.
    code = articles.nth(2).locator("pre")
    assert code.inner_text().strip() == "def add(a, b):\n    return a + b"
    colours = code.evaluate(
        """pre => {
            const colour = e => getComputedStyle(e).color;
            const keywords = [...pre.querySelectorAll('span')]
                .filter(s => s.textContent === 'def' || s.textContent === 'return');
            return [colour(pre), keywords.map(colour)];
        }"""
    )
    plain, keywords = colours
    assert len(keywords) == 2, colours
    assert plain not in keywords, colours
    # The reasoning is folded until asked for.
    [reasoning] = page.get_by_test_id("reasoning").all()
    assert reasoning.evaluate("details => details.tagName") == "DETAILS"
    assert reasoning.get_attribute("open") is None
    assert not reasoning.get_by_text(REASONING).is_visible()
    reasoning.locator("summary").click()
    assert reasoning.get_by_text(REASONING).is_visible()
    # Opening it is the API's get: the access is recorded.
    assert site.get(SHOWCASE).json()["accessed"]["user_id"] == DEMO_USER


def test_exports_download_markdown_and_the_api_get_as_json(page: Page, site: Site) -> None:
    sign_in(page, site)
    page.goto(site.url(f"/web/conversations/{SHOWCASE}"))
    with page.expect_download() as markdown_download:
        page.get_by_test_id("export-markdown").click()
    markdown = markdown_download.value
    assert markdown.suggested_filename.endswith(".md")
    exported = Path(markdown.path()).read_text()
    assert "Markdown showcase" in exported
    for _, content, _ in SHOWCASE_MESSAGES:
        assert content in exported
    with page.expect_download() as json_download:
        page.get_by_test_id("export-json").click()
    document = json_download.value
    assert document.suggested_filename.endswith(".json")
    exported_json = json.loads(Path(document.path()).read_text())
    answer = site.get(SHOWCASE).json()
    # The export is a get too: only the time of the access differs (it recorded one earlier).
    assert exported_json["accessed"]["timestamp"] <= answer["accessed"]["timestamp"]
    exported_json["accessed"]["timestamp"] = answer["accessed"]["timestamp"]
    assert exported_json == answer


@pytest.mark.parametrize("id_", [OTHERS, "c0ffee00-0000-4000-8000-999999999999"])
def test_another_users_or_an_unknown_conversation_is_a_404(
    page: Page, site: Site, id_: str
) -> None:
    sign_in(page, site)
    assert visit(page, site.url(f"/web/conversations/{id_}")).status == 404
    assert page.get_by_test_id("error").is_visible()
    assert "private" not in page.content()


# Without the Content-Security-Policy (bypass_csp), the sanitizing alone must keep it all inert.
@pytest.mark.parametrize(
    "context_options", [{}, {"bypass_csp": True}], ids=["with-csp", "sanitizing-alone"]
)
def test_hostile_content_is_inert(page: Page, site: Site, dialogs: list[str]) -> None:
    sign_in(page, site)
    search(page, "Hostile")
    assert rows(page) == [HOSTILE]
    assert page.get_by_test_id("open").inner_text().strip() == HOSTILE_NAME
    submit(page, "open")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text().strip() == HOSTILE_NAME
    main = page.locator("main")
    assert main.locator("script, iframe, img, object, embed").count() == 0
    handlers = main.evaluate(
        """main => [...main.querySelectorAll('*')].flatMap(e => [...e.attributes]
            .filter(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value))
            .map(a => e.tagName + ' ' + a.name + '=' + a.value))"""
    )
    assert handlers == []
    # Hover the would-be handler, click the would-be javascript: link.
    messages = page.get_by_test_id("message")
    messages.nth(1).get_by_text("hover me").first.hover()
    messages.nth(2).get_by_text("click").first.click()
    page.get_by_test_id("reasoning").locator("summary").click()
    page.wait_for_load_state("networkidle")
    assert page.url == site.url(f"/web/conversations/{HOSTILE}")
    assert dialogs == []
    assert site.trap.requests == []


def test_every_web_answer_sends_the_security_headers_and_comes_from_the_server(
    page: Page, site: Site
) -> None:
    responses: list[Response] = []

    def record(response: Response) -> None:
        responses.append(response)

    page.on("response", record)
    sign_in(page, site)
    page.goto(site.url(f"/web/conversations/{SHOWCASE}"))
    page.goto(site.url("/web/delete?q=zebracorn"))
    page.goto(site.url(f"/web/conversations/{SHOWCASE}/delete"))
    assert len(responses) >= 5
    for response in responses:
        assert response.url.startswith(site.url("/web/")), response.url  # no CDN, nothing else
        headers = response.headers
        assert headers.get("content-security-policy") == CSP, response.url
        assert headers.get("x-content-type-options") == "nosniff", response.url
        assert headers.get("referrer-policy") == "no-referrer", response.url
    scripts = page.locator("script").evaluate_all("items => items.map(s => s.src)")
    assert len(scripts) <= 1
    assert [s for s in scripts if not s.startswith(site.url("/web/static/"))] == []
    paths = httpx.get(site.url("/openapi.json")).json()["paths"]
    assert [path for path in paths if not path.startswith("/api/v3/")] == []


def test_a_generated_image_is_a_link_never_fetched(page: Page, site: Site) -> None:
    sign_in(page, site)
    assert visit(page, site.url(f"/web/conversations/{PICTURE}")).status == 200
    page.wait_for_load_state("networkidle")
    [link] = page.get_by_test_id("image-link").all()
    assert link.get_attribute("href") == f"{site.trap.base_url}/img-gen"
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert page.locator("main img").count() == 0
    assert site.trap.requests == []


# -- deleting --------------------------------------------------------------------------------------


def test_deleting_one_conversation(page: Page, site: Site) -> None:
    sign_in(page, site)
    before = site.find_ids({})
    page.goto(site.url(f"/web/conversations/{LONE}"))
    submit(page, "delete")
    assert urlsplit(page.url).path == f"/web/conversations/{LONE}/delete"
    submit(page, "confirm-delete")
    assert page.url.startswith(site.url("/web/conversations"))
    assert text(page, "flash") == "Deleted 1 conversation."
    assert page.get_by_test_id("flash").get_attribute("role") == "status"
    assert site.get(LONE).status_code == 404
    assert site.find_ids({}) == [id_ for id_ in before if id_ != LONE]


def test_deleting_the_matches_deletes_exactly_the_count_shown(page: Page, site: Site) -> None:
    sign_in(page, site)
    before = site.find_ids({})
    search(page, "purgeable")
    assert union(site, "(?i)purgeable") == list(reversed(PURGE))
    assert text(page, "match-count") == "3 conversations"
    submit(page, "delete-matching")
    assert text(page, "delete-count") == "3"
    for n in range(1, 4):
        assert page.get_by_text(f"Purgeable {n}", exact=True).count() == 1
    submit(page, "confirm-delete")
    assert text(page, "flash") == "Deleted 3 conversations."
    assert site.find_ids({}) == [id_ for id_ in before if id_ not in PURGE]


def test_deleting_the_ticked_conversations(page: Page, site: Site) -> None:
    sign_in(page, site)
    before = site.find_ids({})
    search(page, "tickable")
    assert rows(page) == list(reversed(TICK))
    for id_ in (TICK[0], TICK[2]):
        page.locator(f'[data-testid="select"][value="{id_}"]').check()
    submit(page, "delete-selected")
    assert text(page, "delete-count") == "2"
    submit(page, "confirm-delete")
    assert text(page, "flash") == "Deleted 2 conversations."
    assert site.find_ids({}) == [id_ for id_ in before if id_ not in (TICK[0], TICK[2])]


def test_cancelling_the_deletion_of_everything_deletes_nothing(page: Page, site: Site) -> None:
    sign_in(page, site)
    everything = site.find({})
    before = [d["id"] for d in everything]
    submit(page, "delete-matching")
    assert text(page, "delete-count") == str(len(before))
    assert len(before) > 50
    # The first 50 names, in the list's order, and no more.
    names = [d["name"] for d in everything[:50]]
    assert [n.strip() for n in page.locator("main li").all_inner_texts()] == names
    submit(page, "cancel")
    assert urlsplit(page.url).path == "/web/conversations"
    assert rows(page) == before[:PAGE_SIZE]
    assert site.find_ids({}) == before


def test_a_confirmation_outdated_by_a_new_match_deletes_nothing(page: Page, site: Site) -> None:
    sign_in(page, site)
    search(page, "quokka")
    assert rows(page) == list(reversed(STALE))
    submit(page, "delete-matching")
    assert text(page, "delete-count") == "2"
    late = _case(20, "Quokka 3", _said("quokka", "facts"))
    import_documents(site.database_url, [late], site.directory / "late.jsonl")
    response = submit(page, "confirm-delete")
    assert response.status == 409
    assert text(page, "delete-count") == "3"
    assert union(site, "(?i)quokka") == [STALE_LATE, *reversed(STALE)]
    submit(page, "confirm-delete")
    assert text(page, "flash") == "Deleted 3 conversations."
    assert union(site, "(?i)quokka") == []


@pytest.mark.parametrize("context_options", [{"java_script_enabled": False}])
def test_without_javascript_search_and_delete_work(page: Page, site: Site) -> None:
    sign_in(page, site)
    search(page, "zebracorn")
    assert rows(page) == [ZEBRA_MESSAGE, ZEBRA_NAME]
    search(page, "scriptless")
    assert rows(page) == list(reversed(NOJS))
    page.locator(f'[data-testid="select"][value="{NOJS[1]}"]').check()
    submit(page, "delete-selected")
    assert text(page, "delete-count") == "1"
    submit(page, "confirm-delete")
    assert text(page, "flash") == "Deleted 1 conversation."
    search(page, "scriptless")
    submit(page, "delete-matching")
    assert text(page, "delete-count") == "2"
    submit(page, "confirm-delete")
    assert text(page, "flash") == "Deleted 2 conversations."
    assert union(site, "(?i)scriptless") == []


# -- accessibility ---------------------------------------------------------------------------------


def focus_walk(page: Page, steps: int) -> list[dict[str, Any]]:
    """Press Tab `steps` times from the top: what took the focus each time, and whether it shows
    (its focus ring, and itself within the window: a skip link comes into view)."""
    walk: list[dict[str, Any]] = []
    for _ in range(steps):
        page.keyboard.press("Tab")
        step = page.evaluate(
            """() => {
                    const e = document.activeElement;
                    const style = getComputedStyle(e);
                    const outlined = style.outlineStyle !== 'none'
                        && parseFloat(style.outlineWidth) > 0;
                    // Within a pixel: scrolling a control into view may stop a fraction short.
                    const box = e.getBoundingClientRect();
                    const onScreen = box.width > 0 && box.height > 0 && box.left > -1
                        && box.top > -1 && box.right < innerWidth + 1
                        && box.bottom < innerHeight + 1;
                    return {
                        testid: e.dataset.testid || null,
                        tag: e.tagName.toLowerCase(),
                        href: e.getAttribute('href'),
                        // A date input's calendar button is a part of the browser's own, which
                        // draws its focus ring itself: the input then does not match :focus.
                        inner: !e.matches(':focus'),
                        visible: e.matches(':focus-visible')
                            && (outlined || style.boxShadow !== 'none')
                            && onScreen,
                    };
                }"""
        )
        if step["tag"] == "body":  # past the last control: the focus left the page
            break
        if not step.pop("inner") and step not in walk[-1:]:  # a date input takes three Tabs
            walk.append(step)
    return walk


def test_the_keyboard_reaches_every_control_with_visible_focus(page: Page, site: Site) -> None:
    sign_in(page, site)
    walk = focus_walk(page, 40)
    first = walk[0]
    assert (first["tag"], (first["href"] or "")[:1]) == ("a", "#"), first  # the skip link
    testids = [step["testid"] for step in walk]
    assert "search" in testids, testids
    assert "open" in testids, testids
    assert testids.index("search") < testids.index("open"), testids
    for step in walk:
        assert step["visible"], step
    # The skip link skips the header: the next Tab is the search box's.
    page.goto(site.url("/web/conversations"))
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "search"
    # Enter on a focused row link opens the conversation.
    page.goto(site.url("/web/conversations?q=Markdown+showcase"))
    page.get_by_test_id("open").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(site.url(f"/web/conversations/{SHOWCASE}"))
    walk = focus_walk(page, 20)
    testids = [step["testid"] for step in walk]
    for control in ("sign-out", "export-markdown", "export-json", "delete"):
        assert control in testids, (control, testids)
    assert any(step["tag"] == "summary" for step in walk), walk
    for step in walk:
        assert step["visible"], step


@pytest.mark.parametrize(
    "path",
    [
        "/web/sign-in",
        "/web/conversations",
        f"/web/conversations/{SHOWCASE}",
        "/web/delete?q=zebracorn",
    ],
)
def test_axe_finds_no_serious_violation(page: Page, site: Site, path: str) -> None:
    if path != "/web/sign-in":
        sign_in(page, site)
    assert visit(page, site.url(path)).status == 200
    assert page.locator("html").get_attribute("lang") == "en"
    violations = axe_violations(page)
    assert violations == [], describe(violations)


# -- the tools themselves -----------------------------------------------------------------------


def test_the_checks_fail_where_they_should(page: Page, site: Site, dialogs: list[str]) -> None:
    """axe-core reports an image without text, and a page that loads the trap's image reaches it."""
    page.set_content(f'<html lang="en"><title>t</title><img src="{site.trap.base_url}/probe">')
    page.wait_for_load_state("networkidle")
    assert [v["id"] for v in axe_violations(page)] == ["image-alt"]
    assert site.trap.requests == ["GET /probe"]
    site.trap.requests.clear()
    page.evaluate("alert('probe')")
    assert dialogs == ["alert: probe"]
    dialogs.clear()

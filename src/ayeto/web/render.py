"""Messages as safe HTML, times as `<time>`, and a conversation as a Markdown transcript.

Content is Markdown written by anyone (a model repeating a web page, an imported file), so it is
rendered with raw HTML off (markdown-it-py: tags become text), then sanitized against an
allow-list (nh3), which drops any tag, attribute or URL scheme not on it, whatever the renderer
let through. Images are never shown: fetching one would tell its server who reads what.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, Final

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from ayeto.store import Document, messages_of

TAGS: Final = frozenset(
    {
        "a",
        "blockquote",
        "br",
        "code",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "span",
        "strong",
        "ul",
    }
)
ATTRIBUTES: Final = {"a": {"href", "title"}, "code": {"class"}, "span": {"class"}, "ol": {"start"}}
URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})
LINK_REL: Final = "noopener noreferrer nofollow"
# Where the highlighted tokens' classes apply: code blocks, which markdown-it writes as
# `<pre><code>`.
CODE_SELECTOR: Final = "pre code"
_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Fenced code in a language Pygments knows, as its token spans; "" leaves it plain."""
    if not lang:
        return ""
    try:
        lexer = get_lexer_by_name(lang)
    except ClassNotFound:
        return ""
    return highlight(code, lexer, _FORMATTER)


def _image_as_link(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    """An image as a link to it, named by its alt text: followed only when clicked."""
    token = tokens[idx]
    source = escapeHtml(str(token.attrGet("src") or ""))
    text = escapeHtml(self.renderInlineAsText(token.children or [], options, env)) or source
    return f'<a href="{source}">{text or "image"}</a>'


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight})
    md.add_render_rule("image", _image_as_link)
    return md


_MARKDOWN = _markdown()


@lru_cache(maxsize=1024)
def markdown(text: str) -> Markup:
    """Markdown `text` as sanitized HTML."""
    rendered = _MARKDOWN.render(text)
    clean = nh3.clean(
        rendered,
        tags=set(TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
    )
    return Markup(clean)  # noqa: S704 - sanitized just above


def code_stylesheet() -> str:
    """The CSS of highlighted code, generated from Pygments' default style."""
    return str(_FORMATTER.get_style_defs(CODE_SELECTOR))  # type: ignore[no-untyped-call]


def iso(ms: int) -> str:
    """A timestamp in milliseconds as ISO 8601 in UTC, as `<time datetime>` takes it."""
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def when(ms: int) -> Markup:
    """A timestamp as `<time>`: machine-readable, and readable (UTC, to the minute)."""
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        iso(ms), moment.strftime("%Y-%m-%d %H:%M UTC")
    )


def is_web_url(url: object) -> bool:
    """Whether an image's URL may be offered as a link: http(s) only, never `javascript:`."""
    return isinstance(url, str) and url.lower().startswith(("https://", "http://"))


def transcript(document: Document) -> str:
    """The conversation as readable Markdown: its name, its times, then each message."""
    lines = [
        f"# {document['name']}",
        "",
        f"- Id: {document['id']}",
        f"- Model: {document['model']}",
        f"- Created: {iso(document['created']['timestamp'])}",
        f"- Updated: {iso(document['updated']['timestamp'])}",
        "",
    ]
    for message in messages_of(document):
        lines += [f"## {message['role'].capitalize()} ({iso(message['timestamp'])})", ""]
        if message["reasoning_content"]:
            lines += [f"> {line}".rstrip() for line in message["reasoning_content"].splitlines()]
            lines.append("")
        if message["content"]:
            lines += [message["content"], ""]
        image = _image(message)
        if image is not None:
            prompt, url = image
            lines += [f"Image: {prompt} <{url}>" if url else f"Image: {prompt}", ""]
    return "\n".join(lines)


def _image(message: Document) -> tuple[str, str] | None:
    """The generated image's prompt and URL, if the message (as `messages_of` gives it) has one."""
    data = message["img_gen"]
    if data is None:
        return None
    if not isinstance(data, dict):
        data = {}
    return str(data.get("prompt", "")), str(data.get("image_url", ""))


def image(message: Document) -> tuple[str, str] | None:
    """The generated image of a message as (prompt, URL), the URL empty unless http(s)."""
    found = _image(message)
    if found is None:
        return None
    prompt, url = found
    return prompt, url if is_web_url(url) else ""

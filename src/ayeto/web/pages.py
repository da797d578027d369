"""Rendering pages (Jinja2, autoescaped), the static files, and the headers every answer gets."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ayeto.store import messages_of
from ayeto.web import render

# No inline script or style, nothing from elsewhere: injected markup could not run or load
# anything even if it passed the sanitizer.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Pages show private conversations: no cache keeps them.
NO_STORE: Final = "no-store"
HTML: Final = "text/html; charset=utf-8"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ayeto.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = render.markdown
    env.filters["when"] = render.when
    env.globals["image"] = render.image
    env.filters["messages"] = messages_of
    return env


def base(request: Request) -> str:
    """The web view's path prefix, behind a proxy's root path too."""
    return str(request.scope.get("root_path", "")).removesuffix("/web") + "/web"


def page(
    request: Request,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """`template` rendered for `request`: its own values plus the path prefix and, when signed
    in, the CSRF token of the sign-out form."""
    values = {"base": base(request), "csrf": getattr(request.state, "web_csrf", None)} | context
    body = environment().get_template(template).render(values)
    return HTMLResponse(body, status_code=status, headers=headers)


@cache
def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file under /web/static/, by name: ours, and the code style generated from Pygments."""
    folder = resources.files("ayeto.web") / "static"
    return {
        "ayeto.css": ((folder / "ayeto.css").read_bytes(), "text/css; charset=utf-8"),
        "code.css": (render.code_stylesheet().encode(), "text/css; charset=utf-8"),
    }


def static(name: str) -> Response | None:
    found = static_files().get(name)
    if found is None:
        return None
    content, media_type = found
    return Response(content, media_type=media_type, headers={"Cache-Control": "max-age=3600"})


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every answer of the web view, error pages included, and keeps
    every answer but a static file out of caches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers.setdefault("Cache-Control", NO_STORE)
            await send(message)

        await self.app(scope, receive, send_with_headers)

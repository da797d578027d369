"""Signing in to the web view: session tokens, their cookie, and CSRF tokens bound to them.

The browser holds a random token in an HttpOnly, SameSite=Strict cookie; the database holds only
its SHA-256 digest and the id of the API key it signed in with (never the key). Each request
looks the session up and checks the key again, so a revoked or expired key ends the session at
the next request. A form's CSRF token is an HMAC of the session token: only a page served to the
holder of the cookie can carry it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from ayeto.api.security import admit
from ayeto.api.services import services
from ayeto.auth import Principal, principal_of
from ayeto.clock import now_ms
from ayeto.errors import Unauthorized
from ayeto.store import Store

COOKIE: Final = "ayeto_session"
# Before signing in: the random value the sign-in form's CSRF token is bound to.
SIGN_IN_COOKIE: Final = "ayeto_sign_in"
# What the session cookie holds once signed out: no token, but a sign that there was a session.
ENDED: Final = "ended"
PATH: Final = "/web"
ENDED_TEXT: Final = "Your session has ended; sign in again."
_CSRF_LABEL: Final = b"ayeto web form"


class SignedOut(Exception):
    """The request has no live session: it is sent to the sign-in page."""


@dataclass(frozen=True, slots=True)
class Visitor:
    """A signed-in request: whose it is, and the CSRF token its forms carry."""

    principal: Principal
    csrf: str


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_of(token: str) -> str:
    """The CSRF token of the session (or sign-in form) bound to `token`."""
    return hmac.new(token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_matches(given: str | None, token: str) -> bool:
    return same_secret(given, csrf_of(token))


def same_secret(given: str | None, expected: str) -> bool:
    """Whether `given` is `expected`, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    """A cookie scripts cannot read, sent only to the web view, and only over HTTPS when the
    request came over HTTPS (`--proxy-headers` tells from behind a proxy)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).removesuffix(PATH) + PATH


def live_token(request: Request) -> str | None:
    """The session token the request's cookie carries, if it carries one."""
    token = request.cookies.get(COOKIE)
    return None if not token or token == ENDED else token


async def visitor(request: Request) -> Visitor:
    """The signed-in visitor of `request`, counted against its key's rate limit; SignedOut if
    there is no live session (and the ended session is removed)."""
    token = live_token(request)
    if token is None:
        raise SignedOut
    shared = services(request)
    principal = await shared.call(resolve, shared.store, token_digest(token), now_ms())
    if principal is None:
        raise SignedOut
    found = Visitor(principal, csrf_of(token))
    # The error pages of a signed-in request (a 429 included) still offer to sign out.
    request.state.web_csrf = found.csrf
    await admit(request, principal.key_id, principal.rate_limit)
    return found


def resolve(store: Store, digest: str, now: int) -> Principal | None:
    """The principal of the session with this digest, if it and its key are live at `now`."""
    session = store.web_session(digest, now)
    if session is None:
        return None
    try:
        return principal_of(store, session.key, now)
    except Unauthorized:
        store.delete_web_session(digest)
        return None

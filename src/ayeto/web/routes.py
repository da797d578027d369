"""The web view's pages: sign in and out, the list, a conversation, its exports, and deleting.

Every page asks the store through the API's `Services` (the same thread pool, rate limits and
metrics) and answers HTML; every failure is a page with its status, never a traceback.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.datastructures import ImmutableMultiDict
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from ayeto.api.routes import read_body
from ayeto.api.security import admit, refused
from ayeto.api.services import Services, services
from ayeto.auth import key_record, principal_of
from ayeto.clock import now_ms
from ayeto.errors import (
    AyetoError,
    BadRequest,
    Forbidden,
    MatchesChanged,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from ayeto.query import FIELDS, Condition, Op, Query, parse_uuid
from ayeto.store import ApiKey, Document, Store
from ayeto.web import render
from ayeto.web.pages import base, page, static
from ayeto.web.search import PAGE_SIZE, SORT_LABELS, Search, ticked
from ayeto.web.sessions import (
    COOKIE,
    ENDED,
    ENDED_TEXT,
    SIGN_IN_COOKIE,
    SignedOut,
    Visitor,
    csrf_matches,
    csrf_of,
    live_token,
    new_token,
    resolve,
    same_secret,
    set_cookie,
    token_digest,
    visitor,
)

# A form of this view is a few fields, or the ids of the ticked rows: anything larger is not one.
MAX_FORM_BYTES: Final = 64 * 1024
# The ticked ids (`search.MAX_TICKED`) and the few other fields.
MAX_FORM_FIELDS: Final = 1000
# Names a confirmation lists; the count covers every match.
LISTED: Final = 50
CSRF_FAILED: Final = "the form has expired or did not come from this site; reload it and try again"
FORM_TYPE: Final = "application/x-www-form-urlencoded"
HOUR_MS: Final = 3_600_000
# The cookie that carries "Deleted N conversations." to the next list page.
FLASH: Final = "ayeto_flash"

router = APIRouter()


def _see(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(base(request) + path, status_code=303)


# -- signing in and out --------------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    try:
        await visitor(request)
    except SignedOut:
        return _see(request, "/sign-in")
    return _see(request, "/conversations")


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    shared = services(request)
    token = live_token(request)
    if token is not None:
        live = await shared.call(resolve, shared.store, token_digest(token), now_ms())
        if live is not None:
            return _see(request, "/conversations")
    # A session cookie that leads nowhere: signed out, expired, or its key revoked.
    ended = request.cookies.get(COOKIE) is not None
    return _sign_in_page(request, ENDED_TEXT if ended else None, 200)


def _sign_in_page(request: Request, error: str | None, status: int) -> Response:
    form_token = request.cookies.get(SIGN_IN_COOKIE) or new_token()
    response = page(request, "sign_in.html", status, error=error, form_csrf=csrf_of(form_token))
    if SIGN_IN_COOKIE not in request.cookies:
        set_cookie(response, request, SIGN_IN_COOKIE, form_token)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    shared = services(request)
    form = await _form(request)
    form_token = request.cookies.get(SIGN_IN_COOKIE)
    if form_token is None or not csrf_matches(form.get("csrf"), form_token):
        raise Forbidden(CSRF_FAILED)
    key = form.get("key", "").strip()
    now = now_ms()
    try:
        record = await shared.call(_granting, shared.store, key, now)
    except Unauthorized as exc:
        await refused(request, exc)
        return _sign_in_page(request, exc.detail, 401)
    await admit(request, record.id, record.rate_limit)
    lifetime = shared.settings.web_session_hours * HOUR_MS
    ends = now + lifetime if record.expires_at is None else min(now + lifetime, record.expires_at)
    token = new_token()
    await shared.call(shared.store.add_web_session, token_digest(token), record.id, now, ends)
    response = _see(request, "/conversations")
    # No Max-Age: the browser keeps the cookie until it closes, past the session's end, so that
    # the next page can say the session has ended rather than just ask to sign in.
    set_cookie(response, request, COOKIE, token)
    return response


def _granting(store: Store, key: str, now: int) -> ApiKey:
    """The stored record of `key`, if it grants access (as the API checks it)."""
    record = key_record(store, key)
    principal_of(store, record, now)
    assert record is not None  # principal_of refuses a missing key
    return record


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    shared = services(request)
    form = await _form(request)
    token = live_token(request)
    if token is not None:
        if not csrf_matches(form.get("csrf"), token):
            raise Forbidden(CSRF_FAILED)
        await shared.call(shared.store.delete_web_session, token_digest(token))
    response = _see(request, "/sign-in")
    set_cookie(response, request, COOKIE, ENDED)
    return response


# -- the list ------------------------------------------------------------------------------------


@router.get("/conversations")
async def conversations(request: Request) -> Response:
    shared = services(request)
    who = await visitor(request)
    search = Search.of(request.query_params)
    deleted = request.cookies.get(FLASH, "")
    flash = (
        _deleted(int(deleted))
        if deleted.isascii() and deleted.isdigit() and len(deleted) < 10
        else None
    )
    try:
        query = search.query()
    except BadRequest as exc:
        models = await shared.call(shared.store.models, who.principal.user_id)
        response = _list_page(request, search, [], 0, models, flash, exc.detail, 400)
    else:
        owner = who.principal.user_id
        found, total, models = await shared.call(_listing, shared.store, owner, query)
        response = _list_page(request, search, found, total, models, flash, None, 200)
    if FLASH in request.cookies:
        # Said once.
        set_cookie(response, request, FLASH, "", max_age=0)
    return response


def _after_deleting(request: Request, count: int) -> Response:
    """Back to the list, which says once how many were deleted (a cookie, not the URL: the
    list's URL is its search alone)."""
    response = _see(request, "/conversations")
    set_cookie(response, request, FLASH, str(count))
    return response


def _listing(store: Store, owner: str, query: Query) -> tuple[list[Document], int, list[str]]:
    """A page of the list, the number of matches and the owner's models: one trip to a thread."""
    found = [document for batch in store.find(owner, query) for document in batch]
    return found, store.count(owner, query), store.models(owner)


def _list_page(
    request: Request,
    search: Search,
    found: list[Document],
    total: int,
    models: list[str],
    flash: str | None,
    error: str | None,
    status: int,
) -> Response:
    path = base(request) + "/conversations"
    last = max(1, -(-total // PAGE_SIZE))
    return page(
        request,
        "list.html",
        status,
        search=search,
        conversations=found,
        total=_conversations(total),
        matches=total,
        models=models,
        sorts=SORT_LABELS,
        flash=flash,
        error=error,
        # Past the last page, back to the last one.
        prev_url=search.url(path, page=min(search.page - 1, last)) if search.page > 1 else None,
        next_url=search.url(path, page=search.page + 1) if search.page < last else None,
        delete_url=search.url(base(request) + "/delete", page=1) if total else None,
    )


def _conversations(count: int) -> str:
    return f"{count} conversation" if count == 1 else f"{count} conversations"


def _deleted(count: int) -> str:
    return f"Deleted {_conversations(count)}."


# -- one conversation ----------------------------------------------------------------------------


@router.get("/conversations/{name}")
async def conversation(request: Request, name: str) -> Response:
    shared = services(request)
    who = await visitor(request)
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    if suffix not in ("", "md", "json"):
        raise NotFound(name)
    conversation_id = _uuid(stem)
    owner = who.principal.user_id
    try:
        document = await shared.call(shared.store.get, owner, conversation_id, now_ms())
    except Forbidden:
        # Another user's conversation is none of this user's business, not even its existence.
        raise NotFound(conversation_id) from None
    if suffix == "json":
        return _attachment(orjson.dumps(document), "application/json", f"{conversation_id}.json")
    if suffix == "md":
        text = render.transcript(document).encode()
        return _attachment(text, "text/markdown; charset=utf-8", f"{conversation_id}.md")
    return page(request, "conversation.html", conversation=document)


def _attachment(content: bytes, media_type: str, filename: str) -> Response:
    disposition = f'attachment; filename="{filename}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


def _uuid(text: str) -> str:
    found = parse_uuid(text)
    if found is None:
        raise NotFound(text)
    return found


@router.get("/conversations/{name}/delete")
async def confirm_delete_one(request: Request, name: str) -> Response:
    shared = services(request)
    who = await visitor(request)
    conversation_id = _uuid(name)
    query = Query(conditions=(Condition(FIELDS["id"], Op.EQ, conversation_id),), limit=1)
    count, names = await shared.call(_preview, shared.store, who.principal.user_id, query)
    if not count:
        raise NotFound(conversation_id)
    return _confirmation(
        request,
        count,
        names,
        action=f"/conversations/{conversation_id}/delete",
        cancel=f"{base(request)}/conversations/{conversation_id}",
    )


@router.post("/conversations/{name}/delete")
async def delete_one(request: Request, name: str) -> Response:
    shared = services(request)
    who = await visitor(request)
    _check_csrf(who, await _form(request))
    conversation_id = _uuid(name)
    try:
        await shared.call(shared.store.delete, who.principal.user_id, conversation_id)
    except Forbidden:
        raise NotFound(conversation_id) from None
    return _after_deleting(request, 1)


# -- deleting many -------------------------------------------------------------------------------


@router.get("/delete")
async def confirm_delete_matching(request: Request) -> Response:
    shared = services(request)
    who = await visitor(request)
    search = Search.of(request.query_params)
    query = search.query(paged=False)
    count, names = await shared.call(_preview, shared.store, who.principal.user_id, query)
    fields = list(search.params(page=1).items())
    return _confirmation(
        request,
        count,
        names,
        action="/delete",
        cancel=search.url(base(request) + "/conversations", page=1),
        fields=fields,
    )


@router.post("/delete")
async def delete_many(request: Request) -> Response:
    shared = services(request)
    who = await visitor(request)
    form = await _form(request)
    _check_csrf(who, form)
    owner = who.principal.user_id
    ids = form.getlist("ids")
    if ids or "ticked" in form:
        query = ticked(ids)
        fields = [("ids", id_) for id_ in ids]
        cancel = base(request) + "/conversations"
    else:
        search = Search.of(form)
        query = search.query(paged=False)
        fields = list(search.params(page=1).items())
        cancel = search.url(base(request) + "/conversations", page=1)
    if form.get("confirm") != "yes":
        # Ticked in the list: they are confirmed first, as every deletion is.
        count, names = await shared.call(_preview, shared.store, owner, query)
        return _confirmation(request, count, names, "/delete", cancel, fields)
    expect = form.get("count", "")
    if not (expect.isascii() and expect.isdigit()):
        raise BadRequest(f"count must be the confirmed number of conversations, got {expect!r}")
    try:
        deleted = await shared.call(shared.store.delete_matching, owner, query, expect=int(expect))
    except MatchesChanged:
        # The matches changed since the confirmation: nothing was deleted, and it is asked again.
        count, names = await shared.call(_preview, shared.store, owner, query)
        return _confirmation(request, count, names, "/delete", cancel, fields, status=409)
    return _after_deleting(request, len(deleted))


def _preview(store: Store, owner: str, query: Query) -> tuple[int, list[str]]:
    """How many conversations `query` matches, and the names of the first `LISTED`."""
    first = replace(query, offset=0, limit=LISTED)
    names = [document["name"] for batch in store.find(owner, first) for document in batch]
    return store.count(owner, query), names


def _confirmation(
    request: Request,
    count: int,
    names: list[str],
    action: str,
    cancel: str,
    fields: list[tuple[str, str]] | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        "confirm.html",
        status,
        count=count,
        noun=_conversations(count).partition(" ")[2],
        names=names,
        more=count - len(names),
        action=base(request) + action,
        cancel=cancel,
        fields=fields or [],
        changed=status == 409,
    )


# -- forms ---------------------------------------------------------------------------------------


async def _form(request: Request) -> ImmutableMultiDict[str, str]:
    """The request's URL-encoded form, read up to `MAX_FORM_BYTES` (then 413)."""
    media_type = request.headers.get("content-type", FORM_TYPE).partition(";")[0].strip()
    if media_type.lower() != FORM_TYPE:
        raise BadRequest(f"a form is sent as {FORM_TYPE}, not {media_type!r}")
    body = await read_body(request, MAX_FORM_BYTES, "form")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BadRequest("the form is not valid UTF-8") from None
    try:
        fields = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise BadRequest(f"a form has at most {MAX_FORM_FIELDS} fields") from None
    return ImmutableMultiDict(fields)


def _check_csrf(who: Visitor, form: ImmutableMultiDict[str, str]) -> None:
    if not same_secret(form.get("csrf"), who.csrf):
        raise Forbidden(CSRF_FAILED)


# -- static files and errors ---------------------------------------------------------------------


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    found = static(name)
    if found is None:
        raise NotFound(name)
    return found


_TITLES: Final = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    429: "Too many requests",
    503: "Unavailable",
}


def install_errors(app: FastAPI, shared: Services) -> None:
    async def signed_out(request: Request, _: Exception) -> Response:
        return _see(request, "/sign-in")

    async def ayeto_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AyetoError)
        shared.metrics.error(exc)
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unavailable):
            headers["Retry-After"] = "1"
        return _error_page(request, exc.status_code, exc.detail, headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = "no such page" if exc.status_code == 404 else str(exc.detail)
        return _error_page(request, exc.status_code, detail, dict(exc.headers or {}))

    app.add_exception_handler(SignedOut, signed_out)
    app.add_exception_handler(AyetoError, ayeto_error)
    app.add_exception_handler(HTTPException, http_error)


def _error_page(request: Request, status: int, detail: str, headers: dict[str, str]) -> Response:
    title = _TITLES.get(status, "Error")
    return page(request, "error.html", status, headers, title=title, detail=detail)

"""What `Client` and `AsyncClient` share: settings, requests, the reading of answers and the
retry decision (the paging walk is `paging`). Nothing here does I/O, so the two clients differ
only in how they send and wait.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, TypeVar
from uuid import UUID

import httpx
from pydantic import TypeAdapter, ValidationError

from ayeto import __version__
from ayeto.client import retry
from ayeto.client.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    AyetoError,
    NotFoundError,
    status_error,
)
from ayeto.client.filters import (
    Filter,
    FilterField,
    FilterValue,
    Operator,
    SortKey,
    SortOrder,
    encode_value,
)
from ayeto.models import PublicConversationView

Conversation: TypeAlias = PublicConversationView
# A conversation as the server sent it, decoded from JSON and nothing more.
RawConversation: TypeAlias = dict[str, Any]
FilterLike: TypeAlias = Filter | tuple[FilterField, Operator, FilterValue]

DEFAULT_BASE_URL: Final = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT: Final = httpx.Timeout(60.0, connect=5.0)
# `ayeto serve` closes a connection idle for 5 s (AYETO_TIMEOUT_KEEP_ALIVE): a connection is
# dropped from the pool before that, so that a request is not sent on one the server is closing.
KEEPALIVE_EXPIRY: Final = 4.0
LIMITS: Final = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_EXPIRY
)
DEFAULT_PAGE_SIZE: Final = 200
PATH: Final = "/api/v3/conversation"
USER_AGENT: Final = f"ayeto-python/{__version__}"

_CONVERSATIONS: Final = TypeAdapter(list[Conversation])
_RAW_PAGE: Final = TypeAdapter(list[dict[str, Any]])
_CONVERSATION: Final = TypeAdapter(Conversation)
T = TypeVar("T")


def api_key(given: str | None) -> str:
    key = given if given is not None else os.environ.get("AYETO_API_KEY")
    if not key:
        raise AyetoError("no API key: pass api_key=... or set AYETO_API_KEY")
    return key


def base_url(given: str | httpx.URL | None) -> str:
    url = str(given if given is not None else os.environ.get("AYETO_BASE_URL") or DEFAULT_BASE_URL)
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class Call:
    """One API request; sent again as it is on a retry."""

    endpoint: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def build(
        self,
        client: httpx.Client | httpx.AsyncClient,
        root: str,
        key: str,
        timeout: float | httpx.Timeout | None,
    ) -> httpx.Request:
        extensions = {} if timeout is None else {"timeout": httpx.Timeout(timeout).as_dict()}
        return client.build_request(
            "POST",
            f"{root}{PATH}/{self.endpoint}",
            params=self.params,
            json=self.body,
            headers={"uni-api-key": key, "User-Agent": USER_AGENT, "Accept": "application/json"},
            extensions=extensions,
        )


@dataclass(slots=True)
class Attempts:
    """The retries of one call so far, and whether an earlier attempt may have been carried out
    by the server (its answer was lost), which `delete` needs to know."""

    max_retries: int
    count: int = 0
    maybe_done: bool = False

    def after_error(
        self, request: httpx.Request, exc: httpx.TransportError
    ) -> tuple[APIError, float | None]:
        """The error a transport failure stands for, and the wait before retrying (None: raise)."""
        error: APIError
        if isinstance(exc, httpx.TimeoutException):
            error = APITimeoutError(request)
        else:
            error = APIConnectionError(request, f"connection error: {exc}")
        # Without a connection, the request never reached the server.
        if not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            self.maybe_done = True
        return error, self._next(None)

    def after_response(self, response: httpx.Response) -> float | None:
        """The wait before retrying `response`, or None to keep it."""
        if response.status_code not in retry.RETRY_STATUSES:
            return None
        wait = self._next(retry.retry_after(response.headers))
        # A 429 is refused before the request is looked at; a 503 may come from a database that
        # failed after taking a write.
        if wait is not None and response.status_code == 503:
            self.maybe_done = True
        return wait

    def _next(self, retry_after: float | None) -> float | None:
        if self.count >= self.max_retries:
            return None
        wait = retry.delay(self.count, retry_after)
        if wait is not None:
            self.count += 1
        return wait


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What `delete_where` did: the ids it found, in `updated.timestamp` order, and what came of
    each (with `dry_run`, only `matched`)."""

    #: Every conversation matching the filters when they were looked up.
    matched: list[str]
    #: Those this call deleted.
    deleted: list[str] = field(default_factory=list)
    #: Those gone before their turn came (a 404: deleted meanwhile by someone else).
    gone: list[str] = field(default_factory=list)
    #: Those that could not be deleted, each with the error its last attempt ended in.
    failed: dict[str, APIError] = field(default_factory=dict)


def delete_filters(filters: Iterable[FilterLike]) -> list[FilterLike]:
    """The filters of a `delete_where`, checked: deleting every conversation must be asked for
    with a filter that says so, never by leaving them out."""
    given = list(filters)
    encode_filters(given)  # a malformed filter is a TypeError before any request
    if not given:
        raise ValueError(
            "delete_where takes at least one filter; to delete every conversation, say so: "
            "[F.created.timestamp >= -2**63]"
        )
    return given


def record_deletion(result: DeleteResult, conversation_id: str, error: APIError | None) -> None:
    """Enters how the deletion of one conversation of `result` ended (`error` None: deleted).

    An invalid key fails every deletion alike: it is raised, not recorded for each."""
    if error is None:
        result.deleted.append(conversation_id)
    elif isinstance(error, NotFoundError):
        result.gone.append(conversation_id)
    elif isinstance(error, AuthenticationError):
        raise error
    else:
        result.failed[conversation_id] = error


def find_body(
    filters: Iterable[FilterLike] | None,
    sort_key: SortKey | None,
    sort_order: SortOrder | None,
    limit_from: int | None,
    limit_to: int | None,
) -> dict[str, Any]:
    """A `DbParams` body, with only the keys given."""
    body: dict[str, Any] = {}
    if filters is not None:
        body["filters"] = encode_filters(filters)
    for name, value in (
        ("sort_key", sort_key),
        ("sort_order", sort_order),
        ("limit_from", limit_from),
        ("limit_to", limit_to),
    ):
        if value is not None:
            body[name] = value
    return body


def encode_filters(filters: Iterable[FilterLike]) -> list[list[str | int | None]]:
    encoded = []
    for item in filters:
        if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 3:
            raise TypeError(f"a filter is a (field, operator, value) triple, got {item!r}")
        name, op, value = item
        encoded.append([name, op, encode_value(value)])
    return encoded


def entity_params(conversation_id: UUID | str) -> dict[str, str]:
    return {"entity_id": str(conversation_id)}


def checked(response: httpx.Response) -> Any:
    """The decoded JSON of a successful answer; the error it stands for otherwise."""
    if response.is_success:
        return _json(response)
    raise _status_error(response)


def conversations(response: httpx.Response) -> list[Conversation]:
    return _valid(_CONVERSATIONS, checked(response), response, "a list of conversations")


def raw_conversations(response: httpx.Response) -> list[RawConversation]:
    return _valid(_RAW_PAGE, checked(response), response, "a list of conversations")


def validated(page: list[RawConversation], response: httpx.Response) -> list[Conversation]:
    """Conversations of a page already read from `response`."""
    return _valid(_CONVERSATIONS, page, response, "a list of conversations")


def conversation(response: httpx.Response) -> Conversation:
    return _valid(_CONVERSATION, checked(response), response, "a conversation")


def deleted(response: httpx.Response, conversation_id: UUID | str, attempts: Attempts) -> str:
    """The id `delete` answers. A 404 after an attempt whose answer was lost means that attempt
    deleted the conversation: the call succeeded."""
    if response.status_code == 404 and attempts.maybe_done:
        return str(conversation_id).lower()
    answer = checked(response)
    if not isinstance(answer, str):
        raise APIResponseValidationError(
            f"the server's answer is not the deleted id: {_excerpt(response)}", response
        )
    return answer


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        raise APIResponseValidationError(
            f"the server's answer ({response.status_code}) is not JSON: {_excerpt(response)}",
            response,
        ) from None


def _valid(adapter: TypeAdapter[T], value: object, response: httpx.Response, what: str) -> T:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise APIResponseValidationError(
            f"the server's answer is not {what}: {where}: {first['msg']}", response
        ) from None


def _status_error(response: httpx.Response) -> APIStatusError:
    detail: str | None = None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail = body["detail"]
    return status_error(
        detail if detail is not None else _excerpt(response) or response.reason_phrase,
        response,
        retry.retry_after(response.headers),
    )


def _excerpt(response: httpx.Response, limit: int = 200) -> str:
    text = response.content[:limit].decode("utf-8", "replace").strip()
    return text + ("..." if len(response.content) > limit else "")

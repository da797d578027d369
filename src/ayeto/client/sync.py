"""`Client`: the API over blocking HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx

from ayeto.client import core
from ayeto.client.core import Conversation, DeleteResult, FilterLike, RawConversation
from ayeto.client.errors import APIError
from ayeto.client.filters import SortKey, SortOrder
from ayeto.client.paging import Walk
from ayeto.client.retry import DEFAULT_MAX_RETRIES

_sleep = time.sleep


class Client:
    """A client of one ayeto server (or the hosted service) for one API key.

    `api_key` and `base_url` default to `AYETO_API_KEY` and `AYETO_BASE_URL` (then
    `http://127.0.0.1:8000`). `timeout` is in seconds, or an `httpx.Timeout`. `http_client` is an
    `httpx.Client` of your own (proxies, certificates, transports); the client then uses it as
    it is, applies `timeout` only if given, and leaves it open when it closes.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.api_key = core.api_key(api_key)
        self.base_url = core.base_url(base_url)
        self.max_retries = max_retries
        self._owns_http = http_client is None
        self._timeout = None if http_client is None else timeout
        self._http = http_client or httpx.Client(
            timeout=core.DEFAULT_TIMEOUT if timeout is None else timeout, limits=core.LIMITS
        )

    def find(
        self,
        filters: Iterable[FilterLike] | None = None,
        *,
        sort_key: SortKey | None = None,
        sort_order: SortOrder | None = None,
        limit_from: int | None = None,
        limit_to: int | None = None,
    ) -> list[Conversation]:
        """The conversations matching every filter, sorted, sliced to `[limit_from, limit_to)`."""
        body = core.find_body(filters, sort_key, sort_order, limit_from, limit_to)
        return core.conversations(self._send(core.Call("find", body=body))[0])

    def find_raw(
        self,
        filters: Iterable[FilterLike] | None = None,
        *,
        sort_key: SortKey | None = None,
        sort_order: SortOrder | None = None,
        limit_from: int | None = None,
        limit_to: int | None = None,
    ) -> list[RawConversation]:
        """`find`, answering the conversations as the server sent them: decoded JSON, unchecked."""
        body = core.find_body(filters, sort_key, sort_order, limit_from, limit_to)
        return core.raw_conversations(self._send(core.Call("find", body=body))[0])

    def iter_find(
        self,
        filters: Iterable[FilterLike] | None = None,
        *,
        page_size: int = core.DEFAULT_PAGE_SIZE,
    ) -> Iterator[Conversation]:
        """Every conversation matching the filters, in `updated.timestamp` order, fetched a page
        at a time; each one once, even if the data changes during the walk (see `paging`)."""
        for page, response in self._pages(filters, page_size):
            yield from core.validated(page, response)

    def iter_find_raw(
        self,
        filters: Iterable[FilterLike] | None = None,
        *,
        page_size: int = core.DEFAULT_PAGE_SIZE,
    ) -> Iterator[RawConversation]:
        """`iter_find`, yielding the conversations as the server sent them."""
        for page, _ in self._pages(filters, page_size):
            yield from page

    def get(self, conversation_id: UUID | str) -> Conversation:
        """One conversation; the server records the access (`accessed`)."""
        call = core.Call("get", params=core.entity_params(conversation_id))
        return core.conversation(self._send(call)[0])

    def delete(self, conversation_id: UUID | str) -> str:
        """Deletes a conversation and its messages; answers its id."""
        call = core.Call("delete", params=core.entity_params(conversation_id))
        response, attempts = self._send(call)
        return core.deleted(response, conversation_id, attempts)

    def delete_where(
        self,
        filters: Iterable[FilterLike],
        *,
        dry_run: bool = False,
        page_size: int = core.DEFAULT_PAGE_SIZE,
    ) -> DeleteResult:
        """Deletes every conversation matching the filters, one `delete` each, as the API
        offers it (the hosted service too). The matches are all found first (`iter_find`),
        then deleted in turn; `dry_run` only finds them. Each call retries as any other (429s
        are waited out, as `Retry-After` says); a conversation that still fails is in
        `failed`, one already gone (404) in `gone`. AuthenticationError is raised."""
        given = core.delete_filters(filters)
        matched = [document["id"] for document in self.iter_find_raw(given, page_size=page_size)]
        result = DeleteResult(matched)
        for conversation_id in [] if dry_run else matched:
            try:
                self.delete(conversation_id)
            except APIError as exc:
                core.record_deletion(result, conversation_id, exc)
            else:
                core.record_deletion(result, conversation_id, None)
        return result

    def close(self) -> None:
        """Closes the connections, unless the `httpx.Client` was passed in."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _pages(
        self, filters: Iterable[FilterLike] | None, page_size: int
    ) -> Iterator[tuple[list[dict[str, Any]], httpx.Response]]:
        walk = Walk(core.encode_filters(filters or ()), page_size)
        while (body := walk.next_body()) is not None:
            response = self._send(core.Call("find", body=body))[0]
            yield walk.feed(core.raw_conversations(response), response), response

    def _send(self, call: core.Call) -> tuple[httpx.Response, core.Attempts]:
        attempts = core.Attempts(self.max_retries)
        while True:
            request = call.build(self._http, self.base_url, self.api_key, self._timeout)
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                error, wait = attempts.after_error(request, exc)
                if wait is None:
                    raise error from exc
            else:
                wait = attempts.after_response(response)
                if wait is None:
                    return response, attempts
                response.close()
            _sleep(wait)

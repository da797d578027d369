"""Walking every match of `find`, page by page, while the data changes.

Paging by offset (`limit_from`) misses a conversation whenever one before it leaves its place: a
conversation updated during the walk moves to the end of an `updated.timestamp` order, and the
rest move up by one. So the walk pages by key instead. It asks for the matches in
`updated.timestamp` order (ties by `id`), and each next page for those past the last one seen:

- `updated.timestamp > W`, where W (the watermark) is the last page's last timestamp;
- but first, the rest of the conversations updated exactly at W: `updated.timestamp == W` and
  `id > I`, in `id` order, where I is the last id seen (the filters are all ANDed, so the two
  halves of "after (W, I)" are two requests).

A conversation updated during the walk moves past the watermark and so comes again: its id is
remembered and it is not yielded twice (the walk keeps every id it yielded, 36 characters each).
Conversations deleted during the walk are not yielded if the walk had not reached them; those
updated or created with a timestamp past the watermark are. One whose `updated.timestamp` moves
backward (an older version imported again) is missed if the walk has gone past its new place.
"""

from __future__ import annotations

from typing import Any

import httpx

from ayeto.client.errors import APIResponseValidationError

_ORDER = "updated.timestamp"


class Walk:
    """The next `find` body to send, and what of its answer is new."""

    def __init__(self, filters: list[list[Any]], page_size: int) -> None:
        if not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be an integer of at least 1, got {page_size!r}")
        self._filters = filters
        self._size = page_size
        self._seen: set[str] = set()
        self._watermark: int | None = None
        # Set while the conversations updated at the watermark are being finished.
        self._after_id: str | None = None
        self._done = False

    def next_body(self) -> dict[str, Any] | None:
        """The body of the next page's `find`, or None when the walk is over."""
        if self._done:
            return None
        if self._after_id is not None:
            filters: list[list[Any]] = [
                [_ORDER, "==", self._watermark],
                ["id", ">", self._after_id],
            ]
            return self._body(filters, "id")
        after: list[list[Any]] = [] if self._watermark is None else [[_ORDER, ">", self._watermark]]
        return self._body(after, _ORDER)

    def feed(self, page: list[dict[str, Any]], response: httpx.Response) -> list[dict[str, Any]]:
        """Takes the answer to `next_body()`; returns its conversations not yielded before."""
        fresh = []
        for document in page:
            key = _id(document, response)
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(document)
        full = len(page) >= self._size
        if self._after_id is not None:
            # A short page ends the ties; the walk goes on past the watermark.
            self._after_id = _id(page[-1], response) if full else None
        elif not full:
            self._done = True
        else:
            self._watermark = _updated(page[-1], response)
            self._after_id = _id(page[-1], response)
        return fresh

    def _body(self, extra: list[list[Any]], sort_key: str) -> dict[str, Any]:
        return {
            "filters": [*self._filters, *extra],
            "sort_key": sort_key,
            "sort_order": 0,
            "limit_from": 0,
            "limit_to": self._size,
        }


def _id(document: dict[str, Any], response: httpx.Response) -> str:
    value = document.get("id")
    if not isinstance(value, str):
        raise APIResponseValidationError(
            "the server's answer is not a list of conversations: a conversation has no id",
            response,
        )
    return value


def _updated(document: dict[str, Any], response: httpx.Response) -> int:
    updated = document.get("updated")
    value = updated.get("timestamp") if isinstance(updated, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise APIResponseValidationError(
            "the server's answer is not a list of conversations: "
            "a conversation has no updated.timestamp",
            response,
        )
    return value

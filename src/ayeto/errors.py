"""The errors a request can end in; the API renders each as `{"detail": ...}` with its status.

AyetoError
├── BadRequest           400  malformed parameters, body or filter
│   └── QueryTimeout     400  a query ran past the statement timeout
│       └── ScanTimeout  400  a regex the search index cannot narrow ran past the scan budget
├── Unauthorized         401  missing or invalid API key
├── Forbidden            403  the conversation belongs to someone else
├── NotFound             404  no conversation with that id
├── MatchesChanged       409  a delete by filter matched another number of conversations than
│                             the caller counted: nothing was deleted
├── PayloadTooLarge      413  request body over the size limit
├── RateLimited          429  the key is over its rate limit, or the client sends too many
│                             invalid keys at once; `retry_after` says when to come back
└── Unavailable          503  the database cannot be reached
"""

from __future__ import annotations

from typing import Final

# One text for both databases: a statement past `AYETO_DB_STATEMENT_TIMEOUT_MS` (PostgreSQL's
# `statement_timeout`, SQLite's progress handler in `store.budget`).
QUERY_TIMEOUT: Final = "the query ran past the statement timeout; simplify its filters or regex"


class AyetoError(Exception):
    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(AyetoError):
    status_code = 400


class QueryTimeout(BadRequest):
    pass


class ScanTimeout(QueryTimeout):
    """A `regex` filter on messages that the search index could not narrow (so every message of
    the caller is read) ran past `AYETO_DB_SCAN_TIMEOUT_MS`; the detail says how to narrow it."""


class Unauthorized(AyetoError):
    status_code = 401


class Forbidden(AyetoError):
    status_code = 403


class NotFound(AyetoError):
    status_code = 404

    def __init__(self, entity_id: str) -> None:
        # The spec's own wording (`Example error response`).
        super().__init__(f"not found, id: {entity_id}")


class MatchesChanged(AyetoError):
    """What matched a delete by filter changed since it was counted (`Store.delete_matching`)."""

    status_code = 409

    def __init__(self, count: int, expected: int | None = None) -> None:
        counted = "" if expected is None else f" {expected}"
        super().__init__(
            f"{count} conversations match now, not the{counted} counted before; nothing was deleted"
        )
        self.count = count


class PayloadTooLarge(AyetoError):
    status_code = 413


class RateLimited(AyetoError):
    """Every 429 is raised as this one class: the one place to count them."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(AyetoError):
    status_code = 503

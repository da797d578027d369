"""The `Store` interface: everything the API and the CLI ask of a database.

Documents cross this boundary as plain dicts in the exact shape of `PublicConversationView` (UUIDs
as lowercase strings, timestamps as integer milliseconds), ready to be serialized once. The store
hands out a document's messages as their JSON (`orjson.Fragment`): `messages_of` gives them as a
list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

import orjson

if TYPE_CHECKING:
    # Only named here; importing the filter language (and pydantic) is left to who runs queries.
    from ayeto.query import Query

Document = dict[str, Any]


def messages_of(document: Document) -> list[Document]:
    """The document's messages as a list. The store hands them out as the JSON the API answers
    (`orjson.Fragment`), to be embedded in a response without parsing; this parses them."""
    found = document["messages"]
    if isinstance(found, list):
        return found
    loaded: list[Document] = orjson.loads(orjson.dumps(found))
    return loaded


P = ParamSpec("P")
R = TypeVar("R")


class NotQuick(Exception):
    """A call `Store.quickly` could not answer at once on the calling thread; nothing of it was
    written, so it may be made again, in a worker thread."""


class Queued(Exception):
    """A write `Store.quickly` handed to the store's writer instead of waiting for it: `future`,
    a future of the calling thread's event loop, has the call's outcome once the transaction
    holding the write has committed."""

    def __init__(self, future: asyncio.Future[Any]) -> None:
        super().__init__()
        self.future = future


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: never the plain key, only its SHA-256 digest."""

    id: str
    user_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: int
    last_used_at: int | None = None
    expires_at: int | None = None
    revoked_at: int | None = None
    # Its own rate limit (`limits` notation), instead of the server's default.
    rate_limit: str | None = None


@dataclass(frozen=True, slots=True)
class WebSession:
    """A web view's sign-in, with the API key it signed in with as the key is now."""

    key: ApiKey
    created_at: int
    expires_at: int


class Store(Protocol):
    """A conversation store. Every conversation operation is scoped to one owner (a user id).

    Calls block: the server makes them through `quickly` on its event loop when the store can
    answer them there at once, otherwise from worker threads.
    """

    def quickly(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`function(*args, **kwargs)`, a call of this store's methods, made on the calling
        thread only as far as it is quick: reads within a short budget, no wait for a lock or a
        connection, no write. A write is handed to the store's writer (`Queued`, with the
        call's future); anything else that is not quick raises `NotQuick` before it has written
        anything, and the call is to be made again in a worker thread."""
        ...

    def find(self, owner: str, query: Query) -> Iterator[list[Document]]:
        """The owner's conversations matching `query`, in order, in non-empty batches.

        Which conversations match, and their order, is read once, with the first batch. Every
        later batch is read when asked for, in a transaction of its own, so that nothing is held
        between batches however slowly they are consumed: a conversation deleted in between is
        left out, and one changed in between is as it is then.
        """
        ...

    def count(self, owner: str, query: Query) -> int:
        """How many of the owner's conversations match `query` (its sort and slice aside)."""
        ...

    def models(self, owner: str) -> list[str]:
        """The distinct `model`s of the owner's conversations, in order."""
        ...

    def get(self, owner: str, conversation_id: str, now: int) -> Document:
        """The conversation, after recording that `owner` accessed it at `now`.

        Raises NotFound for an unknown id and Forbidden for someone else's conversation.
        """
        ...

    def delete(self, owner: str, conversation_id: str) -> None:
        """Remove the conversation and its messages atomically; raises like `get`."""
        ...

    def delete_matching(
        self, owner: str | None, query: Query, *, dry_run: bool = False, expect: int | None = None
    ) -> list[str]:
        """The ids of `owner`'s conversations (every owner's when None) matching every condition
        of `query` (its sort, offset and limit are ignored), deleted with their messages in one
        transaction unless `dry_run`. With `expect`, when the number matching differs nothing is
        deleted and `MatchesChanged(count)` is raised.

        The ids come sorted.
        """
        ...

    def upsert(self, documents: Iterable[Document]) -> int:
        """Insert or replace (by id) every document, all in one transaction; returns the count.

        If iterating `documents` raises, nothing is written and the exception propagates.
        """
        ...

    def mirror_watermark(self, user: str, source: str) -> int | None:
        """The highest `updated.timestamp` `ayeto mirror` has copied of `user` from `source`."""
        ...

    def mirror_page(
        self, user: str, source: str, documents: list[Document], watermark: int
    ) -> tuple[int, int]:
        """Store those of `documents` (each `user`'s) that differ from the stored ones, and set
        the watermark, in one transaction; returns how many were new and how many changed."""
        ...

    def mirror_prune(self, user: str, keep: Collection[str]) -> int:
        """Remove every conversation of `user` whose id is not in `keep`; returns how many."""
        ...

    def exclusive(self, name: str) -> AbstractContextManager[bool]:
        """A lock named `name` over every process and host that opens this database, held
        while inside: True when this call holds it, False (at once) when another one does."""
        ...

    def last_run(self, job: str) -> int | None:
        """When `job` last recorded a run (`record_run`); None if it never did."""
        ...

    def record_run(self, job: str, at: int) -> None:
        """Record that `job` ran at `at` (ms)."""
        ...

    def export(self, owner: str | None = None) -> Iterator[Document]:
        """Every conversation (or one owner's) in a stable order, as `upsert` takes them back."""
        ...

    def add_key(self, key: ApiKey, digest: str) -> None: ...

    def key_by_digest(self, digest: str) -> ApiKey | None: ...

    def list_keys(self, user_id: str | None = None) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str | None, digest: str | None, now: int) -> ApiKey | None:
        """Revoke the key with this id or digest; None when there is no such key."""
        ...

    def touch_key(self, key_id: str, now: int) -> None:
        """Record that the key was used at `now`."""
        ...

    def add_web_session(self, digest: str, key_id: str, created_at: int, expires_at: int) -> None:
        """Store a web session by its token's digest; removes every session ended by then."""
        ...

    def web_session(self, digest: str, now: int) -> WebSession | None:
        """The session with this token digest, unless it has ended by `now`."""
        ...

    def delete_web_session(self, digest: str) -> None:
        """End the session with this token digest (nothing happens if there is none)."""
        ...

    def is_ready(self) -> bool:
        """True when the database answers and its schema is current."""
        ...

    def connection_limit(self) -> int | None:
        """How many connections the database accepts from ordinary users; None: no limit."""
        ...

    def serve(self) -> None:
        """This store serves requests from now on, until `close`: on SQLite, its WAL's
        checkpoints are made by a thread of their own, not by the commits requests wait for
        (`store.checkpoints`)."""
        ...

    def close(self) -> None: ...

"""Conversation stores: the `Store` interface and `open_store`, which picks one by URL.

SQLAlchemy is imported when a store is opened, not with this package: the CLI's help and the
modules that only name a `Store` do not pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ayeto.config import ConnectionOptions
from ayeto.store.base import ApiKey, Document, Store, WebSession, messages_of
from ayeto.store.migrations import SchemaNotCurrent

if TYPE_CHECKING:
    from ayeto.store.sql import SqlStore


def open_store(
    url: str,
    options: ConnectionOptions | None = None,
    *,
    create: bool = True,
    on_create: Callable[[], None] | None = None,
) -> Store:
    """Connect to the database at `url`.

    With `create`, its schema is created or upgraded first, and `on_create` is called when there
    was none before (a new database). Without, nothing is written: a database that lacks the
    current schema (or an SQLite file that does not exist) raises SchemaNotCurrent.
    """
    from ayeto.store import dialects, migrations
    from ayeto.store.sql import SqlStore

    options = options or ConnectionOptions()
    readers, writer, inline, dialect = dialects.create(url, options)
    store = SqlStore(
        readers,
        dialect,
        writer,
        scan_timeout_ms=options.scan_timeout_ms,
        inline=inline,
        inline_read_ms=options.inline_read_ms,
    )
    try:
        if not create:
            migrations.require_current(writer, dialect)
        elif migrations.upgrade(writer, dialect) and on_create is not None:
            on_create()
    except Exception:
        store.close()
        raise
    return store


def __getattr__(name: str) -> object:
    if name == "SqlStore":
        from ayeto.store.sql import SqlStore

        return SqlStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ApiKey",
    "ConnectionOptions",
    "Document",
    "SchemaNotCurrent",
    "SqlStore",
    "Store",
    "WebSession",
    "messages_of",
    "open_store",
]

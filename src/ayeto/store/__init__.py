"""Conversation stores: the `Store` interface and `open_store`, which picks one by URL."""

from __future__ import annotations

from ayeto.store import dialects, migrations
from ayeto.store.base import ApiKey, Document, Store
from ayeto.store.dialects import ConnectionOptions
from ayeto.store.sql import SqlStore


def open_store(url: str, options: ConnectionOptions | None = None) -> Store:
    """Connect to the database at `url`, creating or upgrading its schema first."""
    engine, dialect = dialects.create(url, options)
    try:
        migrations.upgrade(engine, dialect)
    except Exception:
        engine.dispose()
        raise
    return SqlStore(engine, dialect)


__all__ = ["ApiKey", "ConnectionOptions", "Document", "SqlStore", "Store", "open_store"]

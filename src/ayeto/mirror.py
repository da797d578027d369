"""`ayeto mirror`: every conversation an API key sees on a source (the hosted service, or another
`ayeto serve`), copied into the local store and kept current.

- Only `find` is called, never `get`: `get` would stamp each conversation's `accessed` on the
  source. So a change of `accessed` alone (someone read a conversation there) is not seen until
  that conversation is next updated.
- Incremental: the source is walked in `updated.timestamp` order (the client's `iter_find_raw`,
  which pages by keyset and skips ids it has yielded) from a watermark kept per user and source in
  the local database (`mirror_state`). The walk starts at `>=` the watermark, so that a
  conversation updated in the same millisecond as the last one copied is not missed; the few at
  the boundary come again and, unchanged, are not written. A run over an unchanged account fetches
  one document to learn the user, and those at the watermark. This relies on the source's
  `updated.timestamp` growing with each change, as the API's does.
- Resumable: every page is stored together with the watermark it reaches, in one transaction;
  killed at any moment (SIGKILL included), the next run goes on from the last page stored.
- Lenient: a document the source served is never refused for what it carries beyond the spec.
  Fields of an `img_gen` beyond `ImgGenMessage`'s are kept as given (`models.ImgGenMessage`);
  unknown fields elsewhere are dropped and counted. A document still invalid without them is
  skipped and named, never the end of the run.
- `prune` walks the whole account (every document is fetched again, the cost of a first run) and
  then removes the user's local conversations the walk did not meet, in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final

from pydantic import ValidationError

from ayeto.client import Client, RawConversation
from ayeto.client.errors import AyetoError
from ayeto.models import BasicLLMMessageView, ModelMeta, PublicConversationView
from ayeto.store.base import Document, Store

DEFAULT_PAGE_SIZE: Final = 200
#: At most this many skipped documents are named; the others are only counted.
REPORTED: Final = 10

_CONVERSATION_FIELDS: Final = frozenset(PublicConversationView.model_fields)
_MESSAGE_FIELDS: Final = frozenset(BasicLLMMessageView.model_fields)
_META_FIELDS: Final = frozenset(ModelMeta.model_fields)
_METAS: Final = ("created", "updated", "accessed")


class NotAnAyetoSource(AyetoError):
    """The source answered `find`, but not with conversations of the API."""


@dataclass(slots=True)
class Summary:
    """What a run did: conversations fetched, new, updated and removed locally; unknown fields
    dropped (by where they were); documents skipped as invalid (the first `REPORTED` named)."""

    fetched: int = 0
    new: int = 0
    updated: int = 0
    removed: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)

    def line(self, seconds: float) -> str:
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        return (
            f"{self.new} new, {self.updated} updated, {self.removed} removed, "
            f"{self.dropped.total()} unknown fields dropped{skipped} "
            f"({self.fetched} fetched, {seconds:.1f} s)"
        )


def source_user(client: Client) -> str | None:
    """The user whose conversations the key sees (the creator of its newest one); None when it
    sees none. This one `find` is also what tells a source that is not the API, or a bad key."""
    page = client.find_raw(sort_key="updated.timestamp", sort_order=1, limit_from=0, limit_to=1)
    if not page:
        return None
    created = page[0].get("created")
    user = created.get("user_id") if isinstance(created, dict) else None
    if not isinstance(user, str):
        raise NotAnAyetoSource("its conversations carry no created.user_id")
    return user.lower()


def mirror(
    client: Client,
    store: Store,
    source: str,
    user: str,
    *,
    prune: bool = False,
    page_size: int = DEFAULT_PAGE_SIZE,
    on_progress: Callable[[Summary], None] | None = None,
    summary: Summary | None = None,
) -> Summary:
    """Copy what changed on `source` for `user` since the last run (with `prune`: everything, and
    remove what the source no longer has), counting in `summary`. Each page is stored as it
    arrives, so an error part way keeps what was stored before it; `summary` says how far."""
    summary = Summary() if summary is None else summary
    stored = store.mirror_watermark(user, source)
    watermark = stored if stored is not None else 0
    filters: list[Any] = []
    if stored is not None and not prune:
        filters.append(("updated.timestamp", ">=", stored))
    seen: set[str] = set()
    for page in _batched(client.iter_find_raw(filters, page_size=page_size), page_size):
        documents = []
        for raw in page:
            summary.fetched += 1
            seen.add(str(raw["id"]).lower())
            watermark = max(watermark, _updated(raw))
            if (document := _known(raw, summary)) is not None:
                documents.append(document)
        new, updated = store.mirror_page(user, source, documents, watermark)
        summary.new += new
        summary.updated += updated
        if on_progress is not None:
            on_progress(summary)
    if prune:
        summary.removed = store.mirror_prune(user, seen)
    return summary


def _known(raw: RawConversation, summary: Summary) -> Document | None:
    """`raw` in store form, without its unknown fields; None (and the reason noted) if it is
    invalid even so."""
    document = _only(raw, _CONVERSATION_FIELDS, "", summary.dropped)
    for meta in _METAS:
        if isinstance(value := document.get(meta), dict):
            document[meta] = _only(value, _META_FIELDS, f"{meta}.", summary.dropped)
    if isinstance(thread := document.get("messages"), list):
        document["messages"] = [
            _only(m, _MESSAGE_FIELDS, "messages.", summary.dropped) if isinstance(m, dict) else m
            for m in thread
        ]
    try:
        return PublicConversationView.model_validate(document).model_dump(mode="json")
    except ValidationError as error:
        summary.skipped += 1
        if len(summary.reasons) < REPORTED:
            first = error.errors(include_url=False, include_input=False)[0]
            where = ".".join(map(str, first["loc"]))
            summary.reasons.append(f"{raw.get('id')}: {where}: {first['msg']}")
        return None


def _only(
    document: dict[str, Any], names: frozenset[str], prefix: str, dropped: Counter[str]
) -> dict[str, Any]:
    kept = {}
    for name, value in document.items():
        if name in names:
            kept[name] = value
        else:
            dropped[prefix + name] += 1
    return kept


def _updated(raw: RawConversation) -> int:
    """Its `updated.timestamp`; 0 (no move of the watermark) when it has none, as an invalid
    document may not."""
    updated = raw.get("updated")
    value = updated.get("timestamp") if isinstance(updated, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _batched(items: Iterable[RawConversation], size: int) -> Iterator[list[RawConversation]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk

"""The list page's query string (search box, filters, sort, page) as a `Query` for the store.

The whole search lives in the URL, so a search can be bookmarked; every value is checked here and
a wrong one is a BadRequest that says which and why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import urlencode

import re2

from ayeto.errors import BadRequest
from ayeto.query import FIELDS, Condition, Op, Query, parse_query, parse_uuid, short

PAGE_SIZE: Final = 25
# The list's sort choices, by the name the URL carries.
SORTS: Final = {"updated": "updated.timestamp", "created": "created.timestamp", "name": "name"}
SORT_LABELS: Final = {"updated": "Last update", "created": "Creation", "name": "Name"}
ORDERS: Final = ("desc", "asc")
# Past this page the offset no longer fits the database's 64-bit integers anyway.
MAX_PAGE: Final = 10**12
# The search box searches the name and every message's content, either of which may match.
SEARCHED: Final = ("name", "messages.content")
# Conversations one confirmation may name by id (the ticked rows of a page, and then some).
MAX_TICKED: Final = 500
_DAY_MS: Final = 86_400_000
# How the API names the first filter in its errors: the search box, when there is one.
_SEARCH_FILTER: Final = "filters[0]: "


@dataclass(frozen=True, slots=True)
class Search:
    """What the list shows: every parameter of its URL, as typed (empty: not given)."""

    q: str = ""
    regex: bool = False
    model: str = ""
    since: str = ""  # `from`, a YYYY-MM-DD day (UTC)
    until: str = ""  # `to`, inclusive
    sort: str = "updated"
    order: str = "desc"
    page: int = 1

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Search:
        """The search of a query string (or a form); BadRequest for a value it cannot hold."""
        sort = params.get("sort") or "updated"
        if sort not in SORTS:
            raise BadRequest(f"sort must be one of {', '.join(SORTS)}, got {short(sort)}")
        order = params.get("order") or "desc"
        if order not in ORDERS:
            raise BadRequest(f"order must be one of {', '.join(ORDERS)}, got {short(order)}")
        raw_page = params.get("page") or "1"
        if not (_whole(raw_page) and 1 <= int(raw_page) <= MAX_PAGE):
            raise BadRequest(
                f"page must be a whole number from 1 to {MAX_PAGE}, got {short(raw_page)}"
            )
        return cls(
            q=params.get("q", ""),
            regex=params.get("regex", "") == "on",
            model=params.get("model", ""),
            since=params.get("from", ""),
            until=params.get("to", ""),
            sort=sort,
            order=order,
            page=int(raw_page),
        )

    def query(self, *, paged: bool = True) -> Query:
        """The store's query for this search: this page of it, or (`paged` off) every match."""
        filters: list[list[object]] = []
        if self.q:
            # Checked as the API checks a filter, so that a bad regex gets the API's own words.
            filters.append(["name", "regex", self.pattern()])
        if self.model:
            filters.append(["model", "==", self.model])
        if self.since:
            filters.append(["updated.timestamp", ">=", _day("from", self.since)])
        if self.until:
            filters.append(["updated.timestamp", "<", _day("to", self.until) + _DAY_MS])
        try:
            parsed = parse_query({"filters": filters})
        except BadRequest as exc:
            # The API's words, but named as the page names it: the search box is filter 0.
            if self.q and exc.detail.startswith(_SEARCH_FILTER):
                raise BadRequest("search: " + exc.detail.removeprefix(_SEARCH_FILTER)) from None
            raise
        conditions = parsed.conditions
        any_of: tuple[Condition, ...] = ()
        if self.q:
            name = conditions[0]
            any_of = (name, replace(name, field=FIELDS[SEARCHED[1]]))
            conditions = conditions[1:]
        return Query(
            conditions=conditions,
            any_of=any_of,
            sort=FIELDS[SORTS[self.sort]],
            descending=self.order == "desc",
            offset=(self.page - 1) * PAGE_SIZE if paged else 0,
            limit=PAGE_SIZE if paged else None,
        )

    def pattern(self) -> str:
        """The RE2 pattern the search box stands for: with "regex" its text, else the text as a
        literal, found in any case."""
        return self.q if self.regex else "(?i)" + re2.escape(self.q)

    def params(self, *, page: int | None = None) -> dict[str, str]:
        """The query string of this search (or of another of its pages), defaults left out."""
        given = {
            "q": self.q,
            "regex": "on" if self.regex else "",
            "model": self.model,
            "from": self.since,
            "to": self.until,
            "sort": "" if self.sort == "updated" else self.sort,
            "order": "" if self.order == "desc" else self.order,
        }
        number = self.page if page is None else page
        if number != 1:
            given["page"] = str(number)
        return {name: value for name, value in given.items() if value}

    def url(self, path: str, *, page: int | None = None) -> str:
        params = self.params(page=page)
        return f"{path}?{urlencode(params)}" if params else path


def ticked(ids: Iterable[str]) -> Query:
    """The query for conversations ticked in the list, by id; BadRequest for a wrong id."""
    canonical: list[str] = []
    for id_ in ids:
        parsed = parse_uuid(id_)
        if parsed is None:
            raise BadRequest(f"ids: not a conversation id: {short(id_)}")
        if parsed not in canonical:
            canonical.append(parsed)
    if not canonical:
        raise BadRequest("tick at least one conversation to delete")
    if len(canonical) > MAX_TICKED:
        raise BadRequest(f"at most {MAX_TICKED} conversations at once, got {len(canonical)}")
    field = FIELDS["id"]
    return Query(any_of=tuple(Condition(field, Op.EQ, id_) for id_ in canonical))


def _whole(text: str) -> bool:
    """Whether `text` is a whole number short enough to read (ASCII digits only)."""
    return text.isascii() and text.isdigit() and len(text) <= len(str(MAX_PAGE))


def _day(name: str, text: str) -> int:
    """Milliseconds at the start of the UTC day `text` (YYYY-MM-DD)."""
    try:
        day = dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD, got {short(text)}")
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return int(start.timestamp()) * 1000

"""The watch list page: its query (parsed strictly: a bad value is the user's to fix, a 400 page)
and the one page of trials it asks for (`store.browse`, LIMIT/OFFSET in SQL).

Tags and sources live in the watchlist, not the trials table: a tag or source filter becomes the set
of NCT IDs to keep (or, for trials found by the whole-registry poll, the watched ones to leave out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from math import ceil

from watcher.config import Config
from watcher.models import Trial
from watcher.store import Store
from watcher.store.browse import SORTS, BrowseFilter, BrowsePage
from watcher.store.discovery import watched_trials
from watcher.views.changes import QueryError

SOURCES = ("listed", "search", "registry")
PER_PAGE = 50
MAX_DAYS = 3650


@dataclass(frozen=True, slots=True)
class ListQuery:
    text: str = ""
    tag: str = ""
    status: str = ""
    source: str = ""
    errors: bool = False
    days: int | None = None
    sort: str = "changed"
    page: int = 1

    def as_params(self, **changes: object) -> dict[str, object]:
        """The query string's values (defaults left out), with `changes` applied: for page links."""
        query = replace(self, **changes)  # type: ignore[arg-type]
        return {
            "q": query.text,
            "tag": query.tag,
            "status": query.status,
            "source": query.source,
            "errors": "1" if query.errors else "",
            "days": query.days or "",
            "sort": "" if query.sort == "changed" else query.sort,
            "page": query.page if query.page > 1 else "",
        }


def whole_number(params: Mapping[str, str], name: str, *, low: int, high: int) -> int | None:
    """An optional integer parameter within [low, high]; anything else is a `QueryError` naming it."""
    raw = params.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise QueryError(f"{name}={raw!r}: expected a whole number from {low} to {high}")
    return int(raw)


def one_of(params: Mapping[str, str], name: str, choices: tuple[str, ...], default: str = "") -> str:
    raw = params.get(name, "").strip()
    if raw and raw not in choices:
        raise QueryError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
    return raw or default


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """The watch list's query string, checked: unknown sorts, sources or numbers are refused."""
    text = params.get("q", "").strip()
    if len(text) > 200:
        raise QueryError("q: at most 200 characters")
    errors = params.get("errors", "").strip()
    if errors not in ("", "0", "1", "on", "true"):
        raise QueryError(f"errors={errors!r}: expected 1 or nothing")
    return ListQuery(
        text=text,
        tag=params.get("tag", "").strip()[:100],
        status=params.get("status", "").strip()[:40],
        source=one_of(params, "source", SOURCES),
        errors=errors not in ("", "0"),
        days=whole_number(params, "days", low=1, high=MAX_DAYS),
        sort=one_of(params, "sort", SORTS, "changed"),
        page=whole_number(params, "page", low=1, high=1_000_000) or 1,
    )


def _kept(query: ListQuery, trials: tuple[Trial, ...]) -> tuple[set[str] | None, set[str]]:
    """(only these, not these) for the query's tag and source."""
    only: set[str] | None = None
    exclude: set[str] = set()
    if query.tag:
        only = {t.nct_id for t in trials if query.tag in t.tags}
    if query.source == "listed":
        listed = {t.nct_id for t in trials if t.source is None}
        only = listed if only is None else only & listed
    elif query.source == "search":
        found = {t.nct_id for t in trials if t.source is not None}
        only = found if only is None else only & found
    elif query.source == "registry":
        exclude = {t.nct_id for t in trials}
    return only, exclude


@dataclass(frozen=True, slots=True)
class ListPage:
    query: ListQuery
    page: BrowsePage
    pages: int
    first: int
    last: int
    has_next: bool
    trial_tags: dict[str, tuple[str, ...]]
    tags: list[str]
    statuses: list[str]


def list_page(config: Config, store: Store, query: ListQuery, *, now: datetime, per_page: int = PER_PAGE) -> ListPage:
    trials = watched_trials(config, store.discovery)
    only, exclude = _kept(query, trials)
    where = BrowseFilter(
        text=query.text,
        status=query.status or None,
        with_errors=query.errors,
        changed_since=now - timedelta(days=query.days) if query.days else None,
        only=only,
        exclude=exclude,
        sort=query.sort,
        offset=(query.page - 1) * per_page,
        limit=per_page,
    )
    page = store.browse.page(where)
    first = where.offset + 1 if page.rows else 0
    return ListPage(
        query=query,
        page=page,
        pages=max(1, ceil(page.total / per_page)),
        first=first,
        last=where.offset + len(page.rows),
        has_next=query.page < ceil(page.total / per_page) or (page.capped and len(page.rows) == per_page),
        trial_tags=tag_map(trials),
        tags=sorted({tag for t in trials for tag in t.tags}),
        statuses=store.browse.statuses(),
    )


def tag_map(trials: tuple[Trial, ...]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for trial in trials:
        if trial.tags:
            found[trial.nct_id] = tuple(dict.fromkeys((*found.get(trial.nct_id, ()), *trial.tags)))
    return found

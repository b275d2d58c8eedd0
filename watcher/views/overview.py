"""The pages across trials: changes (with their filters and exports), upcoming dates and their
slips, saved searches and what they found. Read-only queries over the store, plain values out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from watcher.config import Config
from watcher.models import SEVERITY_RANK, StoredChange
from watcher.store import Store
from watcher.store.discovery import Match, watched_trials
from watcher.views.changes import QueryError, select_changes
from watcher.views.chart import parse_day
from watcher.views.watch import MAX_DAYS, whole_number

CHANGES_SHOWN = 500
DATE_FIELDS = {"status.primaryCompletionDate": "Primary completion", "status.completionDate": "Completion"}
FIELD_OF = {label: field for field, label in DATE_FIELDS.items()}
DATES_PER_PAGE = 50
MAX_DATES_PAGE = 200
RESULTS_DUE = timedelta(days=365)  # results are due a year after primary completion (42 CFR 11.44)
DATE_RANGES = (
    ("primary_completion", "Primary completion", timedelta(0)),
    ("completion", "Completion", timedelta(0)),
    ("primary_completion", "Results due", RESULTS_DUE),
)
"""(column, label, offset): each kind of upcoming date is its column's date plus the offset."""


@dataclass(frozen=True, slots=True)
class ChangesQuery:
    days: int = 7
    severity: str = ""
    field: str = ""
    tag: str = ""


def parse_changes_query(params: Mapping[str, str]) -> ChangesQuery:
    severity = params.get("severity", "").strip()
    if severity and severity not in SEVERITY_RANK:
        raise QueryError(f"severity={severity!r}: expected one of {', '.join(SEVERITY_RANK)}")
    field = params.get("field", "").strip()
    if len(field) > 200:
        raise QueryError("field: at most 200 characters")
    return ChangesQuery(
        days=whole_number(params, "days", low=1, high=MAX_DAYS) or 7,
        severity=severity,
        field=field,
        tag=params.get("tag", "").strip()[:100],
    )


def changes_across(config: Config, store: Store, query: ChangesQuery, *, now: datetime) -> list[StoredChange]:
    """Changes of the last `days` (newest first) matching the query; a tag narrows to its trials."""
    nct_ids = None
    if query.tag:
        nct_ids = [t.nct_id for t in watched_trials(config, store.discovery) if query.tag in t.tags]
    found = store.changes.across(since=now - timedelta(days=query.days), nct_ids=nct_ids)
    chosen = select_changes(
        found,
        fields=[query.field] if query.field else [],
        min_severity=query.severity or None,
        include_bookkeeping=config.settings.include_bookkeeping,
    )
    return chosen[::-1]


@dataclass(frozen=True, slots=True)
class UpcomingDate:
    when: str
    what: str
    nct_id: str
    title: str | None
    slips: list[tuple[str | None, str | None]]


@dataclass(frozen=True, slots=True)
class DatesQuery:
    since: date | None = None  # `from`: the first day shown (today when absent or past)
    page: int = 1


@dataclass(frozen=True, slots=True)
class DatesPage:
    query: DatesQuery
    dates: list[UpcomingDate]
    first_day: date
    more: bool  # a next page exists


def parse_dates_query(params: Mapping[str, str]) -> DatesQuery:
    raw = params.get("from", "").strip()
    since = None
    if raw:
        since = parse_day(raw) if len(raw) == 10 else None
        if since is None:
            raise QueryError(f"from={raw!r}: expected a date such as 2027-06-30")
    return DatesQuery(since=since, page=whole_number(params, "page", low=1, high=MAX_DATES_PAGE) or 1)


def upcoming_dates(store: Store, query: DatesQuery, *, today: date, per_page: int = DATES_PER_PAGE) -> DatesPage:
    """Primary completion, completion and results-due dates from the first day on, soonest first,
    each with its slips (every stored change of that date, oldest first), one page at a time.

    Each kind of date is a range of its own column's index (results due a year after primary
    completion: the primary completion index read from a year earlier), so a page reads the first
    `page * per_page` trials of each range, never the whole table; the three are merged here.
    Deeper than `MAX_DATES_PAGE` pages, `from=` starts the list at a later day.
    """
    first = max(today, query.since or today)
    wanted = query.page * per_page + 1
    found: list[UpcomingDate] = []
    for column, label, offset in DATE_RANGES:
        for nct_id, title, when in store.browse.dated(column, (first - offset).isoformat(), wanted):
            day = parse_day(when)
            if day is not None and day + offset >= first:
                shown_as = (day + offset).isoformat() if offset else when  # the registry's own spelling
                found.append(UpcomingDate(shown_as, label, nct_id, title, []))
    found.sort(key=lambda d: (parse_day(d.when) or first, d.nct_id, d.what))
    shown = found[(query.page - 1) * per_page : query.page * per_page]
    slips = date_slips(store, sorted({d.nct_id for d in shown}))
    dates = [replace(d, slips=slips.get((d.nct_id, FIELD_OF.get(d.what, "")), [])) for d in shown]
    return DatesPage(query, dates, first, len(found) > query.page * per_page)


def date_slips(store: Store, nct_ids: list[str]) -> dict[tuple[str, str], list[tuple[str | None, str | None]]]:
    """Every stored change of these trials' primary completion and completion dates, oldest first."""
    slips: dict[tuple[str, str], list[tuple[str | None, str | None]]] = {}
    if not nct_ids:
        return slips
    for item in store.changes.across(nct_ids=nct_ids):
        if item.change.field in DATE_FIELDS and item.change.change == "changed":
            old, new = item.change.old, item.change.new
            slips.setdefault((item.nct_id, item.change.field), []).append(
                (old if isinstance(old, str) else None, new if isinstance(new, str) else None)
            )
    return slips


@dataclass(frozen=True, slots=True)
class SearchView:
    name: str
    tag: str
    watch: bool
    matches: list[Match]


def searches_view(config: Config, store: Store) -> list[SearchView]:
    matches = store.discovery.matches()
    return [
        SearchView(
            s.name,
            s.tag,
            s.watch,
            sorted((m for m in matches if m.search == s.name), key=lambda m: m.first_seen_at, reverse=True),
        )
        for s in config.watchlist.searches
    ]

"""The pages across trials: changes (with their filters and exports), upcoming dates and their
slips, saved searches and what they found. Read-only queries over the store, plain values out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from watcher.config import Config
from watcher.models import SEVERITY_RANK, StoredChange
from watcher.store import Store
from watcher.store.browse import BrowseFilter
from watcher.store.discovery import Match, watched_trials
from watcher.views.changes import QueryError, select_changes
from watcher.views.chart import parse_day
from watcher.views.watch import MAX_DAYS, whole_number

CHANGES_SHOWN = 500
DATE_FIELDS = (
    ("status.primaryCompletionDate", "Primary completion"),
    ("status.completionDate", "Completion"),
)
RESULTS_DUE = timedelta(days=365)  # results are due a year after primary completion (42 CFR 11.44)


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


def upcoming_dates(store: Store, *, today: date, limit: int = 500) -> list[UpcomingDate]:
    """Primary completion, completion and results-due dates from today on, soonest first, each with
    its slips (every stored change of that date, oldest first)."""
    found: list[UpcomingDate] = []
    slips: dict[tuple[str, str], list[tuple[str | None, str | None]]] = {}
    for item in store.changes.across(since=None):
        if item.change.field in dict(DATE_FIELDS) and item.change.change == "changed":
            old, new = item.change.old, item.change.new
            slips.setdefault((item.nct_id, item.change.field), []).append(
                (old if isinstance(old, str) else None, new if isinstance(new, str) else None)
            )
    rows = store.browse.page(BrowseFilter(sort="date", limit=limit * 4)).rows  # soonest primary completion first
    for row in rows:
        primary = parse_day(row.primary_completion)
        latest = store.versions.latest(row.nct_id) if primary is not None and primary >= today - RESULTS_DUE else None
        if latest is None:
            continue
        status = (latest.record.get("protocolSection") or {}).get("statusModule") or {}
        for field, label in DATE_FIELDS:
            value = (status.get(field.split(".")[1] + "Struct") or {}).get("date")
            day = parse_day(value)
            if day is not None and day >= today:
                found.append(UpcomingDate(str(value), label, row.nct_id, row.title, slips.get((row.nct_id, field), [])))
        if primary is not None and primary + RESULTS_DUE >= today:
            due = (primary + RESULTS_DUE).isoformat()
            found.append(UpcomingDate(due, "Results due", row.nct_id, row.title, []))
    found.sort(key=lambda d: (parse_day(d.when) or today, d.nct_id))
    return found[:limit]


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

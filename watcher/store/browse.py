"""The watch list as the web view pages through it (`store.browse`): one SQL query per page.

Filters and sorting run in the database with LIMIT/OFFSET, so a list of 500,000 trials costs one
page of rows, never the whole table. What the trials table cannot answer (tags and sources live in
the watchlist) arrives as a set of NCT IDs to keep or leave out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from watcher.store.blobstore import chunks
from watcher.store.schema import SnapshotRow, TrialRow

SORTS = ("changed", "date", "id", "title")


@dataclass(frozen=True, slots=True)
class BrowseFilter:
    """One page of the watch list. `only`: keep these trials (a tag, a source); `exclude`: leave these out."""

    text: str = ""
    status: str | None = None
    with_errors: bool = False
    changed_since: datetime | None = None
    only: Collection[str] | None = None
    exclude: Collection[str] = ()
    sort: str = "changed"
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class TrialRowView:
    """One line of the watch list."""

    nct_id: str
    title: str | None
    overall_status: str | None
    sponsor: str | None
    conditions: str | None
    primary_completion: str | None
    last_changed_at: datetime | None
    last_checked_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    versions: int


@dataclass(frozen=True, slots=True)
class BrowsePage:
    rows: list[TrialRowView]
    total: int


class Browse:
    """Each method is one read-only transaction."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    def page(self, where: BrowseFilter) -> BrowsePage:
        conditions = _conditions(where)
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(TrialRow).where(*conditions)) or 0
            query = select(TrialRow).where(*conditions).order_by(*_order(where.sort))
            rows = list(s.scalars(query.offset(where.offset).limit(where.limit)))
            counts = _version_counts(s, [r.nct_id for r in rows])
            return BrowsePage([_view(r, counts.get(r.nct_id, 0)) for r in rows], total)

    def statuses(self) -> list[str]:
        """The overall statuses stored, for the filter's choices."""
        with self._session() as s:
            found = s.scalars(select(TrialRow.overall_status).where(TrialRow.overall_status.is_not(None)).distinct())
            return sorted(str(v) for v in found)

    def changed_since(self, since: datetime | None) -> list[str]:
        """The trials with a version fetched after `since` (all when None), for the static site's rebuild."""
        with self._session() as s:
            query = select(SnapshotRow.nct_id).distinct()
            if since is not None:
                query = query.where(SnapshotRow.fetched_at > since)
            return sorted(s.scalars(query))

    def latest_versions(self) -> dict[str, int]:
        """Each stored trial's newest version number: what the static site compares with its manifest."""
        with self._session() as s:
            query = select(SnapshotRow.nct_id, func.max(SnapshotRow.version)).group_by(SnapshotRow.nct_id)
            return {r[0]: r[1] for r in s.execute(query)}

    def all_rows(self) -> list[TrialRowView]:
        """Every trial with a stored version, newest change first (the static site's index)."""
        with self._session() as s:
            counts = {
                r[0]: r[1] for r in s.execute(select(SnapshotRow.nct_id, func.count()).group_by(SnapshotRow.nct_id))
            }
            rows = s.scalars(select(TrialRow).order_by(*_order("changed")))
            return [_view(r, counts[r.nct_id]) for r in rows if r.nct_id in counts]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _conditions(where: BrowseFilter) -> list[Any]:
    found: list[Any] = []
    if where.text.strip():
        pattern = _like(where.text.strip())
        columns = (TrialRow.nct_id, TrialRow.title, TrialRow.conditions, TrialRow.sponsor)
        found.append(or_(*(func.lower(func.coalesce(c, "")).like(pattern, escape="\\") for c in columns)))
    if where.status:
        found.append(TrialRow.overall_status == where.status)
    if where.with_errors:
        found.append(TrialRow.consecutive_failures > 0)
    if where.changed_since is not None:
        found.append(TrialRow.last_changed_at >= where.changed_since)
    if where.only is not None:
        found.append(TrialRow.nct_id.in_(sorted(where.only)))
    if where.exclude:
        found.append(TrialRow.nct_id.not_in(sorted(where.exclude)))
    return found


def _order(sort: str) -> list[Any]:
    # NULLS LAST (the same on SQLite and PostgreSQL) lets both read the sort column's index in order
    if sort == "date":  # the next primary completion first; trials without a date last
        return [TrialRow.primary_completion.asc().nulls_last(), TrialRow.nct_id]
    if sort == "id":
        return [TrialRow.nct_id]
    if sort == "title":
        return [func.lower(func.coalesce(TrialRow.title, "")), TrialRow.nct_id]
    return [TrialRow.last_changed_at.desc().nulls_last(), TrialRow.nct_id]


def _version_counts(s: Session, nct_ids: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chunk in chunks(list(nct_ids), 500):
        query = select(SnapshotRow.nct_id, func.count()).where(SnapshotRow.nct_id.in_(chunk))
        counts.update({r[0]: r[1] for r in s.execute(query.group_by(SnapshotRow.nct_id))})
    return counts


def _view(row: TrialRow, versions: int) -> TrialRowView:
    return TrialRowView(
        nct_id=row.nct_id,
        title=row.title,
        overall_status=row.overall_status,
        sponsor=row.sponsor,
        conditions=row.conditions,
        primary_completion=row.primary_completion,
        last_changed_at=row.last_changed_at,
        last_checked_at=row.last_checked_at,
        consecutive_failures=row.consecutive_failures or 0,
        last_error=row.last_error,
        versions=versions,
    )

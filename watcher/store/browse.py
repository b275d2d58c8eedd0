"""The watch list as the web view pages through it (`store.browse`): one SQL query per page.

Filters and sorting run in the database with LIMIT/OFFSET, so a list of 500,000 trials costs one
page of rows, never the whole table. What the trials table cannot answer (tags and sources live in
the watchlist) arrives as a set of NCT IDs to keep or leave out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from watcher.store.blobstore import chunks
from watcher.store.schema import SnapshotRow, TrialRow
from watcher.store.search import search_condition, sqlite_words_count

SORTS = ("changed", "date", "id", "title")
COUNT_CAP = 10_000  # a page counts its matches up to here ("more than 10,000"), not all 500,000
FEW_MATCHES = 2_000  # a text search matching more: walk the sort's index (see `search_condition`)
STREAMED = 2_000  # rows fetched at once by the streamed reads
_EPOCH = datetime.min.replace(tzinfo=UTC)
DATE_COLUMNS = {"primary_completion": TrialRow.primary_completion, "completion": TrialRow.completion}


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
    total: int  # at most COUNT_CAP + 1
    capped: bool = False  # more than COUNT_CAP trials match: `total` is a lower bound


class Browse:
    """Each method is one read-only transaction."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]], *, dialect: str = "sqlite") -> None:
        self._session = session
        self._dialect = dialect

    def page(self, where: BrowseFilter) -> BrowsePage:
        """One page: the count (stopped past `COUNT_CAP`), then the page's keys from the sort's index
        (`nct_id` ends every sort index, so OFFSET walks index entries, not rows), then its 50 rows."""
        conditions = _conditions(where, self._dialect)
        with self._session() as s:
            settings = count_settings(where, self._dialect)
            for setting in settings:
                s.execute(text(setting))
            total = s.scalar(count_statement(where, self._dialect)) or 0
            if settings:  # the count alone was told; the page's own query is planned as usual
                s.execute(text("SET LOCAL enable_seqscan TO DEFAULT"))
            if where.text.strip() and total > FEW_MATCHES:
                conditions = _conditions(where, self._dialect, many=True)
            order = _order(where.sort)
            keys = select(TrialRow.nct_id).where(*conditions).order_by(*order).offset(where.offset).limit(where.limit)
            rows = list(s.scalars(select(TrialRow).where(TrialRow.nct_id.in_(keys.scalar_subquery())).order_by(*order)))
            counts = _version_counts(s, [r.nct_id for r in rows])
            views = [_view(r, counts.get(r.nct_id, 0)) for r in rows]
            return BrowsePage(views, total, capped=total > COUNT_CAP)

    def dated(self, column: str, since: str, limit: int) -> list[tuple[str, str | None, str]]:
        """(NCT ID, title, date) of the first `limit` trials whose `column` (`primary_completion` or
        `completion`) is `since` or later, soonest first: a range of that column's index."""
        key = DATE_COLUMNS[column]
        with self._session() as s:
            query = select(TrialRow.nct_id, TrialRow.title, key).where(key >= since).order_by(key, TrialRow.nct_id)
            return [(r[0], r[1], str(r[2])) for r in s.execute(query.limit(limit))]

    def statuses(self) -> list[str]:
        """The overall statuses stored, for the filter's choices: one index seek per status (a loose
        index scan), where DISTINCT would read every row's."""
        column = TrialRow.overall_status
        with self._session() as s:
            found: list[str] = []
            current = s.scalar(select(func.min(column)))
            while current is not None and len(found) < 1000:
                found.append(str(current))
                current = s.scalar(select(func.min(column)).where(column > current))
            return found

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

    def newest_changed(self, limit: int) -> list[TrialRowView]:
        """The `limit` trials with a stored version changed most recently, newest first: the static
        site's front page, a range of the change index however large the registry."""
        with self._session() as s:
            return [_view(r, r.n) for r in s.execute(_stored_rows().order_by(*_order("changed")).limit(limit))]

    def rows_of(self, nct_ids: Collection[str]) -> list[TrialRowView]:
        """These trials (those with a stored version), newest change first: a tag's pages."""
        found: list[TrialRowView] = []
        with self._session() as s:
            for chunk in chunks(sorted(nct_ids), 500):
                rows = s.execute(select(TrialRow).where(TrialRow.nct_id.in_(chunk))).scalars().all()
                counts = _version_counts(s, chunk)
                found += [_view(r, counts[r.nct_id]) for r in rows if r.nct_id in counts]
        found.sort(key=lambda r: r.nct_id, reverse=True)  # then by change, stably: the order of `_order`
        found.sort(key=lambda r: (r.last_changed_at is not None, r.last_changed_at or _EPOCH), reverse=True)
        return found

    def rows_by_id(self) -> Iterator[TrialRowView]:
        """Every trial with a stored version, in NCT ID order, streamed: the static site's block pages
        hold 10,000 IDs each, so a whole registry is never in memory at once (it was 700 MB at 500,000)."""
        query = _stored_rows().order_by(TrialRow.nct_id).execution_options(yield_per=STREAMED)
        with self._session() as s:
            for row in s.execute(query):
                yield _view(row, row.n)


def _stored_rows() -> Any:
    """The trials with a stored version: their columns and `n`, their count of stored versions."""
    versions = select(SnapshotRow.nct_id, func.count().label("n")).group_by(SnapshotRow.nct_id).subquery()
    return select(*TrialRow.__table__.c, versions.c.n).join(versions, versions.c.nct_id == TrialRow.nct_id)


def count_statement(where: BrowseFilter, dialect: str) -> Any:
    """The count of a page's matches, stopped past `COUNT_CAP`. On SQLite a search with no other
    filter is counted from the word index alone."""
    if dialect == "sqlite" and where.text.strip() and _only_text(where):
        counted = sqlite_words_count(where.text, COUNT_CAP)
        if counted is not None:
            return counted
    matches = select(TrialRow.nct_id).where(*_conditions(where, dialect)).limit(COUNT_CAP + 1)
    return select(func.count()).select_from(matches.subquery())


def count_settings(where: BrowseFilter, dialect: str) -> list[str]:
    """What PostgreSQL is told before a search's count. A common word (40% of 500,000 trials) makes
    its planner expect 10,001 matches within the first 25,000 rows and scan the table, computing each
    row's `tsvector` on the way (360 ms); from the GIN index the same count is 50 ms. Only the count
    is told: the page's own query already walks an index."""
    if dialect == "postgresql" and where.text.strip():
        return ["SET LOCAL enable_seqscan = off"]
    return []


def _only_text(where: BrowseFilter) -> bool:
    """Whether the text is the page's one filter."""
    others = (where.status, where.with_errors, where.changed_since, where.only is not None, where.exclude)
    return not any(others)


def _conditions(where: BrowseFilter, dialect: str, *, many: bool = False) -> list[Any]:
    found: list[Any] = []
    if where.text.strip():
        found.append(search_condition(where.text, dialect, many=many))
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
    # nct_id descending: on SQLite ix_trials_changed read backwards, on PostgreSQL ix_trials_changed_desc
    return [TrialRow.last_changed_at.desc().nulls_last(), TrialRow.nct_id.desc()]


def _version_counts(s: Session, nct_ids: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chunk in chunks(list(nct_ids), 500):
        query = select(SnapshotRow.nct_id, func.count()).where(SnapshotRow.nct_id.in_(chunk))
        counts.update({r[0]: r[1] for r in s.execute(query.group_by(SnapshotRow.nct_id))})
    return counts


def _view(row: Any, versions: int) -> TrialRowView:
    """`row`: a `TrialRow`, or a row of its table's columns."""
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

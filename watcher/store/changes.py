"""The change log (`store.changes`): the field changes stored with each version, oldest first.

A baseline's "added" changes are not stored: they are derived from its version's record when read
(`watcher.store.baselines`), classified by the severity rules of the day, and merged in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.detect import SeverityRules
from watcher.models import Change, ChangeKind, Event, Severity, StoredChange
from watcher.store.baselines import baseline_changes, merged
from watcher.store.schema import ChangeRow


class ChangeLog:
    """Each method is one transaction."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    def of(
        self,
        nct_id: str,
        *,
        since: datetime | None = None,
        include_baseline: bool = True,
        rules: SeverityRules | None = None,
    ) -> list[StoredChange]:
        """One trial's changes, oldest first (the `history` and `show` commands). The baseline's
        "added" changes are derived from its version's record, classified by `rules`."""
        return self.across(since=since, nct_ids=[nct_id], include_baseline=include_baseline, rules=rules)

    def across(
        self,
        *,
        since: datetime | None = None,
        nct_ids: Sequence[str] | None = None,
        include_baseline: bool = False,
        rules: SeverityRules | None = None,
        newest: int | None = None,
    ) -> list[StoredChange]:
        """Changes across trials (all, or `nct_ids`), oldest first (the `changes` command, the Atom feed);
        `newest` keeps only the last N stored changes (baselines' derived ones left out), chosen in SQL."""
        if newest is not None:
            return self._newest(since=since, nct_ids=nct_ids, count=newest)
        with self._session() as s:
            query = select(ChangeRow)
            if since is not None:
                query = query.where(ChangeRow.detected_at >= since)
            if nct_ids is not None:
                query = query.where(ChangeRow.nct_id.in_(list(nct_ids)))
            if not include_baseline:
                query = query.where(ChangeRow.baseline.is_(False))
            stored = [_stored(r) for r in s.scalars(query.order_by(ChangeRow.detected_at, ChangeRow.id))]
            if not include_baseline:
                return stored
            return merged(stored, baseline_changes(s, nct_ids=nct_ids, since=since, rules=rules))

    def _newest(self, *, since: datetime | None, nct_ids: Sequence[str] | None, count: int) -> list[StoredChange]:
        with self._session() as s:
            query = select(ChangeRow).where(ChangeRow.baseline.is_(False))
            if since is not None:
                query = query.where(ChangeRow.detected_at >= since)
            if nct_ids is not None:
                query = query.where(ChangeRow.nct_id.in_(list(nct_ids)))
            rows = s.scalars(query.order_by(ChangeRow.detected_at.desc(), ChangeRow.id.desc()).limit(count))
            return [_stored(r) for r in rows][::-1]


def _change(row: ChangeRow) -> Change:
    event = None
    if row.event:
        event = Event(kind=row.event["kind"], summary=row.event.get("summary", ""), data=row.event.get("data", {}))
    return Change(
        field=row.field,
        change=cast(ChangeKind, row.change),
        old=row.old,
        new=row.new,
        severity=cast(Severity, row.severity),
        event=event,
    )


def _stored(row: ChangeRow) -> StoredChange:
    return StoredChange(
        id=row.id,
        nct_id=row.nct_id,
        version=row.version,
        detected_at=row.detected_at,
        change=_change(row),
        baseline=row.baseline,
    )

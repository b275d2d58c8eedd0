"""What the watcher knows of each trial between cycles (`store.trials`): when it was last checked,
its run of failures, whether it was not found or now answers under another NCT ID.

A trial's row also follows its newest stored version (title, status, dates); that part is written
with the version itself (`watcher.store.writes`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from watcher.store.blobstore import chunks
from watcher.store.schema import TrialRow
from watcher.store.values import TrialState


class TrialStates:
    """Each method is one transaction; the `_in` functions below write in a caller's open one (so a
    state change can commit with the messages it causes)."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    def states(self, nct_ids: Collection[str] | None = None) -> dict[str, TrialState]:
        """Every trial the database has a row for, by NCT ID; with `nct_ids`, only those and every
        trial with a failure counted (what a cycle decides on), so a cycle watching the whole registry
        holds its watchlist's states, not 560,000. Read as plain rows, 1,000 at a time."""
        with self._session() as s:
            if nct_ids is None:
                return dict(_stream(s, _STATES))
            wanted = set(nct_ids)
            if len(wanted) > _ASKED:  # most of a table read whole beats tens of IN lists; the rest is dropped
                return dict(_stream(s, _STATES, keep=lambda row: row[0] in wanted or bool(row[6])))
            found = dict(_stream(s, _STATES.where(_COLUMNS.consecutive_failures > 0)))
            for chunk in chunks(sorted(wanted - found.keys()), 500):
                found.update(_stream(s, _STATES.where(_COLUMNS.nct_id.in_(chunk))))
            return found

    def failing(self) -> dict[str, TrialState]:
        """The trials with a failure counted, by NCT ID: what `status` shows, without reading the rest."""
        with self._session() as s:
            return dict(_stream(s, _STATES.where(_COLUMNS.consecutive_failures > 0)))

    def not_found(self) -> set[str]:
        """The trials ClinicalTrials.gov last answered 404 for."""
        with self._session() as s:
            return set(s.scalars(select(_COLUMNS.nct_id).where(_COLUMNS.not_found.is_(True))))

    def mark_checked(self, nct_ids: Sequence[str], at: datetime) -> None:
        with self._session() as s:
            mark_checked_in(s, nct_ids, at)

    def record_failure(self, nct_id: str, error: str, *, not_found: bool = False) -> int:
        with self._session() as s:
            return record_failure_in(s, nct_id, error, not_found=not_found)

    def set_canonical(self, nct_id: str, canonical_id: str) -> None:
        with self._session() as s:
            set_canonical_in(s, nct_id, canonical_id)


def mark_checked_in(s: Session, nct_ids: Sequence[str], at: datetime) -> None:
    """These trials were checked and found unchanged: their run of failures ends."""
    for chunk in chunks(list(nct_ids), 500):  # IN lists of 500: a cycle may mark 100,000 trials at once
        s.execute(
            update(TrialRow)
            .where(TrialRow.nct_id.in_(chunk))
            .values(last_checked_at=at, consecutive_failures=0, last_error=None)
        )


def record_failure_in(s: Session, nct_id: str, error: str, *, not_found: bool = False) -> int:
    """Count a failed fetch; returns the number of consecutive failures."""
    trial = s.get(TrialRow, nct_id)
    if trial is None:
        trial = TrialRow(nct_id=nct_id, consecutive_failures=0)
        s.add(trial)
    trial.consecutive_failures = (trial.consecutive_failures or 0) + 1
    trial.last_error = error
    trial.not_found = not_found
    return trial.consecutive_failures


def set_canonical_in(s: Session, nct_id: str, canonical_id: str) -> None:
    """ClinicalTrials.gov now answers `nct_id` with the record of `canonical_id`."""
    trial = s.get(TrialRow, nct_id) or TrialRow(nct_id=nct_id)
    trial.canonical_id = canonical_id
    s.merge(trial)


_COLUMNS = TrialRow.__table__.c
_STATES = select(
    _COLUMNS.nct_id,
    _COLUMNS.title,
    _COLUMNS.overall_status,
    _COLUMNS.last_update_post_date,
    _COLUMNS.last_checked_at,
    _COLUMNS.last_changed_at,
    _COLUMNS.consecutive_failures,
    _COLUMNS.last_error,
    _COLUMNS.not_found,
    _COLUMNS.canonical_id,
)


_ASKED = 2_000
"""Above this many trials asked for, `states` reads the table whole rather than by IN lists."""


def _stream(
    s: Session, query: Select[Any], keep: Callable[[Any], bool] | None = None
) -> Iterator[tuple[str, TrialState]]:
    """Rows as `TrialState`s (those `keep` keeps), fetched 1,000 at a time (no ORM object is made)."""
    for row in s.execute(query.execution_options(yield_per=1000)):
        if keep is not None and not keep(row):
            continue
        yield (
            row.nct_id,
            TrialState(
                nct_id=row.nct_id,
                title=row.title,
                overall_status=row.overall_status,
                last_update_post_date=row.last_update_post_date,
                last_checked_at=row.last_checked_at,
                last_changed_at=row.last_changed_at,
                consecutive_failures=row.consecutive_failures or 0,
                last_error=row.last_error,
                not_found=bool(row.not_found),
                canonical_id=row.canonical_id,
            ),
        )

"""What the watcher knows of each trial between cycles (`store.trials`): when it was last checked,
its run of failures, whether it was not found or now answers under another NCT ID.

A trial's row also follows its newest stored version (title, status, dates); that part is written
with the version itself (`watcher.store.writes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from watcher.store.blobstore import chunks
from watcher.store.schema import TrialRow
from watcher.store.values import TrialState


class TrialStates:
    """Each method is one transaction; the `_in` functions below write in a caller's open one (so a
    state change can commit with the messages it causes)."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    def states(self) -> dict[str, TrialState]:
        """Every trial the database has a row for, by NCT ID."""
        with self._session() as s:
            return {row.nct_id: _trial_state(row) for row in s.scalars(select(TrialRow))}

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


def _trial_state(row: TrialRow) -> TrialState:
    return TrialState(
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
    )

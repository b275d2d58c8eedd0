"""A trial's baseline — its first version, every field "added" — derived from the record when read.

Storing it as one change row per field cost ~167 rows per trial on a first sync; the record is
stored anyway, so `history`, `show`, `changes` and the JSON/CSV outputs get the same "added"
changes by diffing the record against nothing, with the severity rules of the day. Retention never
prunes a baseline version's record (it is the baseline's only copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from watcher.detect import SeverityRules, changes_between
from watcher.models import StoredChange
from watcher.store.blobstore import snapshot_of
from watcher.store.schema import SnapshotRow


def baseline_changes(
    s: Session,
    *,
    nct_ids: Sequence[str] | None = None,
    since: datetime | None = None,
    rules: SeverityRules | None = None,
) -> list[StoredChange]:
    """The derived "added" changes of the baseline versions of `nct_ids` (all trials when None)."""
    query = select(SnapshotRow).where(SnapshotRow.baseline.is_(True))
    if nct_ids is not None:
        query = query.where(SnapshotRow.nct_id.in_(list(nct_ids)))
    if since is not None:
        query = query.where(SnapshotRow.fetched_at >= since)
    out: list[StoredChange] = []
    for row in s.scalars(query.order_by(SnapshotRow.fetched_at, SnapshotRow.id)):
        snapshot = snapshot_of(s, row)
        if snapshot is None:
            continue
        out.extend(
            StoredChange(
                id=0, nct_id=row.nct_id, version=row.version, detected_at=row.fetched_at, change=change, baseline=True
            )
            for change in changes_between(None, snapshot.record, rules)
        )
    return out


def merged(stored: Sequence[StoredChange], derived: Sequence[StoredChange]) -> list[StoredChange]:
    """Oldest first; at one moment a baseline's changes come first, as when they were stored rows."""
    both = [(c.detected_at, 0, 0) for c in derived] + [(c.detected_at, 1, c.id) for c in stored]
    items = list(derived) + list(stored)
    order = sorted(range(len(items)), key=lambda i: both[i])
    return [items[i] for i in order]

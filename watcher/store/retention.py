"""What the stored versions take, and retention: pruning old records, deleting unused blobs.

A `Store` holds one `Retention` as `store.retention`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from watcher.store import blobs
from watcher.store.outbox import OutboxQueue
from watcher.store.schema import BlobRow, SnapshotRow
from watcher.store.values import RetentionResult, StorageStats


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start: start + size]


class Retention:
    """Storage statistics and retention queries. Each method is one transaction (`apply`: two)."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    def stats(self) -> StorageStats:
        with self._session() as s:
            versions = s.scalar(select(func.count()).select_from(SnapshotRow)) or 0
            pruned = s.scalar(select(func.count()).select_from(SnapshotRow)
                              .where(SnapshotRow.pruned_at.is_not(None))) or 0
            count, compressed, raw = s.execute(select(
                func.count(), func.coalesce(func.sum(func.length(BlobRow.data)), 0),
                func.coalesce(func.sum(BlobRow.size), 0))).one()
            legacy = s.scalar(select(func.coalesce(func.sum(func.length(SnapshotRow.record)), 0))) or 0
            return StorageStats(versions=int(versions), pruned=int(pruned), blobs=int(count),
                                blob_bytes=int(compressed), raw_bytes=int(raw), legacy_bytes=int(legacy))

    def apply(self, *, keep_versions: int | None, keep_days: timedelta | None, now: datetime) -> RetentionResult:
        """Prune old versions' records, then delete the blobs no version uses any more.

        A version is pruned only when it is outside BOTH limits that are set (older than the
        newest `keep_versions` and fetched before `now - keep_days`). Never pruned: a trial's
        latest version, and a version an undelivered notification (outbox status pending or
        sending) names. A pruned version keeps its row, its number and its changes: the trial's
        change log stays whole, only the full record is gone.
        """
        pruned_ids: list[int] = []
        held = 0
        if keep_versions or keep_days:
            cutoff = now - keep_days if keep_days else None
            with self._session() as s:
                needed = OutboxQueue.held_versions_in(s)
                rows = s.execute(select(SnapshotRow.id, SnapshotRow.nct_id, SnapshotRow.version,
                                        SnapshotRow.fetched_at)
                                 .where(SnapshotRow.pruned_at.is_(None))
                                 .order_by(SnapshotRow.nct_id, SnapshotRow.version.desc())).all()
                latest = s.execute(select(SnapshotRow.nct_id, func.max(SnapshotRow.version))
                                   .group_by(SnapshotRow.nct_id)).all()
                newest = {r[0]: r[1] for r in latest}
                rank: dict[str, int] = {}
                for snapshot_id, nct_id, version, fetched_at in rows:
                    position = rank.get(nct_id, 0)
                    rank[nct_id] = position + 1
                    if version == newest.get(nct_id):
                        continue
                    if keep_versions and position < keep_versions:
                        continue
                    if cutoff is not None and fetched_at >= cutoff:
                        continue
                    if (nct_id, version) in needed:
                        held += 1
                        continue
                    pruned_ids.append(snapshot_id)
                for chunk in _chunks(pruned_ids, 500):
                    s.execute(update(SnapshotRow).where(SnapshotRow.id.in_(chunk))
                              .values(pruned_at=now, manifest=None, record=None))
        deleted, freed = self.collect_garbage(now)
        return RetentionResult(pruned=len(pruned_ids), blobs_deleted=deleted, bytes_freed=freed,
                               kept_for_outbox=held)

    def collect_garbage(self, now: datetime, *, grace: timedelta = timedelta(hours=1)) -> tuple[int, int]:
        """Delete blobs no version references and nobody used within `grace`: (count, bytes).

        The grace period covers a writer that reuses an old blob in a transaction not yet
        committed when this one looks: its `last_used_at` touch keeps the blob alive.
        """
        unused_since = now - grace
        with self._session() as s:
            manifests = set(s.scalars(select(SnapshotRow.manifest).where(SnapshotRow.manifest.is_not(None))
                                      .distinct()))
            referenced = set(manifests)
            for row in s.scalars(select(BlobRow).where(BlobRow.digest.in_(list(manifests)))) if manifests else ():
                referenced.update(blobs.manifest_digests(blobs.load(row.codec, row.data)))
            candidates = s.execute(select(BlobRow.digest, func.length(BlobRow.data))
                                   .where(BlobRow.last_used_at < unused_since)).all()
            doomed = [(d, int(n)) for d, n in candidates if d not in referenced]
            for chunk in _chunks([d for d, _ in doomed], 500):
                s.execute(delete(BlobRow).where(BlobRow.digest.in_(chunk), BlobRow.last_used_at < unused_since))
            return len(doomed), sum(n for _, n in doomed)

"""What the stored versions take, and retention: pruning old records, deleting unused blobs.

A `Store` holds one `Retention` as `store.retention`: the mechanism, run whenever asked (`db prune`).
Both are set-based SQL: versions are ranked with a window function, and a blob's users are found
through `blob_refs` (the parts each manifest names), so nothing is loaded into Python or
decompressed however large the database. How often the service runs it is housekeeping's
schedule, `retention_due` and `apply_retention_daily` below.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, and_, cast, delete, exists, func, select, text, update
from sqlalchemy.orm import Session

from watcher.store.blobs import REF_CHARS
from watcher.store.meta import LAST_RETENTION
from watcher.store.outbox import UNDELIVERED
from watcher.store.schema import BlobRefRow, BlobRow, ChangeRow, OutboxRow, SnapshotRow, TrialRow
from watcher.store.values import RetentionResult, StorageStats
from watcher.times import utc

if TYPE_CHECKING:
    from watcher.store.database import Store


class Retention:
    """Storage statistics and retention queries. Each method is one transaction (`apply`: two)."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]], *, dialect: str) -> None:
        self._session = session
        self._dialect = dialect

    def stats(self) -> StorageStats:
        with self._session() as s:
            versions, pruned, baselines, trials = s.execute(
                select(
                    func.count(),
                    func.count(SnapshotRow.pruned_at),
                    func.coalesce(func.sum(cast(SnapshotRow.baseline, Integer)), 0),
                    func.count(func.distinct(SnapshotRow.nct_id)),
                )
            ).one()
            count, compressed, raw = s.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(func.length(BlobRow.data)), 0),
                    func.coalesce(func.sum(BlobRow.size), 0),
                )
            ).one()
            legacy = s.scalar(select(func.coalesce(func.sum(func.length(SnapshotRow.record)), 0))) or 0
            changes = s.scalar(select(func.count()).select_from(ChangeRow)) or 0
            watched = s.scalar(select(func.count()).select_from(TrialRow)) or 0
            database = _database_bytes(s, self._dialect)
            return StorageStats(
                versions=int(versions),
                pruned=int(pruned),
                blobs=int(count),
                blob_bytes=int(compressed),
                raw_bytes=int(raw),
                legacy_bytes=int(legacy),
                trials=max(int(trials), int(watched)),
                baselines=int(baselines),
                change_rows=int(changes),
                database_bytes=database,
            )

    def apply(self, *, keep_versions: int | None, keep_days: timedelta | None, now: datetime) -> RetentionResult:
        """Prune old versions' records, then delete the blobs no version uses any more.

        A version is pruned only when it is outside BOTH limits that are set (older than the
        newest `keep_versions` and fetched before `now - keep_days`). Never pruned: a trial's
        latest version, its baseline (the first version: its "added" changes are derived from
        that record), and a version an undelivered notification (outbox status pending or
        sending) names. A pruned version keeps its row, its number and its changes: the trial's
        change log stays whole, only the full record is gone.
        """
        pruned = held = 0
        if keep_versions or keep_days:
            ranked = (
                select(
                    SnapshotRow.id,
                    SnapshotRow.nct_id,
                    SnapshotRow.version,
                    SnapshotRow.fetched_at,
                    SnapshotRow.baseline,
                    func.row_number()
                    .over(partition_by=SnapshotRow.nct_id, order_by=SnapshotRow.version.desc())
                    .label("position"),
                )
                .where(SnapshotRow.pruned_at.is_(None))
                .subquery()
            )
            conditions = [ranked.c.position > max(keep_versions or 0, 1), ranked.c.baseline.is_not(True)]
            if keep_days:
                conditions.append(ranked.c.fetched_at < now - keep_days)
            named = exists().where(
                OutboxRow.nct_id == ranked.c.nct_id,
                OutboxRow.status.in_(UNDELIVERED),
                OutboxRow.payload["version"].as_integer() == ranked.c.version,
            )
            with self._session() as s:
                held = int(s.scalar(select(func.count()).select_from(ranked).where(*conditions, named)) or 0)
                doomed = select(ranked.c.id).where(*conditions, ~named)
                result: Any = s.execute(
                    update(SnapshotRow)
                    .where(SnapshotRow.id.in_(doomed))
                    .values(pruned_at=now, manifest=None, record=None)
                )
                pruned = int(result.rowcount or 0)
        deleted, freed = self.collect_garbage(now)
        return RetentionResult(pruned=pruned, blobs_deleted=deleted, bytes_freed=freed, kept_for_outbox=held)

    def collect_garbage(self, now: datetime, *, grace: timedelta = timedelta(hours=1)) -> tuple[int, int]:
        """Delete blobs no version references and nobody used within `grace`: (count, bytes).

        The grace period covers a writer that reuses an old blob in a transaction not yet
        committed when this one looks: its `last_used_at` touch keeps the blob alive.
        """
        manifests = select(SnapshotRow.manifest).where(SnapshotRow.manifest.is_not(None))
        parts = select(BlobRefRow.part).where(
            BlobRefRow.manifest.in_(select(_key(SnapshotRow.manifest)).where(SnapshotRow.manifest.is_not(None)))
        )
        unused = and_(
            BlobRow.last_used_at < now - grace, BlobRow.digest.not_in(manifests), _key(BlobRow.digest).not_in(parts)
        )
        with self._session() as s:
            count, freed = s.execute(
                select(func.count(), func.coalesce(func.sum(func.length(BlobRow.data)), 0)).where(unused)
            ).one()
            s.execute(delete(BlobRow).where(unused))
            s.execute(delete(BlobRefRow).where(BlobRefRow.manifest.not_in(select(_key(BlobRow.digest)))))
            return int(count), int(freed)


def _key(column: Any) -> Any:
    """A digest column's `blob_refs` key (`blobs.ref_key`), in SQL."""
    return func.substr(column, 1, REF_CHARS)


def _database_bytes(s: Session, dialect: str) -> int | None:
    """The whole database's size: the SQLite file's pages, or `pg_database_size`."""
    if dialect == "sqlite":
        query = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
    elif dialect == "postgresql":
        query = "SELECT pg_database_size(current_database())"
    else:
        return None
    return int(s.execute(text(query)).scalar_one())


def retention_due(
    last_run: datetime | None, now: datetime, *, keep_versions: int | None, keep_days: timedelta | None
) -> bool:
    """Whether the service applies retention now: only when a limit is set, and at most once a day
    (`last_run` is when it last did, kept as `meta.LAST_RETENTION`), since it scans every version."""
    if not (keep_versions or keep_days):
        return False
    return last_run is None or utc(now) - utc(last_run) >= timedelta(days=1)


def apply_retention_daily(
    store: Store, *, keep_versions: int | None, keep_days: timedelta | None, now: datetime
) -> RetentionResult | None:
    """Housekeeping's retention: apply it when `retention_due`, and remember when; None when not due."""
    if not retention_due(store.meta.get(LAST_RETENTION), now, keep_versions=keep_versions, keep_days=keep_days):
        return None
    result = store.retention.apply(keep_versions=keep_versions, keep_days=keep_days, now=now)
    store.meta.set(LAST_RETENTION, now)
    return result

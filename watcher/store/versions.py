"""A trial's stored versions (`store.versions`): read them, add new ones a page at a time, put past
ones before them.

Writing a version allocates its number, so every write holds the writer locks (`writing`) for its
transaction. A page that the database refuses is written again one version per transaction, and
each version it still refuses is that trial's storage failure; any other exception is a bug in our
code: it is logged with its traceback and raised, never turned into a trial's failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from watcher.errors import StorageError
from watcher.messages import NewMessage
from watcher.models import Change, Snapshot
from watcher.store.blobstore import chunks, load_records, snapshot_of
from watcher.store.locks import WriterLock, trial_lock_key
from watcher.store.schema import SnapshotRow
from watcher.store.values import NewVersion, PastVersion, VersionInfo
from watcher.store.writes import newest_of, newest_versions, prepend_versions, write_versions

log = structlog.get_logger("watcher.store")


class Versions:
    """Each method is one transaction."""

    def __init__(
        self, session: Callable[[], AbstractContextManager[Session]], *, dialect: str, writer: WriterLock
    ) -> None:
        self._session = session
        self._dialect = dialect
        self._writer = writer

    # -- reading -----------------------------------------------------------------------------------

    def latest(self, nct_id: str) -> Snapshot | None:
        """A trial's newest version with its record; None when none is stored."""
        with self._session() as s:
            row = s.scalars(
                select(SnapshotRow).where(SnapshotRow.nct_id == nct_id).order_by(SnapshotRow.version.desc()).limit(1)
            ).first()
            return snapshot_of(s, row) if row else None

    def latest_many(self, nct_ids: Sequence[str]) -> dict[str, Snapshot]:
        """The newest version of each of these trials with its record, in a few queries for them all
        (a page of changed records is diffed against these); a trial with none, or whose newest
        record retention pruned, is absent."""
        with self._session() as s:
            rows: list[SnapshotRow] = []
            for chunk in chunks(sorted(set(nct_ids)), 500):
                rows.extend(s.scalars(select(SnapshotRow).join(*newest_of(chunk))))
            live = [r for r in rows if r.pruned_at is None and (r.record is not None or r.manifest is not None)]
            records = load_records(s, [r.manifest for r in live if r.record is None and r.manifest is not None])
            return {
                r.nct_id: Snapshot(
                    nct_id=r.nct_id,
                    version=r.version,
                    fetched_at=r.fetched_at,
                    content_hash=r.content_hash,
                    record=json.loads(r.record) if r.record is not None else records[r.manifest],  # type: ignore[index]
                    ctgov_version=r.ctgov_version,
                )
                for r in live
            }

    def get(self, nct_id: str, version: int) -> Snapshot | None:
        """One stored version; None when there is no such version or retention pruned it."""
        with self._session() as s:
            row = s.scalars(
                select(SnapshotRow).where(SnapshotRow.nct_id == nct_id, SnapshotRow.version == version)
            ).first()
            return snapshot_of(s, row) if row else None

    def latest_hash(self, nct_id: str) -> str | None:
        """The content hash of a trial's newest version, read from its column: comparing a fetched
        record with it needs no record loaded and decompressed (the common case: nothing changed)."""
        with self._session() as s:
            return s.scalar(
                select(SnapshotRow.content_hash)
                .where(SnapshotRow.nct_id == nct_id)
                .order_by(SnapshotRow.version.desc())
                .limit(1)
            )

    def latest_hashes(self, nct_ids: Sequence[str]) -> dict[str, str]:
        """The content hash of each trial's newest version, in one query per page: a fetched record
        equal to it is unchanged, and nothing is loaded or decompressed to know it."""
        with self._session() as s:
            return {k: digest for k, (_, digest) in newest_versions(s, nct_ids).items()}

    def infos(self, nct_id: str) -> list[VersionInfo]:
        """What is known of each of a trial's versions, oldest first, without loading a record."""
        with self._session() as s:
            rows = s.scalars(select(SnapshotRow).where(SnapshotRow.nct_id == nct_id).order_by(SnapshotRow.version))
            return [_info(r) for r in rows]

    def infos_many(self, nct_ids: Sequence[str]) -> dict[str, list[VersionInfo]]:
        """`infos` of each of these trials, in one query per 500 (the static site reads a page of trials at once)."""
        found: dict[str, list[VersionInfo]] = {}
        with self._session() as s:
            for chunk in chunks(sorted(set(nct_ids)), 500):
                query = select(SnapshotRow).where(SnapshotRow.nct_id.in_(chunk))
                for r in s.scalars(query.order_by(SnapshotRow.nct_id, SnapshotRow.version)):
                    found.setdefault(r.nct_id, []).append(_info(r))
        return found

    # -- writing -----------------------------------------------------------------------------------

    def save(
        self,
        nct_id: str,
        record: Mapping[str, Any],
        *,
        fetched_at: datetime,
        digest: str,
        changes: Sequence[Change],
        baseline: bool,
        messages: Sequence[NewMessage] = (),
        source: str = "poll",
        ctgov_version: int | None = None,
        detected_at: datetime | None = None,
    ) -> int:
        """Store a new version, its changes and the messages they cause in ONE transaction.

        Either all of it is there after a crash or none of it, so a change is never
        recorded without its notification, nor notified without being recorded. A polled record
        identical to the newest stored version (another process stored it meanwhile) is not a new
        version: that version's number is returned and nothing is written. A baseline stores no
        change rows: they are derived from the record when read (`watcher.store.baselines`).
        """
        item = NewVersion(
            nct_id=nct_id,
            record=record,
            digest=digest,
            fetched_at=fetched_at,
            changes=changes,
            baseline=baseline,
            messages=messages,
            source=source,
            ctgov_version=ctgov_version,
            detected_at=detected_at,
        )
        return self._write([item])[0]

    def save_many(self, items: Sequence[NewVersion]) -> list[int | StorageError]:
        """Store a page of new versions in one transaction of a few bulk statements; returns, per
        item, its version number or the database error that kept it out.

        Each item's version, changes and messages still commit together or not at all: when the
        database refuses the page, it is written again one item per transaction, so one bad record
        never loses the others. An exception that is not the database's propagates.
        """
        if not items:
            return []
        try:
            return list(self._write(items))
        except StorageError as exc:
            if len(items) == 1:
                return [exc]
            log.warning("store.page_failed", items=len(items), error=str(exc), action="one item at a time")
        return [self._save_alone(item) for item in items]

    def _save_alone(self, item: NewVersion) -> int | StorageError:
        try:
            return self._write([item])[0]
        except StorageError as exc:
            return exc

    def _write(self, items: Sequence[NewVersion]) -> list[int]:
        try:
            with self.writing(*(i.nct_id for i in items)) as s:
                return write_versions(s, items, dialect=self._dialect)
        except StorageError:
            raise
        except Exception:
            log.exception("store.write_crashed", nct_ids=sorted({i.nct_id for i in items}))
            raise

    def prepend(self, nct_id: str, past: Sequence[PastVersion], *, rebase: Sequence[Change] | None) -> int:
        """Insert versions older than every stored one, in ONE transaction; returns how many.

        Stored versions, their changes and the version numbers in outbox payloads move up by
        `len(past)`, so numbers keep following time. The former first version stops being a
        baseline: its "everything added" changes are replaced by `rebase`, its real diff
        against the newest past version.
        """
        if not past:
            return 0
        with self.writing(nct_id) as s:
            return prepend_versions(s, nct_id, past, rebase=rebase, dialect=self._dialect)

    def set_ctgov_version(self, nct_id: str, version: int, ctgov_version: int) -> None:
        """Note which of ClinicalTrials.gov's own version numbers a stored version is."""
        with self._session() as s:
            s.execute(
                update(SnapshotRow)
                .where(SnapshotRow.nct_id == nct_id, SnapshotRow.version == version)
                .values(ctgov_version=ctgov_version)
            )

    @contextmanager
    def writing(self, *nct_ids: str) -> Iterator[Session]:
        """A transaction that allocates or shifts these trials' version numbers: one writer at a time.

        Another process may be writing the same trial (a hand-run `check` or `backfill` beside the
        service): on PostgreSQL a transaction-scoped advisory lock per trial serialises them, on
        SQLite the database's `WriterLock`. Either way the newest version read is still the newest
        at commit, so version numbers cannot collide.
        """
        with self._writer.held(), self._session() as s:
            if self._dialect == "postgresql":  # in key order: two writers of overlapping pages cannot deadlock
                s.execute(
                    text(
                        "SELECT pg_advisory_xact_lock(k) FROM "
                        "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS held"
                    ),
                    {"keys": sorted({trial_lock_key(n) for n in nct_ids})},
                )
            yield s


def _info(r: SnapshotRow) -> VersionInfo:
    return VersionInfo(
        nct_id=r.nct_id,
        version=r.version,
        fetched_at=r.fetched_at,
        last_update_post_date=r.last_update_post_date,
        source=r.source or "poll",
        ctgov_version=r.ctgov_version,
        pruned=r.pruned_at is not None,
        content_hash=r.content_hash,
    )

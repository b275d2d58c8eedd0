"""`Store`, the one gateway to the database: snapshots and versions, changes, trial state,
the cycle log, meta keys and locks between processes. The notification outbox is
`store.outbox` (`watcher.store.outbox`), storage statistics and retention `store.retention`
(`watcher.store.retention`), the typed `meta` keys `store.meta` (`watcher.store.meta`); a state
change and the alerts it causes are written in one `store.transaction()`
(`watcher.store.transaction`).

SQLite by default (WAL + busy timeout so CLI commands work while the service runs),
PostgreSQL for shared deployments (advisory locks let several services take turns). The tables
are in `watcher.store.schema`; ORM rows never leave the storage modules: callers get the frozen
dataclasses of `watcher.store.values` and `watcher.models`, or plain dicts.

Records are kept as compressed, content-addressed parts (`watcher.store.blobs`); the schema is
Alembic's (`watcher.store.migrate`), upgraded in place when a Store opens the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from watcher.detect import SeverityRules
from watcher.detect.record import last_update_of
from watcher.errors import StorageError
from watcher.models import Change, Event, Snapshot, StoredChange, change_to_dict
from watcher.store.baselines import baseline_changes, merged
from watcher.store.blobstore import put_record, snapshot_of
from watcher.store.connection import (
    WriterLock,
    advisory_lock,
    open_engine,
    redact_db_url,
    sqlite_path,
    trial_lock_key,
    unwritable,
)
from watcher.store.discovery import DiscoveryStore
from watcher.store.meta import LAST_RETENTION, Meta
from watcher.store.outbox import NewMessage, OutboxQueue
from watcher.store.retention import Retention
from watcher.store.schema import ChangeRow, CycleRow, SnapshotRow, TrialRow
from watcher.store.transaction import Transaction
from watcher.store.values import CycleInfo, NewVersion, PastVersion, RetentionResult, TrialState, VersionInfo
from watcher.store.writes import newest_versions, write_versions
from watcher.times import utc, utcnow

__all__ = ["Store", "utcnow"]

log = structlog.get_logger("watcher.store")


def _change(row: ChangeRow) -> Change:
    event = None
    if row.event:
        event = Event(kind=row.event["kind"], summary=row.event.get("summary", ""), data=row.event.get("data", {}))
    return Change(
        field=row.field,
        change=row.change,  # type: ignore[arg-type]
        old=row.old,
        new=row.new,
        severity=row.severity,  # type: ignore[arg-type]
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


def _storage_error(item: NewVersion, exc: Exception) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    return StorageError(f"cannot store {item.nct_id}: {type(exc).__name__}: {exc}")


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


class Store:
    """The one gateway to the database. Methods are small transactions."""

    def __init__(self, url: str, *, create: bool = True, read_only: bool = False) -> None:
        """`read_only` reads a SQLite file this process cannot write: no upgrade, and an error if one
        is due. Otherwise a SQLite file this process cannot write is refused at once, naming why."""
        self.url = url
        database = sqlite_path(url)
        if database is not None and not read_only:
            problem = unwritable(database)
            if problem is not None:
                raise StorageError(
                    f"{problem}; trialwatch writes the database {database} and files beside it "
                    "(fix the ownership, or run as the service's user). Commands that only read "
                    "(status, list, show, history, diff, changes, feed, db stats) work without it."
                )
        self.engine: Engine = open_engine(url, read_only=read_only)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.dialect = self.engine.url.get_backend_name()
        self._writer = WriterLock(sqlite_path(url))
        self.outbox = OutboxQueue(self.session, dialect=self.dialect)
        self.retention = Retention(self.session, database_bytes=self._database_bytes)
        self.discovery = DiscoveryStore(self.session)
        self.meta = Meta(self.session)
        if read_only:
            self._require_current_schema()
        elif create:
            self.upgrade()

    def upgrade(self) -> list[str]:
        """Bring the schema to the newest revision in place; returns the revisions applied.

        A database made by the first schema (before Alembic) is recognised by its tables and
        stamped as revision 0001 first. On PostgreSQL an advisory lock lets one process migrate
        while the others wait; everyone else finds the schema current and returns at once.
        """
        from watcher.store.migrate import upgrade_schema

        try:
            return upgrade_schema(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot upgrade the schema of {redact_db_url(self.url)}: {exc}") from exc

    def _require_current_schema(self) -> None:
        from watcher.store.migrate import schema_behind

        try:
            behind = schema_behind(self.engine)
        except SQLAlchemyError as exc:
            self.close()
            raise StorageError(f"cannot read {redact_db_url(self.url)}: {exc}") from exc
        if behind is not None:
            self.close()
            database = sqlite_path(self.url)
            why = (unwritable(database) if database else None) or "it was opened read-only"
            raise StorageError(
                f"{redact_db_url(self.url)} needs a schema upgrade ({behind}), but {why}: run "
                "`trialwatch db upgrade` (or start the service) as a user who can write it"
            )

    def schema_revision(self) -> str | None:
        from watcher.store.migrate import current_revision

        try:
            return current_revision(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the schema revision of {redact_db_url(self.url)}: {exc}") from exc

    def _database_bytes(self, s: Session) -> int | None:
        if self.dialect == "sqlite":
            return int(
                s.execute(
                    text("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
                ).scalar_one()
            )
        if self.dialect == "postgresql":
            return int(s.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
        return None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StorageError(f"database error on {redact_db_url(self.url)}: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction for a state change and the messages it causes (`watcher.store.transaction`)."""
        with self.session() as s:
            yield Transaction(s)

    @contextmanager
    def versions_session(self, *nct_ids: str) -> Iterator[Session]:
        """A transaction that allocates or shifts these trials' version numbers: one writer at a time.

        Another process may be writing the same trial (a hand-run `check` or `backfill` beside the
        service): on PostgreSQL a transaction-scoped advisory lock per trial serialises them, on
        SQLite the database's `WriterLock`. Either way the newest version read is still the newest
        at commit, so version numbers cannot collide.
        """
        with self._writer.held(), self.session() as s:
            if self.dialect == "postgresql":  # in key order: two writers of overlapping pages cannot deadlock
                s.execute(
                    text(
                        "SELECT pg_advisory_xact_lock(k) FROM "
                        "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS held"
                    ),
                    {"keys": sorted({trial_lock_key(n) for n in nct_ids})},
                )
            yield s

    # -- snapshots -------------------------------------------------------------------------------

    def latest_snapshot(self, nct_id: str) -> Snapshot | None:
        with self.session() as s:
            row = s.scalars(
                select(SnapshotRow).where(SnapshotRow.nct_id == nct_id).order_by(SnapshotRow.version.desc()).limit(1)
            ).first()
            return snapshot_of(s, row) if row else None

    def latest_hash(self, nct_id: str) -> str | None:
        """The content hash of a trial's newest version, read from its column: comparing a fetched
        record with it needs no record loaded and decompressed (the common case: nothing changed)."""
        with self.session() as s:
            return s.scalar(
                select(SnapshotRow.content_hash)
                .where(SnapshotRow.nct_id == nct_id)
                .order_by(SnapshotRow.version.desc())
                .limit(1)
            )

    def snapshot(self, nct_id: str, version: int) -> Snapshot | None:
        """One stored version; None when there is no such version or retention pruned it."""
        with self.session() as s:
            row = s.scalars(
                select(SnapshotRow).where(SnapshotRow.nct_id == nct_id, SnapshotRow.version == version)
            ).first()
            return snapshot_of(s, row) if row else None

    def version_infos(self, nct_id: str) -> list[VersionInfo]:
        with self.session() as s:
            rows = s.scalars(select(SnapshotRow).where(SnapshotRow.nct_id == nct_id).order_by(SnapshotRow.version))
            return [
                VersionInfo(
                    nct_id=r.nct_id,
                    version=r.version,
                    fetched_at=r.fetched_at,
                    last_update_post_date=r.last_update_post_date,
                    source=r.source or "poll",
                    ctgov_version=r.ctgov_version,
                    pruned=r.pruned_at is not None,
                    content_hash=r.content_hash,
                )
                for r in rows
            ]

    def save_version(
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

    def save_versions(self, items: Sequence[NewVersion]) -> list[int | StorageError]:
        """Store a page of new versions in one transaction of a few bulk statements; returns, per
        item, its version number or the error that kept it out.

        Each item's version, changes and messages still commit together or not at all: when any
        item spoils the page's transaction, the page is written again one item per transaction, so
        one bad record never loses the others.
        """
        if not items:
            return []
        try:
            return list(self._write(items))
        except Exception as exc:
            if len(items) == 1:
                return [_storage_error(items[0], exc)]
            log.warning("store.page_failed", items=len(items), error=str(exc), action="one item at a time")
        results: list[int | StorageError] = []
        for item in items:
            try:
                results.append(self._write([item])[0])
            except Exception as exc:
                results.append(_storage_error(item, exc))
        return results

    def _write(self, items: Sequence[NewVersion]) -> list[int]:
        with self.versions_session(*(i.nct_id for i in items)) as s:
            return write_versions(s, items, dialect=self.dialect)

    def latest_hashes(self, nct_ids: Sequence[str]) -> dict[str, str]:
        """The content hash of each trial's newest version, in one query per page: a fetched record
        equal to it is unchanged, and nothing is loaded or decompressed to know it."""
        with self.session() as s:
            return {k: digest for k, (_, digest) in newest_versions(s, nct_ids).items()}

    # -- trials ----------------------------------------------------------------------------------

    def mark_checked(self, nct_ids: Sequence[str], at: datetime) -> None:
        with self.transaction() as tx:
            tx.mark_checked(nct_ids, at)

    def record_failure(self, nct_id: str, error: str, *, not_found: bool = False) -> int:
        """Count a failed fetch; returns the number of consecutive failures."""
        with self.transaction() as tx:
            return tx.record_failure(nct_id, error, not_found=not_found)

    def trial_states(self) -> dict[str, TrialState]:
        with self.session() as s:
            return {row.nct_id: _trial_state(row) for row in s.scalars(select(TrialRow))}

    # -- changes ---------------------------------------------------------------------------------

    def changes_of(
        self,
        nct_id: str,
        *,
        since: datetime | None = None,
        include_baseline: bool = True,
        rules: SeverityRules | None = None,
    ) -> list[StoredChange]:
        """One trial's changes, oldest first (the `history` and `show` commands). The baseline's
        "added" changes are derived from its version's record, classified by `rules`."""
        return self.changes(since=since, nct_ids=[nct_id], include_baseline=include_baseline, rules=rules)

    def changes(
        self,
        *,
        since: datetime | None = None,
        nct_ids: Sequence[str] | None = None,
        include_baseline: bool = False,
        rules: SeverityRules | None = None,
    ) -> list[StoredChange]:
        """Changes across trials, oldest first (the `changes` command and the Atom feed)."""
        with self.session() as s:
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

    # -- cycles -----------------------------------------------------------------------------------

    def start_cycle(self, at: datetime) -> int:
        with self.session() as s:
            row = CycleRow(started_at=at, result="running")
            s.add(row)
            s.flush()
            return row.id

    def finish_cycle(
        self,
        cycle_id: int,
        *,
        at: datetime,
        result: str,
        checked: int,
        changed: int,
        failed: int,
        requests: int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self.session() as s:
            s.execute(
                update(CycleRow)
                .where(CycleRow.id == cycle_id)
                .values(
                    finished_at=at,
                    result=result,
                    checked=checked,
                    changed=changed,
                    failed=failed,
                    requests=requests,
                    detail=dict(detail or {}),
                )
            )

    def close_open_cycles(self, at: datetime, *, result: str, since: datetime | None = None) -> int:
        """Close cycle-log rows still "running" (started at or after `since`): their process died
        or gave up on them. Returns how many; the caller must know no live cycle owns them."""
        query = update(CycleRow).where(CycleRow.finished_at.is_(None))
        if since is not None:
            query = query.where(CycleRow.started_at >= since)
        with self.session() as s:
            return int(s.execute(query.values(finished_at=at, result=result)).rowcount or 0)  # type: ignore[attr-defined]

    def last_cycle(self) -> CycleInfo | None:
        with self.session() as s:
            row = s.scalars(
                select(CycleRow).where(CycleRow.finished_at.is_not(None)).order_by(CycleRow.id.desc()).limit(1)
            ).first()
            if row is None:
                return None
            return CycleInfo(
                id=row.id,
                started_at=row.started_at,
                finished_at=row.finished_at,
                result=row.result,
                checked=row.checked,
                changed=row.changed,
                failed=row.failed,
                requests=row.requests,
            )

    # -- backfill --------------------------------------------------------------------------------

    def prepend_versions(self, nct_id: str, past: Sequence[PastVersion], *, rebase: Sequence[Change] | None) -> int:
        """Insert versions older than every stored one, in ONE transaction; returns how many.

        Stored versions, their changes and the version numbers in outbox payloads move up by
        `len(past)`, so numbers keep following time. The former first version stops being a
        baseline: its "everything added" changes are replaced by `rebase`, its real diff
        against the newest past version.
        """
        if not past:
            return 0
        shift = len(past)
        with self.versions_session(nct_id) as s:
            first = s.scalars(
                select(SnapshotRow).where(SnapshotRow.nct_id == nct_id).order_by(SnapshotRow.version).limit(1)
            ).first()
            if first is not None:
                first_id, first_version, first_at = first.id, first.version, first.fetched_at
                s.execute(update(SnapshotRow).where(SnapshotRow.nct_id == nct_id).values(version=-SnapshotRow.version))
                s.execute(
                    update(SnapshotRow).where(SnapshotRow.nct_id == nct_id).values(version=shift - SnapshotRow.version)
                )
                s.execute(update(ChangeRow).where(ChangeRow.nct_id == nct_id).values(version=ChangeRow.version + shift))
                self.outbox.shift_versions_in(s, nct_id, shift)
                if rebase is not None:  # the former first version is a baseline no more
                    s.execute(delete(ChangeRow).where(ChangeRow.snapshot_id == first_id, ChangeRow.baseline.is_(True)))
                    s.execute(update(SnapshotRow).where(SnapshotRow.id == first_id).values(baseline=False))
                    for change in rebase:
                        s.add(
                            ChangeRow(
                                nct_id=nct_id,
                                snapshot_id=first_id,
                                version=first_version + shift,
                                detected_at=first_at,
                                baseline=False,
                                **change_to_dict(change),
                            )
                        )
            for number, item in enumerate(past, start=1):
                snap = SnapshotRow(
                    nct_id=nct_id,
                    version=number,
                    fetched_at=item.posted_at,
                    content_hash=item.digest,
                    last_update_post_date=last_update_of(item.record),
                    manifest=put_record(s, item.record, item.posted_at, dialect=self.dialect),
                    source="backfill",
                    ctgov_version=item.ctgov_version,
                    baseline=item.baseline,
                )
                s.add(snap)
                s.flush()
                for change in () if item.baseline else item.changes:
                    s.add(
                        ChangeRow(
                            nct_id=nct_id,
                            snapshot_id=snap.id,
                            version=number,
                            detected_at=item.posted_at,
                            baseline=item.baseline,
                            **change_to_dict(change),
                        )
                    )
            return shift

    def set_ctgov_version(self, nct_id: str, version: int, ctgov_version: int) -> None:
        with self.session() as s:
            s.execute(
                update(SnapshotRow)
                .where(SnapshotRow.nct_id == nct_id, SnapshotRow.version == version)
                .values(ctgov_version=ctgov_version)
            )

    def apply_retention_daily(
        self, *, keep_versions: int | None, keep_days: timedelta | None, now: datetime
    ) -> RetentionResult | None:
        """Retention at most once a day (it scans every version); None when not set or not due."""
        if not (keep_versions or keep_days):
            return None
        last = self.meta.get(LAST_RETENTION)
        if last is not None and utc(now) - last < timedelta(days=1):
            return None
        result = self.retention.apply(keep_versions=keep_versions, keep_days=keep_days, now=now)
        self.meta.set(LAST_RETENTION, now)
        return result

    # -- locks between processes -----------------------------------------------------------------

    def exclusive(self, name: str, *, wait: bool = False) -> AbstractContextManager[bool]:
        """Hold the named lock between processes for the block (see `advisory_lock`)."""
        return advisory_lock(self.engine, name, wait=wait)

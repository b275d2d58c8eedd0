"""Snapshots, changes, service state and (through `OutboxStore`) the notification outbox, in one
SQL database.

SQLite by default (WAL + busy timeout so CLI commands work while the service runs),
PostgreSQL for shared deployments (advisory locks let several services take turns). The tables
are in `watcher.store.schema`; ORM rows never leave the storage modules: callers get the frozen
dataclasses of `watcher.models` or plain dicts.

Records are kept as compressed, content-addressed parts (`watcher.store.blobs`); the schema is
Alembic's (`watcher.store.migrate`), upgraded in place when a Store opens the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from watcher.errors import StorageError
from watcher.models import Change, Event, Json, Snapshot, StoredChange, change_to_dict
from watcher.store import blobs
from watcher.store.outbox import NewMessage, OutboxStore
from watcher.store.schema import Base, BlobRow, ChangeRow, CycleRow, MetaRow, OutboxRow, SnapshotRow, TrialRow

# -- plain values returned to callers ------------------------------------------------------------




@dataclass(frozen=True, slots=True)
class TrialState:
    nct_id: str
    title: str | None
    overall_status: str | None
    last_update_post_date: str | None
    last_checked_at: datetime | None
    last_changed_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    not_found: bool
    canonical_id: str | None


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """What is known about one stored version without loading its record."""

    nct_id: str
    version: int
    fetched_at: datetime
    last_update_post_date: str | None
    source: str
    ctgov_version: int | None
    pruned: bool
    content_hash: str


@dataclass(frozen=True, slots=True)
class StorageStats:
    versions: int
    pruned: int
    blobs: int
    blob_bytes: int  # compressed bytes held in blobs
    raw_bytes: int  # the same blobs before compression
    legacy_bytes: int  # records still in the first schema's `snapshots.record`


@dataclass(frozen=True, slots=True)
class RetentionResult:
    pruned: int
    blobs_deleted: int
    bytes_freed: int
    kept_for_outbox: int


@dataclass(frozen=True, slots=True)
class CycleInfo:
    id: int
    started_at: datetime
    finished_at: datetime | None
    result: str
    checked: int
    changed: int
    failed: int
    requests: int


@dataclass(frozen=True, slots=True)
class PastVersion:
    """A version from ClinicalTrials.gov's record history, for `Store.prepend_versions`."""

    record: Mapping[str, Any]
    digest: str
    posted_at: datetime
    ctgov_version: int | None
    changes: Sequence[Change]
    baseline: bool


# -- helpers -------------------------------------------------------------------------------------

UNDELIVERED = ("pending", "sending")
LOCK_KEYS: Mapping[str, int] = {"cycle": 0x7457_0002, "backfill": 0x7457_0003}


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start: start + size]


_VOLATILE = ("derivedSection", "miscInfoModule", "versionHolder")


def canonical_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the record without `versionHolder`, the date CT.gov regenerated the record.

    versionHolder moves on every data refresh without any edit, so hashing it would store a
    new "version" of every trial on every full re-fetch.
    """
    derived = record.get("derivedSection")
    misc = derived.get("miscInfoModule") if isinstance(derived, Mapping) else None
    if isinstance(misc, Mapping) and "versionHolder" in misc:
        trimmed_misc = {k: v for k, v in misc.items() if k != "versionHolder"}
        record = {**record, "derivedSection": {**derived, "miscInfoModule": trimmed_misc}}  # type: ignore[dict-item]
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


def last_update_of(record: Mapping[str, Any]) -> str | None:
    try:
        date = record["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
    except (KeyError, TypeError):
        return None
    return str(date)


def change_from_row(row: ChangeRow) -> Change:
    event = None
    if row.event:
        event = Event(kind=row.event["kind"], summary=row.event.get("summary", ""), data=row.event.get("data", {}))
    return Change(field=row.field, change=row.change, old=row.old, new=row.new,  # type: ignore[arg-type]
                  severity=row.severity, event=event)  # type: ignore[arg-type]


def _stored(row: ChangeRow) -> StoredChange:
    return StoredChange(id=row.id, nct_id=row.nct_id, version=row.version, detected_at=row.detected_at,
                        change=change_from_row(row), baseline=row.baseline)




def _trial_state(row: TrialRow) -> TrialState:
    return TrialState(
        nct_id=row.nct_id, title=row.title, overall_status=row.overall_status,
        last_update_post_date=row.last_update_post_date, last_checked_at=row.last_checked_at,
        last_changed_at=row.last_changed_at, consecutive_failures=row.consecutive_failures or 0,
        last_error=row.last_error, not_found=bool(row.not_found), canonical_id=row.canonical_id)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def redact_url(url: str) -> str:
    """A database URL fit for logs: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<invalid database URL>"


class Store(OutboxStore):
    """The one gateway to the database. Methods are small transactions."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"future": True}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise StorageError(f"cannot open database {redact_url(url)}: {exc}") from exc
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.dialect = parsed.get_backend_name()
        if create:
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
            raise StorageError(f"cannot upgrade the schema of {redact_url(self.url)}: {exc}") from exc

    def schema_revision(self) -> str | None:
        from watcher.store.migrate import current_revision

        try:
            return current_revision(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the schema revision of {redact_url(self.url)}: {exc}") from exc

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
            raise StorageError(f"database error on {redact_url(self.url)}: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # -- snapshots -------------------------------------------------------------------------------

    def latest_snapshot(self, nct_id: str) -> Snapshot | None:
        with self.session() as s:
            row = s.scalars(select(SnapshotRow).where(SnapshotRow.nct_id == nct_id)
                            .order_by(SnapshotRow.version.desc()).limit(1)).first()
            return self._snapshot(s, row) if row else None

    def snapshot(self, nct_id: str, version: int) -> Snapshot | None:
        """One stored version; None when there is no such version or retention pruned it."""
        with self.session() as s:
            row = s.scalars(select(SnapshotRow).where(SnapshotRow.nct_id == nct_id,
                                                      SnapshotRow.version == version)).first()
            return self._snapshot(s, row) if row else None

    def version_infos(self, nct_id: str) -> list[VersionInfo]:
        with self.session() as s:
            rows = s.scalars(select(SnapshotRow).where(SnapshotRow.nct_id == nct_id).order_by(SnapshotRow.version))
            return [VersionInfo(nct_id=r.nct_id, version=r.version, fetched_at=r.fetched_at,
                                last_update_post_date=r.last_update_post_date, source=r.source or "poll",
                                ctgov_version=r.ctgov_version, pruned=r.pruned_at is not None,
                                content_hash=r.content_hash) for r in rows]

    def _snapshot(self, s: Session, row: SnapshotRow) -> Snapshot | None:
        if row.pruned_at is not None:
            return None
        if row.record is not None:
            record = json.loads(row.record)
        elif row.manifest is not None:
            record = self._load_record(s, row.manifest)
        else:
            return None
        return Snapshot(nct_id=row.nct_id, version=row.version, fetched_at=row.fetched_at,
                        content_hash=row.content_hash, record=record)

    @staticmethod
    def _load_record(s: Session, manifest_digest: str) -> dict[str, Any]:
        manifest_row = s.get(BlobRow, manifest_digest)
        if manifest_row is None:
            raise StorageError(f"snapshot manifest {manifest_digest[:12]}… is missing from the blob store")
        manifest = blobs.load(manifest_row.codec, manifest_row.data)
        wanted = blobs.manifest_digests(manifest)
        found = {b.digest: blobs.load(b.codec, b.data)
                 for b in s.scalars(select(BlobRow).where(BlobRow.digest.in_(wanted)))}
        missing = set(wanted) - set(found)
        if missing:
            raise StorageError(f"{len(missing)} part(s) of snapshot manifest {manifest_digest[:12]}… are missing")
        return blobs.join_record(manifest, found)

    def _put_record(self, s: Session, record: Mapping[str, Any], at: datetime) -> str:
        """Store a record's parts and manifest (each at most once); returns the manifest digest.

        Every part is inserted if absent and its `last_used_at` refreshed, so a concurrent
        retention run (which only deletes blobs unused for an hour) cannot take it away.
        """
        manifest, parts = blobs.split_record(record)
        todo = {b.digest: b for b in [manifest, *parts]}
        present = set(s.scalars(select(BlobRow.digest).where(BlobRow.digest.in_(list(todo)))))
        if present:
            s.execute(update(BlobRow).where(BlobRow.digest.in_(list(present))).values(last_used_at=at))
        for digest, blob in todo.items():
            if digest in present:
                continue
            values = {"digest": digest, "codec": blob.codec, "size": blob.size, "data": blob.data,
                      "last_used_at": at}
            s.execute(self._insert_ignore(BlobRow, values))
        return manifest.digest

    def _insert_ignore(self, model: type[Base], values: Mapping[str, Any]) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(model).values(**values).on_conflict_do_nothing()
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(model).values(**values).on_conflict_do_nothing()
        from sqlalchemy import insert

        return insert(model).values(**values)

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
        recorded without its notification, nor notified without being recorded.
        """
        with self.session() as s:
            current = s.scalar(select(func.max(SnapshotRow.version)).where(SnapshotRow.nct_id == nct_id))
            version = (current or 0) + 1
            snap = SnapshotRow(nct_id=nct_id, version=version, fetched_at=fetched_at, content_hash=digest,
                               last_update_post_date=last_update_of(record),
                               manifest=self._put_record(s, record, fetched_at), source=source,
                               ctgov_version=ctgov_version)
            s.add(snap)
            s.flush()
            for change in changes:
                s.add(ChangeRow(nct_id=nct_id, snapshot_id=snap.id, version=version,
                                detected_at=detected_at or fetched_at, baseline=baseline,
                                **change_to_dict(change)))
            for msg in messages:
                s.add(OutboxRow(channel=msg.channel, nct_id=msg.nct_id, kind=msg.kind, created_at=fetched_at,
                                payload=dict(msg.payload), status="pending", attempts=0,
                                next_attempt_at=fetched_at))
            trial = s.get(TrialRow, nct_id) or TrialRow(nct_id=nct_id, first_seen_at=fetched_at)
            status = record.get("protocolSection", {}).get("statusModule", {})
            ident = record.get("protocolSection", {}).get("identificationModule", {})
            trial.title = ident.get("briefTitle")
            trial.overall_status = status.get("overallStatus")
            trial.last_update_post_date = last_update_of(record)
            trial.last_checked_at = fetched_at
            if not baseline and changes:
                trial.last_changed_at = fetched_at
            trial.consecutive_failures = 0
            trial.last_error = None
            trial.not_found = False
            s.merge(trial)
            return version

    # -- trials ----------------------------------------------------------------------------------

    def mark_checked(self, nct_ids: Sequence[str], at: datetime) -> None:
        if not nct_ids:
            return
        with self.session() as s:
            s.execute(update(TrialRow).where(TrialRow.nct_id.in_(list(nct_ids)))
                      .values(last_checked_at=at, consecutive_failures=0, last_error=None))

    def record_failure(self, nct_id: str, error: str, *, not_found: bool = False) -> int:
        """Count a failed fetch; returns the number of consecutive failures."""
        with self.session() as s:
            trial = s.get(TrialRow, nct_id)
            if trial is None:
                trial = TrialRow(nct_id=nct_id, consecutive_failures=0)
                s.add(trial)
            trial.consecutive_failures = (trial.consecutive_failures or 0) + 1
            trial.last_error = error
            trial.not_found = not_found
            return trial.consecutive_failures

    def set_canonical(self, nct_id: str, canonical_id: str) -> None:
        with self.session() as s:
            trial = s.get(TrialRow, nct_id) or TrialRow(nct_id=nct_id)
            trial.canonical_id = canonical_id
            s.merge(trial)

    def trial_states(self) -> dict[str, TrialState]:
        with self.session() as s:
            return {row.nct_id: _trial_state(row) for row in s.scalars(select(TrialRow))}

    # -- changes ---------------------------------------------------------------------------------

    def history(self, nct_id: str, *, since: datetime | None = None,
                include_baseline: bool = True) -> list[StoredChange]:
        with self.session() as s:
            query = select(ChangeRow).where(ChangeRow.nct_id == nct_id)
            if since is not None:
                query = query.where(ChangeRow.detected_at >= since)
            if not include_baseline:
                query = query.where(ChangeRow.baseline.is_(False))
            return [_stored(r) for r in s.scalars(query.order_by(ChangeRow.detected_at, ChangeRow.id))]

    # -- cycles and meta -------------------------------------------------------------------------

    def start_cycle(self, at: datetime) -> int:
        with self.session() as s:
            row = CycleRow(started_at=at, result="running")
            s.add(row)
            s.flush()
            return row.id

    def finish_cycle(self, cycle_id: int, *, at: datetime, result: str, checked: int, changed: int,
                     failed: int, requests: int, detail: Mapping[str, Any] | None = None) -> None:
        with self.session() as s:
            s.execute(update(CycleRow).where(CycleRow.id == cycle_id).values(
                finished_at=at, result=result, checked=checked, changed=changed, failed=failed,
                requests=requests, detail=dict(detail or {})))

    def last_cycle(self) -> CycleInfo | None:
        with self.session() as s:
            row = s.scalars(select(CycleRow).where(CycleRow.finished_at.is_not(None))
                            .order_by(CycleRow.id.desc()).limit(1)).first()
            if row is None:
                return None
            return CycleInfo(id=row.id, started_at=row.started_at, finished_at=row.finished_at,
                             result=row.result, checked=row.checked, changed=row.changed,
                             failed=row.failed, requests=row.requests)

    def get_meta(self, key: str, default: Json = None) -> Json:
        with self.session() as s:
            row = s.get(MetaRow, key)
            return row.value if row else default

    def set_meta(self, key: str, value: Json) -> None:
        with self.session() as s:
            s.merge(MetaRow(key=key, value=value))

    # -- history queries -------------------------------------------------------------------------

    def changes(self, *, since: datetime | None = None, nct_ids: Sequence[str] | None = None,
                include_baseline: bool = False) -> list[StoredChange]:
        """Changes across trials, oldest first (the `changes` command and the Atom feed)."""
        with self.session() as s:
            query = select(ChangeRow)
            if since is not None:
                query = query.where(ChangeRow.detected_at >= since)
            if nct_ids is not None:
                query = query.where(ChangeRow.nct_id.in_(list(nct_ids)))
            if not include_baseline:
                query = query.where(ChangeRow.baseline.is_(False))
            return [_stored(r) for r in s.scalars(query.order_by(ChangeRow.detected_at, ChangeRow.id))]

    def version_at(self, nct_id: str, when: datetime) -> int | None:
        """The version that was current at `when`: the newest stored at or before it."""
        with self.session() as s:
            return s.scalar(select(func.max(SnapshotRow.version)).where(
                SnapshotRow.nct_id == nct_id, SnapshotRow.fetched_at <= when))

    # -- backfill --------------------------------------------------------------------------------

    def prepend_versions(self, nct_id: str, past: Sequence[PastVersion], *,
                         rebase: Sequence[Change] | None) -> int:
        """Insert versions older than every stored one, in ONE transaction; returns how many.

        Stored versions, their changes and the version numbers in outbox payloads move up by
        `len(past)`, so numbers keep following time. The former first version stops being a
        baseline: its "everything added" changes are replaced by `rebase`, its real diff
        against the newest past version.
        """
        if not past:
            return 0
        shift = len(past)
        with self.session() as s:
            first = s.scalars(select(SnapshotRow).where(SnapshotRow.nct_id == nct_id)
                              .order_by(SnapshotRow.version).limit(1)).first()
            if first is not None:
                first_id, first_version, first_at = first.id, first.version, first.fetched_at
                s.execute(update(SnapshotRow).where(SnapshotRow.nct_id == nct_id)
                          .values(version=-SnapshotRow.version))
                s.execute(update(SnapshotRow).where(SnapshotRow.nct_id == nct_id)
                          .values(version=shift - SnapshotRow.version))
                s.execute(update(ChangeRow).where(ChangeRow.nct_id == nct_id)
                          .values(version=ChangeRow.version + shift))
                for row in s.scalars(select(OutboxRow).where(OutboxRow.nct_id == nct_id)):
                    payload = row.payload
                    if isinstance(payload, dict) and isinstance(payload.get("version"), int):
                        row.payload = {**payload, "version": payload["version"] + shift}
                if rebase is not None:
                    s.execute(delete(ChangeRow).where(ChangeRow.snapshot_id == first_id,
                                                      ChangeRow.baseline.is_(True)))
                    for change in rebase:
                        s.add(ChangeRow(nct_id=nct_id, snapshot_id=first_id, version=first_version + shift,
                                        detected_at=first_at, baseline=False,
                                        **change_to_dict(change)))
            for number, item in enumerate(past, start=1):
                snap = SnapshotRow(nct_id=nct_id, version=number, fetched_at=item.posted_at,
                                   content_hash=item.digest, last_update_post_date=last_update_of(item.record),
                                   manifest=self._put_record(s, item.record, item.posted_at),
                                   source="backfill", ctgov_version=item.ctgov_version)
                s.add(snap)
                s.flush()
                for change in item.changes:
                    s.add(ChangeRow(nct_id=nct_id, snapshot_id=snap.id, version=number,
                                    detected_at=item.posted_at, baseline=item.baseline,
                                    **change_to_dict(change)))
            return shift

    def set_ctgov_version(self, nct_id: str, version: int, ctgov_version: int) -> None:
        with self.session() as s:
            s.execute(update(SnapshotRow).where(SnapshotRow.nct_id == nct_id, SnapshotRow.version == version)
                      .values(ctgov_version=ctgov_version))

    # -- storage: statistics and retention -------------------------------------------------------

    def storage_stats(self) -> StorageStats:
        with self.session() as s:
            versions = s.scalar(select(func.count()).select_from(SnapshotRow)) or 0
            pruned = s.scalar(select(func.count()).select_from(SnapshotRow)
                              .where(SnapshotRow.pruned_at.is_not(None))) or 0
            count, compressed, raw = s.execute(select(
                func.count(), func.coalesce(func.sum(func.length(BlobRow.data)), 0),
                func.coalesce(func.sum(BlobRow.size), 0))).one()
            legacy = s.scalar(select(func.coalesce(func.sum(func.length(SnapshotRow.record)), 0))) or 0
            return StorageStats(versions=int(versions), pruned=int(pruned), blobs=int(count),
                                blob_bytes=int(compressed), raw_bytes=int(raw), legacy_bytes=int(legacy))

    def apply_retention(self, *, keep_versions: int | None, keep_days: timedelta | None,
                        now: datetime) -> RetentionResult:
        """Prune old versions' records, then delete the blobs no version uses any more.

        A version is pruned only when it is outside BOTH limits that are set (older than the
        newest `keep_versions` and fetched before `now - keep_days`). Never pruned: a trial's
        latest version, and a version an undelivered notification (outbox status pending or
        sending) names. A pruned version keeps its row, its number and its changes: history
        stays whole, only the full record is gone.
        """
        pruned_ids: list[int] = []
        held = 0
        if keep_versions or keep_days:
            cutoff = now - keep_days if keep_days else None
            with self.session() as s:
                needed = self._outbox_versions(s)
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
        with self.session() as s:
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

    @staticmethod
    def _outbox_versions(s: Session) -> set[tuple[str, int]]:
        rows = s.execute(select(OutboxRow.nct_id, OutboxRow.payload)
                         .where(OutboxRow.status.in_(UNDELIVERED), OutboxRow.nct_id.is_not(None))).all()
        needed: set[tuple[str, int]] = set()
        for nct_id, payload in rows:
            version = payload.get("version") if isinstance(payload, dict) else None
            if isinstance(version, int):
                needed.add((nct_id, version))
        return needed

    # -- locks between processes -----------------------------------------------------------------

    @contextmanager
    def exclusive(self, name: str, *, wait: bool = False) -> Iterator[bool]:
        """Hold a named PostgreSQL advisory lock for the block; yields whether it was got.

        On PostgreSQL, processes sharing a database take turns (a cycle, a backfill); the lock
        lives on its own connection, so it goes away with a crashed process. On SQLite this
        is a no-op that always yields True: one machine, one service.
        """
        if self.dialect != "postgresql":
            yield True
            return
        key = LOCK_KEYS[name]
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as exc:
            raise StorageError(f"database error on {redact_url(self.url)}: {exc}") from exc
        try:
            if wait:
                conn.execute(select(func.pg_advisory_lock(key)))
                got = True
            else:
                got = bool(conn.execute(select(func.pg_try_advisory_lock(key))).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(select(func.pg_advisory_unlock(key)))
                    conn.commit()
        finally:
            conn.close()

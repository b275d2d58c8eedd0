"""Snapshots, changes, the notification outbox and service state, in one SQL database.

SQLite by default (WAL + busy timeout so CLI commands work while the service runs),
PostgreSQL for shared deployments. ORM rows never leave this module: callers get the
frozen dataclasses of `watcher.models` or plain dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from watcher.errors import StorageError
from watcher.models import Change, Event, Json, Snapshot, StoredChange


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class TrialRow(Base):
    __tablename__ = "trials"
    nct_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    canonical_id: Mapped[str | None] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(Text)
    overall_status: Mapped[str | None] = mapped_column(String(40))
    last_update_post_date: Mapped[str | None] = mapped_column(String(10))
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    not_found: Mapped[bool] = mapped_column(Boolean, default=False)


class SnapshotRow(Base):
    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("nct_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nct_id: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    last_update_post_date: Mapped[str | None] = mapped_column(String(10))
    record: Mapped[str] = mapped_column(Text)


class ChangeRow(Base):
    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_nct_detected", "nct_id", "detected_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nct_id: Mapped[str] = mapped_column(String(16))
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"))
    version: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    field: Mapped[str] = mapped_column(Text)
    change: Mapped[str] = mapped_column(String(10))
    old: Mapped[Json] = mapped_column(JSON, nullable=True)
    new: Mapped[Json] = mapped_column(JSON, nullable=True)
    severity: Mapped[str] = mapped_column(String(10), default="minor")
    event: Mapped[Json] = mapped_column(JSON, nullable=True)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxRow(Base):
    """A message owed to a channel. Holds the channel's name, never its URL (secrets)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "channel", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100))
    nct_id: Mapped[str | None] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[Json] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CycleRow(Base):
    __tablename__ = "cycles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str] = mapped_column(String(20), default="running")
    checked: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[Json] = mapped_column(JSON, nullable=True)


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Json] = mapped_column(JSON, nullable=True)


# -- plain values returned to callers ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    channel: str
    nct_id: str | None
    kind: str
    created_at: datetime
    payload: Mapping[str, Json]
    attempts: int
    status: str = "pending"
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    channel: str
    nct_id: str | None
    kind: str
    payload: Mapping[str, Json]


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
class CycleInfo:
    id: int
    started_at: datetime
    finished_at: datetime | None
    result: str
    checked: int
    changed: int
    failed: int
    requests: int


# -- helpers -------------------------------------------------------------------------------------

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


def _change_to_row_values(change: Change) -> dict[str, Any]:
    event = None
    if change.event is not None:
        event = {"kind": change.event.kind, "summary": change.event.summary, "data": dict(change.event.data)}
    return {
        "field": change.field, "change": change.change, "old": change.old, "new": change.new,
        "severity": change.severity, "event": event,
    }


def change_from_row(row: ChangeRow) -> Change:
    event = None
    if row.event:
        event = Event(kind=row.event["kind"], summary=row.event.get("summary", ""), data=row.event.get("data", {}))
    return Change(field=row.field, change=row.change, old=row.old, new=row.new,  # type: ignore[arg-type]
                  severity=row.severity, event=event)  # type: ignore[arg-type]


def _stored(row: ChangeRow) -> StoredChange:
    return StoredChange(id=row.id, nct_id=row.nct_id, version=row.version, detected_at=row.detected_at,
                        change=change_from_row(row), baseline=row.baseline)


def _message(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(id=row.id, channel=row.channel, nct_id=row.nct_id, kind=row.kind,
                         created_at=row.created_at, payload=row.payload, attempts=row.attempts,
                         status=row.status, last_error=row.last_error)


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


class Store:
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
        if create:
            self.create_schema()

    def create_schema(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot create schema in {redact_url(self.url)}: {exc}") from exc

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
            return self._snapshot(row) if row else None

    def snapshot(self, nct_id: str, version: int) -> Snapshot | None:
        with self.session() as s:
            row = s.scalars(select(SnapshotRow).where(SnapshotRow.nct_id == nct_id,
                                                      SnapshotRow.version == version)).first()
            return self._snapshot(row) if row else None

    def versions(self, nct_id: str) -> list[tuple[int, datetime, str | None]]:
        with self.session() as s:
            rows = s.execute(select(SnapshotRow.version, SnapshotRow.fetched_at, SnapshotRow.last_update_post_date)
                             .where(SnapshotRow.nct_id == nct_id).order_by(SnapshotRow.version)).all()
            return [(r[0], r[1], r[2]) for r in rows]

    @staticmethod
    def _snapshot(row: SnapshotRow) -> Snapshot:
        return Snapshot(nct_id=row.nct_id, version=row.version, fetched_at=row.fetched_at,
                        content_hash=row.content_hash, record=json.loads(row.record))

    def latest_hashes(self, nct_ids: Sequence[str]) -> dict[str, str]:
        with self.session() as s:
            latest = (select(SnapshotRow.nct_id, func.max(SnapshotRow.version).label("v"))
                      .group_by(SnapshotRow.nct_id).subquery())
            rows = s.execute(select(SnapshotRow.nct_id, SnapshotRow.content_hash).join(
                latest, (SnapshotRow.nct_id == latest.c.nct_id) & (SnapshotRow.version == latest.c.v))).all()
            wanted = set(nct_ids)
            return {r[0]: r[1] for r in rows if r[0] in wanted}

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
    ) -> int:
        """Store a new version, its changes and the messages they cause in ONE transaction.

        Either all of it is there after a crash or none of it, so a change is never
        recorded without its notification, nor notified without being recorded.
        """
        with self.session() as s:
            current = s.scalar(select(func.max(SnapshotRow.version)).where(SnapshotRow.nct_id == nct_id))
            version = (current or 0) + 1
            snap = SnapshotRow(nct_id=nct_id, version=version, fetched_at=fetched_at, content_hash=digest,
                               last_update_post_date=last_update_of(record), record=canonical_json(record))
            s.add(snap)
            s.flush()
            for change in changes:
                s.add(ChangeRow(nct_id=nct_id, snapshot_id=snap.id, version=version, detected_at=fetched_at,
                                baseline=baseline, **_change_to_row_values(change)))
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

    def known_last_updates(self) -> dict[str, str]:
        with self.session() as s:
            rows = s.execute(select(TrialRow.nct_id, TrialRow.last_update_post_date)
                             .where(TrialRow.last_update_post_date.is_not(None))).all()
            return {r[0]: r[1] for r in rows if r[1] is not None}

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

    def changes_since(self, since: datetime) -> list[StoredChange]:
        with self.session() as s:
            query = select(ChangeRow).where(ChangeRow.detected_at >= since, ChangeRow.baseline.is_(False))
            return [_stored(r) for r in s.scalars(query.order_by(ChangeRow.detected_at, ChangeRow.id))]

    # -- outbox ----------------------------------------------------------------------------------

    def enqueue(self, messages: Sequence[NewMessage], at: datetime) -> None:
        with self.session() as s:
            for msg in messages:
                s.add(OutboxRow(channel=msg.channel, nct_id=msg.nct_id, kind=msg.kind, created_at=at,
                                payload=dict(msg.payload), status="pending", attempts=0, next_attempt_at=at))

    def due_messages(self, now: datetime, limit: int = 500) -> list[OutboxMessage]:
        """Pending messages whose retry time has come, oldest first per channel."""
        with self.session() as s:
            rows = s.scalars(select(OutboxRow).where(OutboxRow.status == "pending",
                                                     OutboxRow.next_attempt_at <= now)
                             .order_by(OutboxRow.channel, OutboxRow.id).limit(limit))
            return [_message(r) for r in rows]

    def mark_sent(self, message_id: int, at: datetime) -> None:
        with self.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == message_id)
                      .values(status="sent", sent_at=at, attempts=OutboxRow.attempts + 1, last_error=None))

    def mark_failed(self, message_id: int, error: str, *, retry_at: datetime | None) -> None:
        """Record a failed attempt; `retry_at=None` parks the message for good."""
        with self.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == message_id).values(
                status="pending" if retry_at else "parked", attempts=OutboxRow.attempts + 1,
                last_error=error, next_attempt_at=retry_at))

    def outbox_counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all()
            return {r[0]: int(r[1]) for r in rows}

    def messages(self, *, status: str | None = None) -> list[OutboxMessage]:
        with self.session() as s:
            query = select(OutboxRow).order_by(OutboxRow.id)
            if status:
                query = query.where(OutboxRow.status == status)
            return [_message(r) for r in s.scalars(query)]

    # The sender's side of the outbox (watcher.outbox). A message moves
    #   pending → sending (claimed; next_attempt_at is the claim's lease) → sent
    #                                                                   → pending (retry later) → … → parked
    # and, on a digest channel, pending "changes" → digested (folded into one "digest" message).

    def claim_next(self, now: datetime, *, lease_until: datetime, held_channels: Sequence[str] = (),
                   skip_channels: Sequence[str] = ()) -> tuple[OutboxMessage, bool] | None:
        """Claim the oldest message of one channel's queue, if it is due; None when none is.

        Only a queue's head is ever claimed, so a channel's messages go out in order and a
        failing head holds back its own channel only. The claim is a compare-and-set UPDATE
        (on PostgreSQL after `SELECT … FOR UPDATE SKIP LOCKED`), so two processes sharing the
        database never claim one message twice. A `sending` head whose lease ran out was
        claimed by a process that died: it is claimed again, and the second value is True.
        `held_channels` are digest channels: their "changes" messages wait to be folded.
        """
        with self.session() as s:
            heads = select(func.min(OutboxRow.id)).where(OutboxRow.status.in_(("pending", "sending")))
            if held_channels:
                heads = heads.where(~((OutboxRow.channel.in_(list(held_channels))) & (OutboxRow.kind == "changes")))
            if skip_channels:
                heads = heads.where(OutboxRow.channel.not_in(list(skip_channels)))
            heads = heads.group_by(OutboxRow.channel)
            query = (select(OutboxRow).where(OutboxRow.id.in_(heads), OutboxRow.next_attempt_at <= now,
                                             OutboxRow.status.in_(("pending", "sending")))
                     .order_by(OutboxRow.next_attempt_at, OutboxRow.id).limit(1))
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            row = s.scalars(query).first()
            if row is None:
                return None
            recovered = row.status == "sending"
            message = OutboxMessage(id=row.id, channel=row.channel, nct_id=row.nct_id, kind=row.kind,
                                    created_at=row.created_at, payload=row.payload, attempts=row.attempts + 1,
                                    status="sending", last_error=row.last_error)
            claimed = s.execute(update(OutboxRow).where(
                OutboxRow.id == row.id, OutboxRow.status == row.status, OutboxRow.next_attempt_at <= now,
            ).values(status="sending", next_attempt_at=lease_until, attempts=OutboxRow.attempts + 1))
            if getattr(claimed, "rowcount", 0) != 1:
                return None
            return message, recovered

    def finish_sent(self, message_id: int, at: datetime, *, clear_meta: str | None = None) -> None:
        """The channel accepted the message: mark it sent (and drop its part-progress key)."""
        from sqlalchemy import delete

        with self.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == message_id)
                      .values(status="sent", sent_at=at, last_error=None, next_attempt_at=None))
            if clear_meta:
                s.execute(delete(MetaRow).where(MetaRow.key == clear_meta))

    def finish_failed(self, message_id: int, error: str, *, retry_at: datetime | None) -> None:
        """A claimed message was refused: back to pending until `retry_at`, or parked (None)."""
        with self.session() as s:
            s.execute(update(OutboxRow).where(OutboxRow.id == message_id).values(
                status="pending" if retry_at else "parked", last_error=error, next_attempt_at=retry_at))

    def fold_digest(self, channel: str, *, at: datetime, build: Any, meta: Mapping[str, Json]) -> int | None:
        """Fold a digest channel's pending "changes" messages into one "digest" message.

        `build(messages)` makes the digest payload. The new message, the folded ones turning
        `digested` and the `meta` keys (the channel's last digest time) are one transaction;
        a fold that races another process's fold is rolled back. Returns the new message id,
        or None when there was nothing to fold.
        """
        class _Raced(Exception):
            pass

        try:
            with self.session() as s:
                query = (select(OutboxRow).where(OutboxRow.channel == channel, OutboxRow.kind == "changes",
                                                 OutboxRow.status == "pending").order_by(OutboxRow.id))
                rows = list(s.scalars(query))
                for key, value in meta.items():
                    s.merge(MetaRow(key=key, value=value))
                if not rows:
                    return None
                ids = [r.id for r in rows]
                folded = s.execute(update(OutboxRow).where(OutboxRow.id.in_(ids), OutboxRow.status == "pending")
                                   .values(status="digested", sent_at=at, next_attempt_at=None))
                if getattr(folded, "rowcount", 0) != len(ids):
                    raise _Raced
                digest = OutboxRow(channel=channel, nct_id=None, kind="digest", created_at=at,
                                   payload=dict(build([_message(r) for r in rows])), status="pending",
                                   attempts=0, next_attempt_at=at)
                s.add(digest)
                s.flush()
                return digest.id
        except _Raced:
            return None

    def enqueue_with_meta(self, messages: Sequence[NewMessage], at: datetime, meta: Mapping[str, Json]) -> None:
        """Enqueue messages and record why (e.g. the last heartbeat time) in one transaction."""
        with self.session() as s:
            for msg in messages:
                s.add(OutboxRow(channel=msg.channel, nct_id=msg.nct_id, kind=msg.kind, created_at=at,
                                payload=dict(msg.payload), status="pending", attempts=0, next_attempt_at=at))
            for key, value in meta.items():
                s.merge(MetaRow(key=key, value=value))

    def outbox_by_channel(self) -> dict[str, dict[str, int]]:
        """channel → status → count: what `status` shows per channel (pending, sending, parked…)."""
        with self.session() as s:
            rows = s.execute(select(OutboxRow.channel, OutboxRow.status, func.count())
                             .group_by(OutboxRow.channel, OutboxRow.status)).all()
            result: dict[str, dict[str, int]] = {}
            for channel, status, count in rows:
                result.setdefault(channel, {})[status] = int(count)
            return result

    def requeue_parked(self, at: datetime, *, channel: str | None = None) -> int:
        """Give parked messages a fresh set of attempts (after fixing a channel); returns how many."""
        with self.session() as s:
            query = update(OutboxRow).where(OutboxRow.status == "parked")
            if channel:
                query = query.where(OutboxRow.channel == channel)
            result = s.execute(query.values(status="pending", attempts=0, next_attempt_at=at))
            return int(getattr(result, "rowcount", 0) or 0)

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

"""The tables, as SQLAlchemy ORM classes. Alembic's migrations (`watcher/store/migrations`) own the
schema's history; these classes must build the same tables (a test compares them).

Rows never leave `watcher.store`: callers get the values of `watcher.store.values` and `outbox.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from watcher.models import Json
from watcher.times import utc


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return utc(value)


class CleanText(TypeDecorator[str]):
    """Text as the registry sends it, less NUL characters: PostgreSQL refuses `\\u0000` in a text
    value (SQLite stores it), and no reader of a trial's title or status wants one."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return value.replace("\x00", "") if value is not None else None


class Base(DeclarativeBase):
    pass


class TrialRow(Base):
    __tablename__ = "trials"
    __table_args__ = (
        Index("ix_trials_changed", "last_changed_at", "nct_id"),
        Index("ix_trials_next_date", "primary_completion", "nct_id"),
        Index("ix_trials_completion", "completion"),
        Index("ix_trials_status", "overall_status", "last_changed_at", "nct_id"),
        Index("ix_trials_status_date", "overall_status", "primary_completion", "nct_id"),
    )
    nct_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    canonical_id: Mapped[str | None] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(CleanText)
    overall_status: Mapped[str | None] = mapped_column(CleanText)  # the registry's word, however long
    last_update_post_date: Mapped[str | None] = mapped_column(String(10))
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(CleanText)
    not_found: Mapped[bool] = mapped_column(Boolean, default=False)
    # revision 0005: what the web view searches and sorts by, from the newest version
    sponsor: Mapped[str | None] = mapped_column(Text, nullable=True)
    conditions: Mapped[str | None] = mapped_column(Text, nullable=True)
    primary_completion: Mapped[str | None] = mapped_column(String(10), nullable=True)
    completion: Mapped[str | None] = mapped_column(String(10), nullable=True)  # revision 0008: the dates page


SEARCH_INDEX = "trials_search"
"""Revision 0008's word index over the trials' title, conditions and sponsor: on SQLite an FTS5 table
(and the shadow tables it keeps), on PostgreSQL a GIN index."""

POSTGRES_ONLY_INDEXES = frozenset({"ix_trials_changed_desc", "ix_trials_status_desc"})
"""Revision 0008's indexes in the list's `DESC NULLS LAST` order, which only PostgreSQL needs."""


def is_unmodelled_index(name: str | None) -> bool:
    """An index the migrations make in one database's own SQL, not from a model (the word index, the
    PostgreSQL-only orders): the schema comparison leaves them out."""
    return bool(name) and (
        name == "ix_trials_search" or str(name).startswith(SEARCH_INDEX) or name in POSTGRES_ONLY_INDEXES
    )


class SnapshotRow(Base):
    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("nct_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nct_id: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_hash: Mapped[str] = mapped_column(String(64))
    last_update_post_date: Mapped[str | None] = mapped_column(String(10))
    record: Mapped[str | None] = mapped_column(Text, nullable=True)  # first schema only; now in blobs
    manifest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str | None] = mapped_column(String(10), nullable=True)  # poll | gap | backfill
    ctgov_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 0-based, when known
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # a trial's first version: its "added" changes are derived from the record when read, not stored
    baseline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class BlobRow(Base):
    """A compressed, content-addressed part of a record (or a version's manifest)."""

    __tablename__ = "blobs"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    codec: Mapped[str] = mapped_column(String(8))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BlobRefRow(Base):
    """A manifest names a part: lets retention find unused blobs in SQL, without decompressing.

    Both are digest prefixes (`blobs.ref_key`): 32 characters a row instead of 128. Two digests
    sharing a prefix can only make retention keep a blob it could have deleted.
    """

    __tablename__ = "blob_refs"
    __table_args__ = ({"sqlite_with_rowid": False},)  # the key is the row: one copy of each pair
    manifest: Mapped[str] = mapped_column(String(16), primary_key=True)
    part: Mapped[str] = mapped_column(String(16), primary_key=True)


class ChangeRow(Base):
    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_nct_detected", "nct_id", "detected_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nct_id: Mapped[str] = mapped_column(String(16))
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id"))
    version: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    field: Mapped[str] = mapped_column(CleanText)
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
    last_error: Mapped[str | None] = mapped_column(CleanText)
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


class SearchMatchRow(Base):
    """A study a saved search has matched (so it is announced once): revision 0004."""

    __tablename__ = "search_matches"
    search: Mapped[str] = mapped_column(String(64), primary_key=True)
    nct_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)  # found by the search's first run
    title: Mapped[str | None] = mapped_column(CleanText, nullable=True)


class NoEditEventRow(Base):
    """A no-edit condition (watcher/detect/noedit.py) already announced for a trial, so it is sent once."""

    __tablename__ = "noedit_events"
    nct_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    detail: Mapped[Json] = mapped_column(JSON, nullable=True)


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Json] = mapped_column(JSON, nullable=True)

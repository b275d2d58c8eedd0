"""The frozen values the store hands to callers (ORM rows never leave `watcher.store`).

The outbox's `OutboxMessage` is in `watcher.store.outbox`; what is enqueued, `NewMessage`, in `watcher.messages`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.detect.canonical import Encoded
from watcher.messages import NewMessage
from watcher.models import Change


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
    trials: int = 0  # trials with a stored version (or a row: watched, never stored)
    baselines: int = 0  # versions whose "added" changes are derived when read
    change_rows: int = 0
    database_bytes: int | None = None  # the whole database (file or pg_database_size), when known

    @property
    def bytes_per_trial(self) -> int:
        """Compressed record bytes (blobs and first-schema records) per trial."""
        return (self.blob_bytes + self.legacy_bytes) // self.trials if self.trials else 0


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
    """A version from ClinicalTrials.gov's record history, for `store.versions.prepend`."""

    record: Mapping[str, Any]
    digest: str
    posted_at: datetime
    ctgov_version: int | None
    changes: Sequence[Change]
    baseline: bool


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A fetched record to store as a trial's next version, for `store.versions.save_many`.

    `changes` and `messages` are the version's field changes and the notifications they cause; a
    `baseline` (the trial's first version) stores no changes: they are derived from its record when read.
    `encoded`: the record's canonical parts, when the caller made them for `digest` (not made again).
    """

    nct_id: str
    record: Mapping[str, Any]
    digest: str
    fetched_at: datetime
    changes: Sequence[Change] = ()
    baseline: bool = False
    messages: Sequence[NewMessage] = ()
    source: str = "poll"
    ctgov_version: int | None = None
    detected_at: datetime | None = None
    encoded: Encoded | None = None

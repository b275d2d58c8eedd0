"""The frozen values the store hands to callers (ORM rows never leave `watcher.store`).

The outbox's own values, `NewMessage` and `OutboxMessage`, are in `watcher.store.outbox`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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

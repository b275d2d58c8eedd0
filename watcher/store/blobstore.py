"""Records in the `blobs` table: a record written as its parts and manifest, and read back.

The splitting and compression are `watcher.store.blobs` (pure functions); these functions run
inside a session the caller (`Store`) has open, so a version and its parts commit together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from watcher.errors import StorageError
from watcher.models import Snapshot
from watcher.store import blobs
from watcher.store.schema import BlobRow, SnapshotRow


def snapshot_of(s: Session, row: SnapshotRow) -> Snapshot | None:
    """A version row with its record; None when retention pruned the record."""
    if row.pruned_at is not None:
        return None
    if row.record is not None:
        record = json.loads(row.record)
    elif row.manifest is not None:
        record = load_record(s, row.manifest)
    else:
        return None
    return Snapshot(nct_id=row.nct_id, version=row.version, fetched_at=row.fetched_at,
                    content_hash=row.content_hash, record=record)


def load_record(s: Session, manifest_digest: str) -> dict[str, Any]:
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


def put_record(s: Session, record: Mapping[str, Any], at: datetime, *, dialect: str) -> str:
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
        s.execute(_insert_blob_if_absent(values, dialect))
    return manifest.digest


def _insert_blob_if_absent(values: Mapping[str, Any], dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(BlobRow).values(**values).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(BlobRow).values(**values).on_conflict_do_nothing()
    return insert(BlobRow).values(**values)

"""Records in the `blobs` table: a record written as its parts and manifest, and read back.

The splitting and compression are `watcher.store.blobs` (pure functions); these functions run
inside a session the caller (`Store`) has open, so a version and its parts commit together.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from watcher.detect.canonical import Encoded
from watcher.errors import StorageError
from watcher.models import Snapshot
from watcher.store import blobs
from watcher.store.schema import BlobRefRow, BlobRow, SnapshotRow


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
    return Snapshot(
        nct_id=row.nct_id,
        version=row.version,
        fetched_at=row.fetched_at,
        content_hash=row.content_hash,
        record=record,
        ctgov_version=row.ctgov_version,
    )


def load_record(s: Session, manifest_digest: str) -> dict[str, Any]:
    manifest_row = s.get(BlobRow, manifest_digest)
    if manifest_row is None:
        raise StorageError(
            f"snapshot manifest {manifest_digest[:12]}… is missing from the blob store; "
            "restore the database from a backup"
        )
    manifest = blobs.load(manifest_row.codec, manifest_row.data)
    wanted = blobs.manifest_digests(manifest)
    found = {
        b.digest: blobs.load(b.codec, b.data) for b in s.scalars(select(BlobRow).where(BlobRow.digest.in_(wanted)))
    }
    missing = set(wanted) - set(found)
    if missing:
        raise StorageError(
            f"{len(missing)} part(s) of snapshot manifest {manifest_digest[:12]}… are missing; "
            "restore the database from a backup"
        )
    return blobs.join_record(manifest, found)


def load_records(s: Session, manifest_digests: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The records of several manifests, in two queries per 500 (manifests, then their parts)."""
    manifests: dict[str, Any] = {}
    for chunk in chunks(sorted(set(manifest_digests)), 500):
        manifests.update(
            {b.digest: blobs.load(b.codec, b.data) for b in s.scalars(select(BlobRow).where(BlobRow.digest.in_(chunk)))}
        )
    missing = set(manifest_digests) - manifests.keys()
    if missing:
        first = sorted(missing)[0]
        raise StorageError(
            f"snapshot manifest {first[:12]}… is missing from the blob store; restore the database from a backup"
        )
    wanted = sorted({d for m in manifests.values() for d in blobs.manifest_digests(m)})
    found: dict[str, Any] = {}
    for chunk in chunks(wanted, 500):
        found.update(
            {b.digest: blobs.load(b.codec, b.data) for b in s.scalars(select(BlobRow).where(BlobRow.digest.in_(chunk)))}
        )
    if len(found) < len(wanted):
        raise StorageError(
            f"{len(wanted) - len(found)} part(s) of stored records are missing; restore the database from a backup"
        )
    return {digest: blobs.join_record(manifest, found) for digest, manifest in manifests.items()}


def put_record(s: Session, record: Mapping[str, Any], at: datetime, *, dialect: str) -> str:
    """Store one record's parts and manifest (each at most once); returns the manifest digest."""
    return put_records(s, [(record, at, None)], dialect=dialect)[0]


def put_records(
    s: Session, records: Sequence[tuple[Mapping[str, Any], datetime, Encoded | None]], *, dialect: str
) -> list[str]:
    """Store a page of records' parts and manifests; returns their manifest digests, in order.

    One query learns which blobs exist; those have their `last_used_at` refreshed (so a concurrent
    retention run, which only deletes blobs unused for an hour, cannot take them away) and the rest
    are compressed and inserted with one executemany `INSERT … ON CONFLICT DO NOTHING` (another
    writer may insert the same part meanwhile). Each manifest's parts are listed in `blob_refs`
    likewise (an old manifest reused may predate the list). A record's `Encoded` parts, when given,
    are not serialised again.
    """
    if not records:
        return []
    at = max(when for _, when, _ in records)
    todo: dict[str, blobs.Part] = {}
    refs: dict[str, list[str]] = {}
    digests: list[str] = []
    for record, _, encoded in records:
        manifest, parts = blobs.record_parts(record, encoded)
        digests.append(manifest.digest)
        todo.setdefault(manifest.digest, manifest)
        for part in parts:
            todo.setdefault(part.digest, part)
        refs[blobs.ref_key(manifest.digest)] = sorted({blobs.ref_key(p.digest) for p in parts})
    present: set[str] = set()
    for chunk in chunks(list(todo), 500):
        present.update(s.scalars(select(BlobRow.digest).where(BlobRow.digest.in_(chunk))))
    for chunk in chunks(sorted(present), 500):
        s.execute(update(BlobRow).where(BlobRow.digest.in_(chunk)).values(last_used_at=at))
    new = [
        {"digest": b.digest, "codec": b.codec, "size": b.size, "data": b.data, "last_used_at": at}
        for b in (part.blob() for d, part in todo.items() if d not in present)
    ]
    if new:
        s.execute(insert_if_absent(_table(BlobRow), dialect), new)
    listed = [{"manifest": m, "part": p} for m, parts in refs.items() for p in parts]
    if listed:
        s.execute(insert_if_absent(_table(BlobRefRow), dialect), listed)
    return digests


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """`items` in slices of at most `size`: IN lists stay under every backend's parameter limit."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def insert_if_absent(table: Table, dialect: str) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` on SQLite and PostgreSQL, for executemany."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    return insert(table)

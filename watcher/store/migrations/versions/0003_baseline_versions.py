"""Baselines are versions, not rows; manifests' parts are listed in SQL.

A trial's first version used to be stored with one "added" change row per field (167 for a typical
record). Now the version is marked `snapshots.baseline` and its "added" changes are derived from
its record when read. Existing baseline rows are dropped only where they are derivable: the
version's record is still there (not pruned) and deriving gives the very rows stored (fields,
kinds, values and events; severities follow the rules of the day when read). Otherwise they stay,
and are read as before.

`blob_refs` lists the parts each manifest names (by digest prefix), so retention finds unused blobs
with one query instead of decompressing every manifest.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

from watcher.detect import changes_between
from watcher.models import change_to_dict
from watcher.store import blobs

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_snapshots = sa.table(
    "snapshots",
    sa.column("id", sa.Integer()),
    sa.column("nct_id", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("fetched_at", sa.DateTime(timezone=True)),
    sa.column("record", sa.Text()),
    sa.column("manifest", sa.String()),
    sa.column("pruned_at", sa.DateTime(timezone=True)),
    sa.column("baseline", sa.Boolean()),
)
_changes = sa.table(
    "changes",
    sa.column("id", sa.Integer()),
    sa.column("nct_id", sa.String()),
    sa.column("snapshot_id", sa.Integer()),
    sa.column("version", sa.Integer()),
    sa.column("detected_at", sa.DateTime(timezone=True)),
    sa.column("field", sa.Text()),
    sa.column("change", sa.String()),
    sa.column("old", sa.JSON()),
    sa.column("new", sa.JSON()),
    sa.column("severity", sa.String()),
    sa.column("event", sa.JSON()),
    sa.column("baseline", sa.Boolean()),
)
_blobs = sa.table(
    "blobs", sa.column("digest", sa.String()), sa.column("codec", sa.String()), sa.column("data", sa.LargeBinary())
)
_refs = sa.table("blob_refs", sa.column("manifest", sa.String()), sa.column("part", sa.String()))


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("baseline", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "blob_refs",
        sa.Column("manifest", sa.String(16), primary_key=True),
        sa.Column("part", sa.String(16), primary_key=True),
        sqlite_with_rowid=False,
    )
    conn = op.get_bind()
    _list_manifest_parts(conn)
    _derive_baselines(conn)


def _load(conn: sa.Connection, digest: str) -> Any:
    row = conn.execute(sa.select(_blobs.c.codec, _blobs.c.data).where(_blobs.c.digest == digest)).first()
    return None if row is None else blobs.load(row.codec, row.data)


def _list_manifest_parts(conn: sa.Connection) -> None:
    digests = (
        conn.execute(sa.select(_snapshots.c.manifest).where(_snapshots.c.manifest.is_not(None)).distinct())
        .scalars()
        .all()
    )
    for digest in digests:
        manifest = _load(conn, digest)
        if manifest is None:
            continue
        key = blobs.ref_key(digest)
        listed = set(conn.execute(sa.select(_refs.c.part).where(_refs.c.manifest == key)).scalars())
        parts = sorted({blobs.ref_key(d) for d in blobs.manifest_digests(manifest)} - listed)
        if parts:  # another manifest with the same key prefix may have listed some already
            conn.execute(_refs.insert(), [{"manifest": key, "part": p} for p in parts])


def _record(conn: sa.Connection, row: Any) -> Mapping[str, Any] | None:
    if row.pruned_at is not None:
        return None
    if row.record is not None:
        return json.loads(row.record)  # type: ignore[no-any-return]
    if row.manifest is None:
        return None
    manifest = _load(conn, row.manifest)
    if manifest is None:
        return None
    parts = {d: _load(conn, d) for d in blobs.manifest_digests(manifest)}
    if any(value is None for value in parts.values()):
        return None
    return blobs.join_record(manifest, parts)


def _key(item: Mapping[str, Any]) -> str:
    return json.dumps({k: item.get(k) for k in ("field", "change", "old", "new", "event")}, sort_keys=True)


def _derive_baselines(conn: sa.Connection) -> None:
    ids = (
        conn.execute(sa.select(_changes.c.snapshot_id).where(_changes.c.baseline.is_(True)).distinct()).scalars().all()
    )
    for snapshot_id in ids:
        snap = conn.execute(sa.select(_snapshots).where(_snapshots.c.id == snapshot_id)).first()
        record = _record(conn, snap) if snap is not None else None
        if record is None:
            continue  # pruned: the rows are all that is left of the baseline
        stored = [
            dict(r) for r in conn.execute(sa.select(_changes).where(_changes.c.snapshot_id == snapshot_id)).mappings()
        ]
        if any(not row["baseline"] for row in stored):
            continue  # a version with real changes too is no plain baseline
        derived = [json.loads(json.dumps(change_to_dict(c))) for c in changes_between(None, record)]
        if sorted(map(_key, stored)) != sorted(map(_key, derived)):
            continue
        conn.execute(sa.delete(_changes).where(_changes.c.snapshot_id == snapshot_id))
        conn.execute(sa.update(_snapshots).where(_snapshots.c.id == snapshot_id).values(baseline=True))


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_snapshots).where(_snapshots.c.baseline.is_(True))).all()
    for snap in rows:
        record = _record(conn, snap)
        if record is None:
            continue
        changes = [
            {
                "nct_id": snap.nct_id,
                "snapshot_id": snap.id,
                "version": snap.version,
                "detected_at": snap.fetched_at,
                "baseline": True,
                **change_to_dict(c),
            }
            for c in changes_between(None, record)
        ]
        if changes:
            conn.execute(_changes.insert(), changes)
    op.drop_table("blob_refs")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("baseline")

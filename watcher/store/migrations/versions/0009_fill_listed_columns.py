"""Trials stored before revisions 0005 and 0008 get the columns the watch list searches and sorts by.

0005 (sponsor, conditions, primary completion) and 0008 (completion) added them to `trials`, filled as
each trial's next version was written. Most trials change rarely, so after an upgrade a search by
sponsor or condition missed nearly every trial stored before it, the list sorted them last by date and
`/dates` did not show them, for months. This revision fills them from each trial's newest stored
record, as the write path would (`watcher.detect.record`), 500 trials a query; the word index follows
(SQLite's triggers fire on these columns, PostgreSQL's GIN index is over an expression of them).

It reads three parts of every such trial's newest record once: 0.18 ms a trial on the 2-core test
machine (37 s for a 200,000-trial store), so about two minutes for a whole-registry database. A trial
whose newest record retention pruned keeps its columns empty until its next version, as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from alembic import op

from watcher.detect.record import completion_of, conditions_of, primary_completion_of, sponsor_of
from watcher.store import blobs

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 500
PROGRESS_EVERY = 50_000  # trials between two log lines: a whole-registry upgrade is minutes of silence otherwise
FILLED = ("sponsor", "conditions", "primary_completion", "completion")
READ = {("protocolSection", m) for m in ("sponsorCollaboratorsModule", "conditionsModule", "statusModule")}
"""The record's parts these columns come from: only they are decompressed and parsed (a third of the time)."""


def _blobs(conn: sa.Connection, table: sa.Table, digests: Sequence[str]) -> dict[str, Any]:
    """The decoded blobs of these digests, asked BATCH at a time (older SQLite allows 999 parameters)."""
    wanted = sorted(set(digests))
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        rows = conn.execute(sa.select(table.c.digest, table.c.codec, table.c.data).where(table.c.digest.in_(chunk)))
        found.update({r.digest: blobs.load(r.codec, r.data) for r in rows})
    return found


def _newest_records(conn: sa.Connection, t: Mapping[str, sa.Table], nct_ids: Sequence[str]) -> dict[str, Any]:
    """Each trial's newest stored record as far as the columns read it: only the parts in `READ` (every
    record is in blobs since 0002; a version retention pruned has no manifest)."""
    snapshots = t["snapshots"]
    newest = (
        sa.select(snapshots.c.nct_id, sa.func.max(snapshots.c.version).label("version"))
        .where(snapshots.c.nct_id.in_(nct_ids))
        .group_by(snapshots.c.nct_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(snapshots.c.nct_id, snapshots.c.manifest)
        .join(newest, sa.and_(snapshots.c.nct_id == newest.c.nct_id, snapshots.c.version == newest.c.version))
        .where(snapshots.c.manifest.is_not(None))
    ).all()
    manifests = {
        digest: {**manifest, "parts": [e for e in manifest["parts"] if tuple(e[0]) in READ]}
        for digest, manifest in _blobs(conn, t["blobs"], [r.manifest for r in rows]).items()
    }
    parts = _blobs(conn, t["blobs"], [d for m in manifests.values() for d in blobs.manifest_digests(m)])
    return {
        r.nct_id: blobs.join_record(manifests[r.manifest], parts)
        for r in rows
        if r.manifest in manifests and all(d in parts for d in blobs.manifest_digests(manifests[r.manifest]))
    }


def upgrade() -> None:
    conn = op.get_bind()
    meta = sa.MetaData()
    meta.reflect(conn, only=["trials", "snapshots", "blobs"])
    trials = meta.tables["trials"]
    empty = sa.or_(*(trials.c[name].is_(None) for name in FILLED))
    fill = (
        sa.update(trials)
        .where(trials.c.nct_id == sa.bindparam("id"))
        .values({name: sa.bindparam(f"new_{name}") for name in FILLED})
    )
    log = structlog.get_logger("watcher.store.migrations")
    after, seen = "", 0
    while True:
        ids = list(
            conn.scalars(
                sa.select(trials.c.nct_id).where(trials.c.nct_id > after, empty).order_by(trials.c.nct_id).limit(BATCH)
            )
        )
        if not ids:
            return
        after = ids[-1]
        records = _newest_records(conn, meta.tables, ids)
        values = [
            {
                "id": nct_id,
                "new_sponsor": sponsor_of(record),
                "new_conditions": conditions_of(record),
                "new_primary_completion": primary_completion_of(record),
                "new_completion": completion_of(record),
            }
            for nct_id, record in records.items()
        ]
        if values:
            conn.execute(fill, values)
        if seen // PROGRESS_EVERY != (seen + len(ids)) // PROGRESS_EVERY:
            log.info("db.filling_listed_columns", trials=seen + len(ids), last=after)
        seen += len(ids)


def downgrade() -> None:
    """Nothing to undo: the columns keep what they were given (0008's downgrade drops `completion`)."""

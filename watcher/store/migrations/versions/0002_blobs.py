"""Compressed, deduplicated snapshots: the `blobs` table and a manifest per snapshot.

Existing records move from `snapshots.record` into blobs; `record` stays (nullable) so a
database can be downgraded. Snapshots also learn where they came from (`source`), their
ClinicalTrials.gov version number when known (`ctgov_version`) and when retention pruned them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from watcher.store import blobs

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("codec", sa.String(8), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("snapshots") as batch:
        batch.alter_column("record", existing_type=sa.Text(), nullable=True)
        batch.add_column(sa.Column("manifest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("source", sa.String(10), nullable=True))
        batch.add_column(sa.Column("ctgov_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True))
    _move_records_into_blobs()


def _move_records_into_blobs() -> None:
    conn = op.get_bind()
    snapshots = sa.table(
        "snapshots",
        sa.column("id", sa.Integer()),
        sa.column("record", sa.Text()),
        sa.column("manifest", sa.String()),
        sa.column("source", sa.String()),
    )
    table = sa.table(
        "blobs",
        sa.column("digest", sa.String()),
        sa.column("codec", sa.String()),
        sa.column("size", sa.Integer()),
        sa.column("data", sa.LargeBinary()),
        sa.column("last_used_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    ids = [r[0] for r in conn.execute(sa.select(snapshots.c.id).where(snapshots.c.record.is_not(None)))]
    for snapshot_id in ids:
        text = conn.execute(sa.select(snapshots.c.record).where(snapshots.c.id == snapshot_id)).scalar_one()
        manifest, parts = blobs.split_record(json.loads(text))
        for blob in [manifest, *parts]:
            exists = conn.execute(sa.select(table.c.digest).where(table.c.digest == blob.digest)).first()
            if exists is None:
                conn.execute(
                    table.insert().values(
                        digest=blob.digest, codec=blob.codec, size=blob.size, data=blob.data, last_used_at=now
                    )
                )
        conn.execute(
            snapshots.update()
            .where(snapshots.c.id == snapshot_id)
            .values(manifest=manifest.digest, record=None, source="poll")
        )


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, manifest FROM snapshots WHERE record IS NULL")).all()
    for snapshot_id, digest in rows:
        record: object = {}
        if digest is not None:
            manifest = _load(conn, digest)
            parts = {d: _load(conn, d) for d in blobs.manifest_digests(manifest)}
            record = blobs.join_record(manifest, parts)
        conn.execute(
            sa.text("UPDATE snapshots SET record = :r WHERE id = :i"),
            {"r": json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False), "i": snapshot_id},
        )
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("pruned_at")
        batch.drop_column("ctgov_version")
        batch.drop_column("source")
        batch.drop_column("manifest")
        batch.alter_column("record", existing_type=sa.Text(), nullable=False)
    op.drop_table("blobs")


def _load(conn: sa.Connection, digest: str) -> dict[str, object]:
    codec, data = conn.execute(sa.text("SELECT codec, data FROM blobs WHERE digest = :d"), {"d": digest}).one()
    value: dict[str, object] = blobs.load(codec, data)
    return value

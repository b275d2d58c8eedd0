"""Revision 0003: baselines become versions. A database written the way revision 0002's code wrote it
(one "added" change row per baseline field) upgrades, and every view reads the same before and after."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import create_engine

from tests.support.fakeapi import load_fixture
from watcher.detect import changes_between
from watcher.detect.record import content_hash
from watcher.models import Change, Event, StoredChange, change_to_dict
from watcher.store import Store, blobs
from watcher.store.migrate import upgrade_schema
from watcher.views.changes import change_row, to_csv
from watcher.views.feeds import entries_from
from watcher.views.trial_page import Baseline, render_trial_page

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
A, B, C = "NCT04728893", "NCT03064438", "NCT06610240"


def _tables(engine: sa.Engine) -> Mapping[str, sa.Table]:
    meta = sa.MetaData()
    meta.reflect(engine, only=["snapshots", "changes", "blobs", "outbox", "trials"])
    return meta.tables


def _save_as_0002(
    conn: sa.Connection,
    t: Mapping[str, sa.Table],
    nct_id: str,
    record: dict[str, Any],
    *,
    version: int,
    at: datetime,
    changes: list[Change],
    baseline: bool,
    pruned: bool = False,
) -> None:
    """Revision 0002's `Store.save_version`: the record's parts as blobs, then one change row per change
    (for a baseline: every field of the record, "added")."""
    manifest, parts = blobs.split_record(record)
    for blob in (manifest, *parts):
        if conn.execute(sa.select(t["blobs"].c.digest).where(t["blobs"].c.digest == blob.digest)).first() is None:
            conn.execute(
                t["blobs"]
                .insert()
                .values(digest=blob.digest, codec=blob.codec, size=blob.size, data=blob.data, last_used_at=at)
            )
    snapshot_id = conn.execute(
        t["snapshots"]
        .insert()
        .values(
            nct_id=nct_id,
            version=version,
            fetched_at=at,
            content_hash=content_hash(record),
            manifest=None if pruned else manifest.digest,
            source="poll",
            pruned_at=at + timedelta(days=30) if pruned else None,
        )
    ).inserted_primary_key[0]
    for change in changes:
        conn.execute(
            t["changes"]
            .insert()
            .values(
                nct_id=nct_id,
                snapshot_id=snapshot_id,
                version=version,
                detected_at=at,
                baseline=baseline,
                **change_to_dict(change),
            )
        )


def _database_of_today(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    upgrade_schema(engine, "0002")
    t = _tables(engine)
    first, other, third = load_fixture(A), load_fixture(B), load_fixture(C)
    edited = load_fixture(A)
    edited["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"
    status = Change(
        "status.overallStatus",
        "changed",
        "RECRUITING",
        "SUSPENDED",
        "critical",
        Event("status_transition", "RECRUITING → SUSPENDED", {"from": "RECRUITING"}),
    )
    with engine.begin() as conn:
        _save_as_0002(conn, t, A, first, version=1, at=T0, changes=changes_between(None, first), baseline=True)
        _save_as_0002(conn, t, A, edited, version=2, at=T0 + timedelta(days=1), changes=[status], baseline=False)
        _save_as_0002(
            conn,
            t,
            B,
            other,
            version=1,
            at=T0 + timedelta(hours=1),
            changes=changes_between(None, other),
            baseline=True,
        )
        # retention pruned C's first version: its stored rows are all that is left of its baseline
        _save_as_0002(
            conn, t, C, third, version=1, at=T0, changes=changes_between(None, third), baseline=True, pruned=True
        )
        _save_as_0002(
            conn, t, C, third | {"hasResults": True}, version=2, at=T0 + timedelta(days=2), changes=[], baseline=False
        )
    engine.dispose()


def _read_as_0002(url: str) -> list[StoredChange]:
    """Revision 0002's `Store.changes`: every change row, oldest first."""
    engine = create_engine(url)
    t = _tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t["changes"]).order_by(t["changes"].c.detected_at, t["changes"].c.id)).all()
    engine.dispose()
    return [
        StoredChange(
            id=r.id,
            nct_id=r.nct_id,
            version=r.version,
            detected_at=r.detected_at if r.detected_at.tzinfo else r.detected_at.replace(tzinfo=UTC),
            change=Change(r.field, r.change, r.old, r.new, r.severity, Event(**r.event) if r.event else None),
            baseline=bool(r.baseline),
        )
        for r in rows
    ]


def _views(items: list[StoredChange], record: Mapping[str, Any]) -> dict[str, Any]:
    """What `history --json/--csv`, `changes`, `show` and the feeds make of a list of changes."""
    rows = [change_row(i) for i in items]
    out: dict[str, Any] = {
        "json": json.dumps(rows, sort_keys=True),
        "csv": to_csv(rows),
        "feed": entries_from(items, {}),
    }
    for nct_id in (A, B, C):
        mine = [i for i in items if i.nct_id == nct_id]
        first = [i for i in mine if i.baseline]
        out[f"show {nct_id}"] = render_trial_page(
            record,
            [(i.detected_at, i.change) for i in mine if not i.baseline],
            days=3650,
            today=date(2026, 3, 5),
            baseline=Baseline(first[0].detected_at, len(first)) if first else None,
        )
    return out


def test_a_database_of_revision_0002_upgrades_and_reads_the_same(db_url: str) -> None:
    _database_of_today(db_url)
    before = _read_as_0002(db_url)
    assert sum(1 for i in before if i.baseline) > 200, "today: one row per baseline field"
    with Store(db_url) as store:  # upgrades on open
        after = store.changes.across(include_baseline=True)
        assert [change_row(i) for i in after] == [change_row(i) for i in before]
        assert _views(after, load_fixture(A)) == _views(before, load_fixture(A))
        for nct_id in (A, B, C):
            assert [change_row(i) for i in store.changes.of(nct_id)] == [
                change_row(i) for i in before if i.nct_id == nct_id
            ]
        stats = store.retention.stats()
        pruned_baseline = sum(1 for i in before if i.nct_id == C and i.baseline)
        assert stats.change_rows == 1 + pruned_baseline, "derivable baseline rows dropped, the pruned one's kept"
        assert stats.baselines == 2
        assert store.retention.apply(keep_versions=1, keep_days=None, now=T0 + timedelta(days=9)).pruned == 0, (
            "a baseline version's record is never pruned: it is the baseline"
        )


def test_downgrade_to_0002_stores_the_baseline_rows_again(db_url: str) -> None:
    _database_of_today(db_url)
    before = _read_as_0002(db_url)
    Store(db_url).close()
    engine = create_engine(db_url)
    from alembic import command

    from watcher.store.migrate import alembic_config

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0002")
    engine.dispose()
    assert sorted(json.dumps(change_row(i), sort_keys=True) for i in _read_as_0002(db_url)) == sorted(
        json.dumps(change_row(i), sort_keys=True) for i in before
    )

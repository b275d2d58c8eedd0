"""Versions written: a page of fetched records in a handful of statements, past versions put first.

Both run inside a transaction the caller (`store.versions`, `watcher.store.versions`) holds with
the writer locks taken, so versions, their changes, parts and messages commit together; when the
database refuses a page, the caller writes it again one record at a time (one bad record never
loses the others). A baseline stores no change rows: `watcher.store.baselines` derives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Subquery, Table, and_, delete, func, insert, select, update
from sqlalchemy.orm import Session

from watcher.detect.record import (
    completion_of,
    conditions_of,
    last_update_of,
    overall_status_of,
    primary_completion_of,
    sponsor_of,
    title_of,
)
from watcher.models import Change, change_to_dict
from watcher.store.blobstore import chunks, put_record, put_records
from watcher.store.outbox import OutboxQueue
from watcher.store.schema import ChangeRow, SnapshotRow, TrialRow
from watcher.store.values import NewVersion, PastVersion


def newest_of(nct_ids: Sequence[str]) -> tuple[Subquery, ColumnElement[bool]]:
    """Each of these trials' newest version number, and the condition joining `SnapshotRow` to it:
    `select(…).join(*newest_of(ids))` reads the newest version of each in one query."""
    newest = (
        select(SnapshotRow.nct_id, func.max(SnapshotRow.version).label("version"))
        .where(SnapshotRow.nct_id.in_(nct_ids))
        .group_by(SnapshotRow.nct_id)
        .subquery()
    )
    return newest, and_(SnapshotRow.nct_id == newest.c.nct_id, SnapshotRow.version == newest.c.version)


def newest_versions(s: Session, nct_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """(version, content hash) of each trial's newest stored version, in one query per 500 trials."""
    found: dict[str, tuple[int, str]] = {}
    for chunk in chunks(sorted(set(nct_ids)), 500):
        rows = s.execute(
            select(SnapshotRow.nct_id, SnapshotRow.version, SnapshotRow.content_hash).join(*newest_of(chunk))
        )
        found.update({r.nct_id: (int(r.version), r.content_hash) for r in rows})
    return found


def write_versions(s: Session, items: Sequence[NewVersion], *, dialect: str) -> list[int]:
    """Store `items` as their trials' next versions; returns each one's version number.

    A polled record identical to its trial's newest stored version (another process stored it
    while we compared) is no new version: that version's number is returned and nothing is written.
    """
    newest = newest_versions(s, (i.nct_id for i in items))
    numbers: list[int] = []
    todo: list[tuple[NewVersion, int]] = []
    for item in items:
        last = newest.get(item.nct_id)
        if last is not None and last[1] == item.digest and item.source == "poll":
            numbers.append(last[0])
            continue
        version = (last[0] if last is not None else 0) + 1
        newest[item.nct_id] = (version, item.digest)
        numbers.append(version)
        todo.append((item, version))
    if not todo:
        return numbers
    manifests = put_records(s, [(item.record, item.fetched_at, item.encoded) for item, _ in todo], dialect=dialect)
    s.execute(
        insert(_table(SnapshotRow)),
        [
            {
                "nct_id": item.nct_id,
                "version": version,
                "fetched_at": item.fetched_at,
                "content_hash": item.digest,
                "last_update_post_date": last_update_of(item.record),
                "manifest": manifest,
                "source": item.source,
                "ctgov_version": item.ctgov_version,
                "baseline": item.baseline and version == 1,
            }
            for (item, version), manifest in zip(todo, manifests, strict=True)
        ],
    )
    snapshot_ids = _snapshot_ids(s, [(item.nct_id, version) for item, version in todo if item.changes])
    changes = [
        {
            "nct_id": item.nct_id,
            "snapshot_id": snapshot_ids[item.nct_id, version],
            "version": version,
            "detected_at": item.detected_at or item.fetched_at,
            "baseline": False,
            **change_to_dict(change),
        }
        for item, version in todo
        if not item.baseline
        for change in item.changes
    ]
    if changes:
        s.execute(insert(_table(ChangeRow)), changes)
    OutboxQueue.insert_many_in(s, [(msg, item.fetched_at) for item, _ in todo for msg in item.messages])
    _upsert_trials(s, [item for item, _ in todo], dialect)
    return numbers


def prepend_versions(
    s: Session, nct_id: str, past: Sequence[PastVersion], *, rebase: Sequence[Change] | None, dialect: str
) -> int:
    """Put `past` before a trial's stored versions (see `Versions.prepend`); returns how many."""
    shift = len(past)
    first = s.scalars(
        select(SnapshotRow).where(SnapshotRow.nct_id == nct_id).order_by(SnapshotRow.version).limit(1)
    ).first()
    if first is not None:
        first_id, first_version, first_at = first.id, first.version, first.fetched_at
        s.execute(update(SnapshotRow).where(SnapshotRow.nct_id == nct_id).values(version=-SnapshotRow.version))
        s.execute(update(SnapshotRow).where(SnapshotRow.nct_id == nct_id).values(version=shift - SnapshotRow.version))
        s.execute(update(ChangeRow).where(ChangeRow.nct_id == nct_id).values(version=ChangeRow.version + shift))
        OutboxQueue.shift_versions_in(s, nct_id, shift)
        if rebase is not None:  # the former first version is a baseline no more
            s.execute(delete(ChangeRow).where(ChangeRow.snapshot_id == first_id, ChangeRow.baseline.is_(True)))
            s.execute(update(SnapshotRow).where(SnapshotRow.id == first_id).values(baseline=False))
            for change in rebase:
                s.add(
                    ChangeRow(
                        nct_id=nct_id,
                        snapshot_id=first_id,
                        version=first_version + shift,
                        detected_at=first_at,
                        baseline=False,
                        **change_to_dict(change),
                    )
                )
    for number, item in enumerate(past, start=1):
        snap = SnapshotRow(
            nct_id=nct_id,
            version=number,
            fetched_at=item.posted_at,
            content_hash=item.digest,
            last_update_post_date=last_update_of(item.record),
            manifest=put_record(s, item.record, item.posted_at, dialect=dialect),
            source="backfill",
            ctgov_version=item.ctgov_version,
            baseline=item.baseline,
        )
        s.add(snap)
        s.flush()
        for change in () if item.baseline else item.changes:
            s.add(
                ChangeRow(
                    nct_id=nct_id,
                    snapshot_id=snap.id,
                    version=number,
                    detected_at=item.posted_at,
                    baseline=item.baseline,
                    **change_to_dict(change),
                )
            )
    return shift


def _snapshot_ids(s: Session, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The ids of versions just inserted (an executemany with RETURNING goes row by row on SQLite)."""
    ids: dict[tuple[str, int], int] = {}
    wanted = set(keys)
    for chunk in chunks(sorted({nct_id for nct_id, _ in keys}), 500):
        rows = s.execute(
            select(SnapshotRow.id, SnapshotRow.nct_id, SnapshotRow.version).where(
                SnapshotRow.nct_id.in_(chunk), SnapshotRow.version >= min(v for n, v in keys if n in set(chunk))
            )
        )
        ids.update({(r.nct_id, r.version): r.id for r in rows if (r.nct_id, r.version) in wanted})
    return ids


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _upsert_trials(s: Session, items: Sequence[NewVersion], dialect: str) -> None:
    """Each trial's row follows its newest version (inserted when new), in one executemany."""
    latest = {item.nct_id: item for item in items}  # the last of a trial's versions in the page wins
    rows = [
        {
            "nct_id": item.nct_id,
            "first_seen_at": item.fetched_at,
            "title": title_of(item.record),
            "overall_status": overall_status_of(item.record),
            "last_update_post_date": last_update_of(item.record),
            "last_checked_at": item.fetched_at,
            "last_changed_at": item.fetched_at if not item.baseline and item.changes else None,
            "consecutive_failures": 0,
            "last_error": None,
            "not_found": False,
            "sponsor": sponsor_of(item.record),
            "conditions": conditions_of(item.record),
            "primary_completion": primary_completion_of(item.record),
            "completion": completion_of(item.record),
        }
        for item in latest.values()
    ]
    table = _table(TrialRow)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.nct_id],
        set_={
            "title": stmt.excluded.title,
            "overall_status": stmt.excluded.overall_status,
            "last_update_post_date": stmt.excluded.last_update_post_date,
            "last_checked_at": stmt.excluded.last_checked_at,
            "last_changed_at": func.coalesce(stmt.excluded.last_changed_at, table.c.last_changed_at),
            "consecutive_failures": 0,
            "last_error": None,
            "not_found": False,
            "sponsor": stmt.excluded.sponsor,
            "conditions": stmt.excluded.conditions,
            "primary_completion": stmt.excluded.primary_completion,
            "completion": stmt.excluded.completion,
        },
    )
    s.execute(stmt, rows)

"""A whole-registry-sized store for `bench_web`, in minutes rather than hours.

Storing a version through `store.versions` costs milliseconds (fields extracted, changes found,
record split into compressed blobs): 500,000 trials that way is most of an hour. `clone` instead
copies the rows of trials already stored (trial row, snapshots, changes) under new NCT IDs with
`INSERT … SELECT` inside SQLite, so no row crosses into Python. A copy's snapshots point at the
same blobs as its original: its pages cost what the original's cost (the record is read and
decompressed the same way), only its NCT ID, file names and rows are its own. Each copy gets its
own last change (spread over 60 days), status and primary completion date, so that sorting and
filtering see a spread rather than 500,000 equal keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

STATUSES = ("RECRUITING", "COMPLETED", "ACTIVE_NOT_RECRUITING", "NOT_YET_RECRUITING", "TERMINATED", "WITHDRAWN")
BATCH = 50_000


def _shift(column: str) -> str:
    """`column` (SQLAlchemy's SQLite text form of a time) moved back by the copy's hours."""
    return f"strftime('%Y-%m-%d %H:%M:%S', {column}, '-' || (m.idx % 1440) || ' hours') || '.000000'"


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _select(columns: list[str], replaced: dict[str, str], alias: str) -> str:
    return ", ".join(replaced.get(c, f"{alias}.{c}") for c in columns)


def clone(path: str, originals: list[str], new_ids: list[str], progress: Callable[[int], None] = print) -> None:
    """Copy each of `originals`' rows under the IDs `new_ids` (round robin over the originals)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TEMP TABLE originals (pos INTEGER PRIMARY KEY, nct_id TEXT)")
        conn.executemany("INSERT INTO originals VALUES (?, ?)", list(enumerate(originals)))
        conn.execute("CREATE TEMP TABLE copies (new_id TEXT PRIMARY KEY, original TEXT, idx INTEGER)")
        statuses = " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(STATUSES))
        trial_cols = _columns(conn, "trials")
        trials = _select(
            trial_cols,
            {
                "nct_id": "m.new_id",
                "last_changed_at": _shift("t.last_changed_at"),
                "overall_status": f"CASE m.idx % {len(STATUSES)} {statuses} END",
                "primary_completion": "CASE WHEN m.idx % 7 = 0 THEN NULL ELSE "
                "printf('%04d-%02d-%02d', 2020 + m.idx % 12, 1 + m.idx % 12, 1 + m.idx % 28) END",
                "completion": "CASE WHEN m.idx % 7 = 0 THEN NULL ELSE "
                "printf('%04d-%02d-%02d', 2021 + m.idx % 12, 1 + m.idx % 12, 1 + m.idx % 28) END",
            },
            "t",
        )
        snap_cols = [c for c in _columns(conn, "snapshots") if c != "id"]
        snaps = _select(snap_cols, {"nct_id": "m.new_id", "fetched_at": _shift("s.fetched_at")}, "s")
        change_cols = [c for c in _columns(conn, "changes") if c != "id"]
        changes = _select(
            change_cols,
            {
                "nct_id": "m.new_id",
                "detected_at": _shift("c.detected_at"),
                "snapshot_id": "(SELECT n.id FROM snapshots n WHERE n.nct_id = m.new_id AND n.version = c.version)",
            },
            "c",
        )
        for start in range(0, len(new_ids), BATCH):
            chunk = new_ids[start : start + BATCH]
            conn.execute("DELETE FROM copies")
            conn.executemany(
                "INSERT INTO copies SELECT ?, nct_id, ? FROM originals WHERE pos = ?",
                [(n, start + i, (start + i) % len(originals)) for i, n in enumerate(chunk)],
            )
            copies = "FROM copies m JOIN {table} {alias} ON {alias}.nct_id = m.original"
            into = f"INSERT INTO trials ({', '.join(trial_cols)})"
            conn.execute(f"{into} SELECT {trials} {copies.format(table='trials', alias='t')}")
            conn.execute(
                f"INSERT INTO snapshots ({', '.join(snap_cols)}) SELECT {snaps} "
                f"{copies.format(table='snapshots', alias='s')} ORDER BY m.new_id, s.version"
            )
            conn.execute(
                f"INSERT INTO changes ({', '.join(change_cols)}) SELECT {changes} "
                f"{copies.format(table='changes', alias='c')} ORDER BY m.new_id, c.id"
            )
            conn.commit()
            progress(start + len(chunk))
    finally:
        conn.close()

"""The cycle log (`store.cycles`): one row per poll cycle, opened when it starts and closed with its
counts when it ends, so `status` and heartbeats can say what the last cycle did.

A row left "running" belongs to a process that died or gave up on it; whoever knows no live cycle
owns it closes it (`close_open`), naming why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from watcher.store.schema import CycleRow
from watcher.store.values import CycleInfo


class CycleLog:
    """Each method is one transaction."""

    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    def start(self, at: datetime) -> int:
        """Open a cycle's row; returns its id, for `finish`."""
        with self._session() as s:
            row = CycleRow(started_at=at, result="running")
            s.add(row)
            s.flush()
            return row.id

    def finish(
        self,
        cycle_id: int,
        *,
        at: datetime,
        result: str,
        checked: int,
        changed: int,
        failed: int,
        requests: int,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self._session() as s:
            s.execute(
                update(CycleRow)
                .where(CycleRow.id == cycle_id)
                .values(
                    finished_at=at,
                    result=result,
                    checked=checked,
                    changed=changed,
                    failed=failed,
                    requests=requests,
                    detail=dict(detail or {}),
                )
            )

    def close_open(self, at: datetime, *, result: str, since: datetime | None = None) -> int:
        """Close cycle-log rows still "running" (started at or after `since`): their process died
        or gave up on them. Returns how many; the caller must know no live cycle owns them."""
        query = update(CycleRow).where(CycleRow.finished_at.is_(None))
        if since is not None:
            query = query.where(CycleRow.started_at >= since)
        with self._session() as s:
            return int(s.execute(query.values(finished_at=at, result=result)).rowcount or 0)  # type: ignore[attr-defined]

    def last(self) -> CycleInfo | None:
        """The newest finished cycle; None before the first one ends."""
        with self._session() as s:
            row = s.scalars(
                select(CycleRow).where(CycleRow.finished_at.is_not(None)).order_by(CycleRow.id.desc()).limit(1)
            ).first()
            if row is None:
                return None
            return CycleInfo(
                id=row.id,
                started_at=row.started_at,
                finished_at=row.finished_at,
                result=row.result,
                checked=row.checked,
                changed=row.changed,
                failed=row.failed,
                requests=row.requests,
            )

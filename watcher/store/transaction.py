"""A state change and the messages it causes, committed together: `Store.transaction()`.

A trial's failure counter reaching the alert threshold, a trial answering 404 or moving, the
registry's failure count or 403 back-off, a partial record held back, a recovery: each is a write
that makes an alert due. Written in two transactions, a crash between them would lose the alert
for good (the next cycle sees the state already changed and has nothing new to say). So the write
and the enqueue share one transaction here: after a crash both are there or neither is, and the
next cycle makes the same decision again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from watcher.messages import NewMessage
from watcher.store.meta import MetaIn
from watcher.store.outbox import OutboxQueue
from watcher.store.trials import mark_checked_in, record_failure_in, set_canonical_in


class Transaction:
    """Writes inside one open transaction; nothing is visible to others until it commits."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.meta = MetaIn(session)

    def enqueue(self, messages: Sequence[NewMessage], at: datetime) -> None:
        """Queue messages that commit, or roll back, with the rest of the transaction."""
        OutboxQueue.enqueue_in(self._session, messages, at)

    def record_failure(self, nct_id: str, error: str, *, not_found: bool = False) -> int:
        """Count a failed fetch; returns the number of consecutive failures."""
        return record_failure_in(self._session, nct_id, error, not_found=not_found)

    def set_canonical(self, nct_id: str, canonical_id: str) -> None:
        set_canonical_in(self._session, nct_id, canonical_id)

    def mark_checked(self, nct_ids: Sequence[str], at: datetime) -> None:
        """Checked without a failure: the failure count starts again from zero."""
        mark_checked_in(self._session, nct_ids, at)

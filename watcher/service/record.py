"""The running service's record of itself in `meta`: what `trialwatch status` reads.

`status` runs in another process (maybe as another user), so the service writes down what it is
doing: running or stopped, its pid, a heartbeat, the cycle in flight and the next one, its health,
a rejected watchlist edit. These writes are bookkeeping: none of them may take the service down
(the database may be briefly busy), so each is tried and, if it fails, logged and left.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import structlog

from watcher.messages import NewMessage
from watcher.store import Store
from watcher.store.meta import (
    SERVICE_CYCLE_STARTED,
    SERVICE_HEALTH,
    SERVICE_HEARTBEAT,
    SERVICE_NEXT_CYCLE,
    SERVICE_PID,
    SERVICE_STARTED,
    SERVICE_STATE,
    SERVICE_STOPPED,
    SERVICE_TRIALS,
    SERVICE_WATCHLIST_ERROR,
    MetaEntry,
)

log = structlog.get_logger("watcher.service.daemon")


def safely(action: Callable[[], Any]) -> bool:
    """Run a bookkeeping step; a failure is logged, never raised. Returns whether it was done."""
    try:
        action()
    except Exception as exc:
        log.warning("service.bookkeeping_failed", error=f"{type(exc).__name__}: {exc}")
        return False
    return True


class ServiceRecord:
    """Writes the service's `SERVICE_*` keys, each call one transaction, never raising."""

    def __init__(self, store: Store, now: Callable[[], datetime]) -> None:
        self.store = store
        self.now = now

    def _write(self, *entries: MetaEntry) -> None:
        safely(lambda: self.store.meta.update(*entries))

    def started(self, *, trials: int, rejected: Sequence[str]) -> None:
        self._write(
            SERVICE_STATE.to("running"),
            SERVICE_PID.to(os.getpid()),
            SERVICE_STARTED.to(self.now()),
            SERVICE_STOPPED.to(None),
            SERVICE_CYCLE_STARTED.to(None),
            SERVICE_HEALTH.to("ok"),
            SERVICE_WATCHLIST_ERROR.to(list(rejected) or None),
            SERVICE_TRIALS.to(trials),
        )

    def heartbeat(self) -> None:
        self._write(SERVICE_HEARTBEAT.to(self.now()))

    def cycle_started(self, at: datetime | None) -> None:
        """`at`: when the cycle in flight started; None once it ended."""
        self._write(SERVICE_CYCLE_STARTED.to(at))

    def next_cycle(self, at: datetime | None) -> None:
        self._write(SERVICE_NEXT_CYCLE.to(at))

    def health(self, problem: str | None) -> None:
        self._write(SERVICE_HEALTH.to(problem or "ok"))

    def trials(self, count: int) -> None:
        self._write(SERVICE_TRIALS.to(count))

    def watchlist_rejected(self, problems: Sequence[str], alerts: Sequence[NewMessage]) -> bool:
        """A rejected edit, and the alerts that say so, in one transaction: both or neither.
        Returns whether they were written."""

        def write() -> None:
            with self.store.transaction() as tx:
                tx.meta.set(SERVICE_WATCHLIST_ERROR, list(problems))
                tx.enqueue(alerts, self.now())

        return safely(write)

    def watchlist_accepted(self) -> None:
        self._write(SERVICE_WATCHLIST_ERROR.to(None))

    def stopping(self) -> None:
        self._write(SERVICE_STATE.to("stopping"))

    def stopped(self) -> None:
        self._write(
            SERVICE_STATE.to("stopped"),
            SERVICE_STOPPED.to(self.now()),
            SERVICE_NEXT_CYCLE.to(None),
            SERVICE_CYCLE_STARTED.to(None),
        )

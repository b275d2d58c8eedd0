"""The traces a killed or stuck service leaves in the store, and how a service cleans them up."""

from __future__ import annotations

from datetime import datetime

import structlog

from watcher.service.record import ServiceRecord
from watcher.store import Store

log = structlog.get_logger("watcher.service.recovery")


def close_interrupted_cycles(store: Store, now: datetime) -> int:
    """A cycle log row still "running" at start belongs to a killed process, unless another
    service (PostgreSQL) is in a cycle right now: then its lock is taken and nothing is closed."""
    with store.exclusive("cycle") as free:
        closed = store.cycles.close_open(now, result="interrupted") if free else 0
    if closed:
        log.warning("service.interrupted_cycles", count=closed)
    return closed


def record_abandoned_stop(storage_url: str, now: datetime, since: datetime | None) -> None:
    """After abandoning a stuck cycle, tell the truth in `status` without touching the store
    the stuck thread still uses: a connection of our own marks the cycle and the service."""
    with Store(storage_url, create=False) as fresh:
        fresh.cycles.close_open(now, result="abandoned", since=since)
        ServiceRecord(fresh, lambda: now).stopped()

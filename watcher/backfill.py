"""Backfill: a trial's past versions from the record history, stored before the first one we hold.

Reading and checking the history is `watcher.registry.record_history`; this module places what it
reads in the store, with the changes between versions, once per trial.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog

from watcher.config import Config
from watcher.detect import changes_between
from watcher.detect.meaning import SeverityRules
from watcher.detect.record import content_hash, submit_date_of
from watcher.errors import ApiError, BackfillError
from watcher.models import Snapshot
from watcher.registry.client import CtGovClient
from watcher.registry.record_history import HistoryEntry, RecordHistory, adopt_markup
from watcher.store import Store
from watcher.store.database import utcnow
from watcher.store.values import PastVersion

log = structlog.get_logger("watcher.backfill")


@dataclass(slots=True)
class BackfillReport:
    nct_id: str
    available: int = 0
    imported: int = 0
    skipped_over_cap: int = 0
    requests: int = 0
    note: str = ""
    versions: list[int] = field(default_factory=list)


def _posted(entry: HistoryEntry) -> datetime:
    return datetime.combine(date.fromisoformat(entry.date), datetime.min.time(), tzinfo=UTC)


def backfill(config: Config, store: Store, client: CtGovClient, nct_id: str, *,
             now: Callable[[], datetime] = utcnow, first: Snapshot | None = None) -> BackfillReport:
    """Import the versions of `nct_id` older than the first one stored; returns what was done.

    With nothing stored yet, the current record is fetched from API v2 and stored first, as a
    baseline, so the newest version always comes from the API the poller uses. Running it
    again imports nothing: a trial is backfilled once.
    """
    settings = config.settings.backfill
    rules = SeverityRules.from_mapping(config.settings.severity_rules)
    history = RecordHistory(config, client)
    report = BackfillReport(nct_id)
    with store.exclusive("backfill", wait=True):
        infos = store.version_infos(nct_id)
        if any(i.source == "backfill" for i in infos):
            report.note = "already backfilled"
            return report
        if first is None and infos:
            first = store.snapshot(nct_id, infos[0].version)
        if first is None and infos:
            raise BackfillError(f"{nct_id}: its first stored version was pruned by retention; cannot place "
                                "older versions before it")
        if first is None:
            fetched = client.fetch_study(nct_id)
            report.requests += 1
            at = now()
            digest = content_hash(fetched.record)
            store.save_version(nct_id, fetched.record, fetched_at=at, digest=digest,
                               changes=changes_between(None, fetched.record, rules), baseline=True)
            first = Snapshot(nct_id, 1, at, digest, fetched.record)
        entries = history.index(nct_id)
        report.available = len(entries)
        first_date = submit_date_of(first.record)
        older = [e for e in entries if first_date is not None and e.date < first_date]
        same_day = [e for e in entries if e.date == first_date]
        older += same_day[:-1]  # versions of the first one's day, except itself
        if len(older) > settings.max_versions:
            report.skipped_over_cap = len(older) - settings.max_versions
            older = older[-settings.max_versions:]
        past: list[PastVersion] = []
        previous: Mapping[str, Any] | None = None
        for entry in reversed(older):  # newest first, so markup is adopted from the stored record down
            record = adopt_markup(previous or first.record, history.version(nct_id, entry.version))
            past.append(PastVersion(record=record, digest=content_hash(record), posted_at=_posted(entry),
                                    ctgov_version=entry.version, changes=(), baseline=False))
            previous = record
        past.reverse()
        if past and len(history.index(nct_id)) != len(entries):
            raise BackfillError(f"{nct_id}: its history changed while it was read; run the backfill again")
        prepared: list[PastVersion] = []
        before: Mapping[str, Any] | None = None
        for item in past:
            prepared.append(PastVersion(record=item.record, digest=item.digest, posted_at=item.posted_at,
                                        ctgov_version=item.ctgov_version, baseline=before is None,
                                        changes=changes_between(before, item.record, rules)))
            before = item.record
        rebase = changes_between(before, first.record, rules) if before is not None else None
        report.imported = store.prepend_versions(nct_id, prepared, rebase=rebase)
        report.versions = [e.version for e in older]
        report.requests += history.requests
        if report.imported and same_day:
            store.set_ctgov_version(nct_id, report.imported + 1, same_day[-1].version)
    log.info("backfill.done", nct_id=nct_id, available=report.available, imported=report.imported,
             skipped_over_cap=report.skipped_over_cap, requests=report.requests, note=report.note)
    return report


def try_backfill(config: Config, store: Store, client: CtGovClient, nct_id: str, *,
                 now: Callable[[], datetime] = utcnow) -> BackfillReport | None:
    """`backfill` for the service: a failure is logged and left for the user, never raised."""
    try:
        return backfill(config, store, client, nct_id, now=now)
    except (ApiError, BackfillError) as exc:
        log.warning("backfill.failed", nct_id=nct_id, error=str(exc))
        return None


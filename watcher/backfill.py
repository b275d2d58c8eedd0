"""Past versions from the record history: backfill (before the first version we hold) and gap-filling
(the versions posted between two polls).

Reading and checking the history is `watcher.registry.record_history`; this module places what it
reads in the store, with the changes between versions (and, for gaps, their notifications).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog

from watcher.config import Config
from watcher.detect import changes_between
from watcher.detect.meaning import SeverityRules
from watcher.detect.record import content_hash, last_update_of, submit_date_of, title_of
from watcher.errors import ApiError, BackfillError
from watcher.models import Change, Snapshot, Trial
from watcher.notify.payloads import change_messages, print_changes
from watcher.notify.routing import for_stdout, held_for_digest, route
from watcher.registry.client import CtGovClient
from watcher.registry.record_history import HistoryEntry, RecordHistory, adopt_markup
from watcher.store import Store
from watcher.store.values import PastVersion, VersionInfo
from watcher.times import utcnow

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


def _posted(entry: HistoryEntry, record: Mapping[str, Any]) -> datetime:
    """When the version was posted: its own `lastUpdatePostDateStruct.date`. The history entry's date
    is the QC date, days (p50 2, p99 25) before the posting; it is used only when the version has none."""
    day = last_update_of(record) or entry.date
    try:
        posted = date.fromisoformat(day[:10])
    except ValueError:
        posted = date.fromisoformat(entry.date)
    return datetime.combine(posted, datetime.min.time(), tzinfo=UTC)


def backfill(
    config: Config,
    store: Store,
    client: CtGovClient,
    nct_id: str,
    *,
    now: Callable[[], datetime] = utcnow,
    first: Snapshot | None = None,
) -> BackfillReport:
    """Import the versions of `nct_id` older than the first one stored; returns what was done.

    With nothing stored yet, the current record is fetched from API v2 and stored first, as a
    baseline, so the newest version always comes from the API the poller uses. Running it
    again imports nothing: a trial is backfilled once.
    """
    rules = SeverityRules.from_mapping(config.settings.severity_rules)
    history = RecordHistory(config, client)
    report = BackfillReport(nct_id)
    with store.exclusive("backfill", wait=True):
        infos = store.versions.infos(nct_id)
        if any(i.source == "backfill" for i in infos):
            report.note = "already backfilled"
            return report
        first = _first_version(store, client, nct_id, first, infos, now=now, report=report)
        entries = history.index(nct_id)
        report.available = len(entries)
        own, older = _older_entries(history, nct_id, first, entries)
        if len(older) > config.settings.backfill.max_versions:
            report.skipped_over_cap = len(older) - config.settings.backfill.max_versions
            older = older[-config.settings.backfill.max_versions :]
        past = _read_past(history, nct_id, first, older)
        if past and len(history.index(nct_id, fresh=True)) != len(entries):
            raise BackfillError(f"{nct_id}: its history changed while it was read; run the backfill again")
        prepared, rebase = _with_changes(past, first, rules)
        report.imported = store.versions.prepend(nct_id, prepared, rebase=rebase)
        report.versions = [e.version for e in older]
        report.requests += history.requests
        if report.imported and own is not None:
            store.versions.set_ctgov_version(nct_id, report.imported + 1, own.version)
    log.info(
        "backfill.done",
        nct_id=nct_id,
        available=report.available,
        imported=report.imported,
        skipped_over_cap=report.skipped_over_cap,
        requests=report.requests,
        note=report.note,
    )
    return report


def _first_version(
    store: Store,
    client: CtGovClient,
    nct_id: str,
    first: Snapshot | None,
    infos: Sequence[VersionInfo],
    *,
    now: Callable[[], datetime],
    report: BackfillReport,
) -> Snapshot:
    """The version the history is placed before: the first stored, or the current record fetched
    from API v2 and stored as the baseline when nothing is stored yet."""
    if first is None and infos:
        first = store.versions.get(nct_id, infos[0].version)
        if first is None:
            raise BackfillError(
                f"{nct_id}: its first stored version was pruned by retention; cannot place older versions before it"
            )
    if first is not None:
        return first
    fetched = client.fetch_study(nct_id)
    report.requests += 1
    at = now()
    digest = content_hash(fetched.record)
    store.versions.save(nct_id, fetched.record, fetched_at=at, digest=digest, changes=(), baseline=True)
    return Snapshot(nct_id, 1, at, digest, fetched.record)


def _older_entries(
    history: RecordHistory, nct_id: str, first: Snapshot, entries: Sequence[HistoryEntry]
) -> tuple[HistoryEntry | None, list[HistoryEntry]]:
    """(the history's entry for `first`, if found; the entries older than it). Found by content:
    QC dates can tie or lag; failing that, a registry-side edit since its posting, so its day's
    last version is taken to be it."""
    first_date = submit_date_of(first.record)
    own = history.locate(nct_id, first.record, entries)
    if own is None:
        same_day = [e for e in entries if e.date == first_date]
        own = same_day[-1] if same_day else None
        log.info("backfill.version_by_date", nct_id=nct_id, date=first_date, ctgov_version=own.version if own else None)
    if own is not None:
        return own, [e for e in entries if e.version < own.version]
    return None, [e for e in entries if first_date is not None and e.date < first_date]


def _read_past(
    history: RecordHistory, nct_id: str, first: Snapshot, older: Sequence[HistoryEntry]
) -> list[PastVersion]:
    """The older versions, oldest first. Read newest first, so markup (HTML in the history) is
    adopted from the stored record down, one version from the next."""
    past: list[PastVersion] = []
    previous: Mapping[str, Any] = first.record
    for entry in reversed(older):
        record = adopt_markup(previous, history.version(nct_id, entry.version))
        past.append(
            PastVersion(
                record=record,
                digest=content_hash(record),
                posted_at=_posted(entry, record),
                ctgov_version=entry.version,
                changes=(),
                baseline=False,
            )
        )
        previous = record
    past.reverse()
    return past


def _with_changes(
    past: Sequence[PastVersion], first: Snapshot, rules: SeverityRules
) -> tuple[list[PastVersion], list[Change] | None]:
    """The past versions with the changes from each to the next (the oldest is the baseline), and the
    changes from the newest of them to `first`, which the store writes onto `first` (None: no past)."""
    prepared: list[PastVersion] = []
    before: Mapping[str, Any] | None = None
    for item in past:
        changes = changes_between(before, item.record, rules) if before is not None else ()
        prepared.append(replace(item, baseline=before is None, changes=changes))
        before = item.record
    return prepared, (changes_between(before, first.record, rules) if before is not None else None)


def try_backfill(
    config: Config, store: Store, client: CtGovClient, nct_id: str, *, now: Callable[[], datetime] = utcnow
) -> BackfillReport | None:
    """`backfill` for the service: a failure is logged and left for the user, never raised."""
    try:
        return backfill(config, store, client, nct_id, now=now)
    except (ApiError, BackfillError) as exc:
        log.warning("backfill.failed", nct_id=nct_id, error=str(exc))
        return None


def gap_possible(config: Config, latest: Snapshot, record: Mapping[str, Any], previous_data: Any) -> bool:
    """Could versions have been posted between `latest` and `record`? `auto` says yes only when
    the new record was posted more than one daily refresh after the last complete poll's data
    (the service was down, polls failed, or the interval is over a day): free otherwise."""
    mode = config.settings.backfill.fill_gaps
    if mode == "never" or latest.record.get("protocolSection") is None:
        return False
    if mode == "always":
        return True
    posted = last_update_of(record)
    if not posted or not isinstance(previous_data, str):
        return False
    try:
        return date.fromisoformat(posted[:10]) > date.fromisoformat(previous_data[:10]) + timedelta(days=1)
    except ValueError:
        return False


def fill_gap(
    config: Config,
    store: Store,
    client: CtGovClient,
    *,
    trial: Trial,
    latest: Snapshot,
    record: Mapping[str, Any],
    rules: SeverityRules,
    budget: int,
    previous_data: Any,
    now: Callable[[], datetime],
    write: Callable[[str], Any],
) -> tuple[Snapshot, int]:
    """Store (and notify) the versions posted between `latest` and `record`, within `budget`
    requests; returns the newest version now stored and the requests spent."""
    settings = config.settings
    if not gap_possible(config, latest, record, previous_data):
        return latest, 0
    if budget <= 1:
        log.info("gaps.skipped", nct_id=trial.nct_id, reason="backfill.max_gap_requests spent this cycle")
        return latest, 0
    try:
        history = RecordHistory(config, client)
    except BackfillError as exc:
        log.warning("gaps.failed", nct_id=trial.nct_id, error=str(exc))
        return latest, 0
    try:
        between = history.between(
            trial.nct_id, latest.record, record, limit=min(settings.backfill.max_versions, budget - 1)
        )
    except ApiError as exc:
        log.warning("gaps.failed", nct_id=trial.nct_id, error=str(exc))
        return latest, history.requests
    for entry, past in between:
        digest = content_hash(past)
        if digest == latest.content_hash:
            continue
        changes = changes_between(latest.record, past, rules)
        at = now()
        title = title_of(past)
        routed = route(trial, changes, settings) if settings.channels else {}
        version = latest.version + 1
        messages = change_messages(
            trial,
            title,
            routed,
            version=version,
            detected_at=at,
            web_base_url=settings.web.base_url,
            held=held_for_digest(routed, settings),
            ctgov_versions=(latest.ctgov_version, entry.version) if latest.ctgov_version is not None else None,
        )
        store.versions.save(
            trial.nct_id,
            past,
            fetched_at=at,
            digest=digest,
            changes=changes,
            baseline=False,
            messages=messages,
            source="gap",
            ctgov_version=entry.version,
        )
        if not settings.channels:
            shown = for_stdout(trial, changes, settings)
            if shown:
                print_changes(trial, title, shown, write)
        log.info(
            "gaps.version",
            nct_id=trial.nct_id,
            version=version,
            ctgov_version=entry.version,
            changes=len(changes),
            notified=sorted(routed),
        )
        latest = Snapshot(trial.nct_id, version, at, digest, past, ctgov_version=entry.version)
    return latest, history.requests

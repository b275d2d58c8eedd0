"""Fetched records into stored versions, a page at a time: snapshot → diff → messages → one write.

Records arrive as the poller streams them, are encoded (canonical bytes and hash, once) on arrival,
and are stored a page at a time, a page being `PAGE_BYTES` of canonical JSON or `PAGE` records,
whichever comes first: a first sync of the whole registry holds one page, not the registry, and
pays one commit (one fsync on SQLite) per few megabytes, not per 25 records. Per page, one query
finds the unchanged records by their stored content hash (nothing loaded), one more loads the stored
versions of the changed ones; each changed or new one is made whole
(`watcher.cycle.partial`), the versions posted between polls are filled in (`fill_gap`), it is
diffed, routed and turned into messages, and the page's new versions are written in one
transaction (`Store.save_versions`), each with its messages and any "checked again" alert. A
record that fails fails alone: it is counted against its trial and the page goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from watcher.backfill import fill_gap
from watcher.config import Config
from watcher.cycle.alerts import Alert, Alerts
from watcher.cycle.collector import page_stored
from watcher.cycle.compare import Numbers, ctgov_numbers
from watcher.cycle.partial import Suspect, whole_record
from watcher.cycle.report import CycleReport, Run
from watcher.cycle.trial_alerts import TrialAlerts
from watcher.detect import changes_between
from watcher.detect.canonical import Encoded, encode_record
from watcher.detect.meaning import SeverityRules
from watcher.detect.newstudies import summary
from watcher.detect.record import title_of
from watcher.discovery import site_messages
from watcher.errors import TrialWatchError
from watcher.models import Snapshot, Trial
from watcher.notify.discovery import registry_study_messages
from watcher.notify.formats.bulk import summarises
from watcher.notify.payloads import change_messages, print_changes
from watcher.notify.routing import for_stdout, held_for_digest, route, unlisted_trial
from watcher.registry.client import CtGovClient
from watcher.registry.record_history import HistoryEntry, RecordHistory
from watcher.store import Store
from watcher.store.meta import SUSPECT
from watcher.store.values import NewVersion

log = structlog.get_logger("watcher.cycle")

PAGE = 500
"""At most this many fetched records are stored per transaction (`Store.save_versions`)…"""
PAGE_BYTES = 2_000_000
"""…and at most about this many bytes of their canonical JSON: the peak RSS is about one page."""


LOG_EVERY = 1000
"""Studies off the watchlist (whole-registry mode) per `registry.page` log line: one API page."""
TALLIED = ("unchanged", "changed", "new")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A changed or new trial's next version, diffed and routed, waiting for its page's write."""

    trial: Trial
    title: str | None
    notify: bool
    routed: Mapping[str, Any]
    version: NewVersion
    recovered: list[Alert]


class Recorder:
    """Stores one cycle's fetched records; `take` is the poller's sink."""

    def __init__(
        self,
        config: Config,
        store: Store,
        client: CtGovClient,
        *,
        run: Run,
        report: CycleReport,
        alerts: Alerts,
        trial_alerts: TrialAlerts,
        rules: SeverityRules,
        previous_data: str | None,
        quiet: bool,
        now: Callable[[], datetime],
        write: Callable[[str], Any],
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.run = run
        self.report = report
        self.alerts = alerts
        self.trial_alerts = trial_alerts
        self.rules = rules
        self.previous_data = previous_data  # the last complete poll's data timestamp: could versions be missed?
        self.quiet = quiet  # the registry's first sync: trials off the watchlist get no messages
        self.now = now
        self.write = write
        self.by_id = {t.nct_id: t for t in run.trials}
        self.processed: set[str] = set()
        self.gap_requests = 0
        self._page: list[tuple[Trial, dict[str, Any], Encoded]] = []
        self._page_bytes = 0
        self._held: frozenset[str] = frozenset()  # meta keys of the page's trials that have a partial record held back
        self._tally: dict[str, int] = {}
        self._reader: RecordHistory | None = None  # the record history of the trial being prepared

    def take(self, nct_id: str, record: dict[str, Any]) -> None:
        """One fetched record; a full page is stored at once, so a big first sync streams."""
        trial = self.by_id.get(nct_id) or unlisted_trial(nct_id, record, self.config.settings, quiet=self.quiet)
        if trial is not None:
            self.processed.add(nct_id)
            try:
                encoded = encode_record(record)
            except Exception as exc:  # one broken record must not stop the cycle
                log.exception("trial.crashed", nct_id=nct_id)
                self.trial_alerts.failed(trial, f"internal error: {type(exc).__name__}: {exc}")
                return
            self._page.append((trial, record, encoded))
            self._page_bytes += sum(len(data) for _, data in encoded.parts)
            if len(self._page) >= PAGE or self._page_bytes >= PAGE_BYTES:
                self.flush()

    def _checked(self, trial: Trial, **facts: Any) -> None:
        """One `trial.checked` line per watched trial; studies only the whole-registry mode reads are
        counted instead, one `registry.page` line per `LOG_EVERY` of them (560,000 lines a sync, else)."""
        if trial.nct_id in self.by_id:
            log.info("trial.checked", nct_id=trial.nct_id, **facts)
            return
        kind = "new" if facts.get("baseline") else "changed" if facts["changed"] else "unchanged"
        self._tally[kind] = self._tally.get(kind, 0) + 1
        if sum(self._tally.values()) >= LOG_EVERY:
            self.log_tally()

    def log_tally(self) -> None:
        """The `registry.page` line of the studies counted since the last one (none: no line)."""
        if self._tally:
            tally, self._tally = self._tally, {}
            log.info("registry.page", studies=sum(tally.values()), **{k: tally.get(k, 0) for k in TALLIED})

    def take_rest(self, records: Mapping[str, dict[str, Any]]) -> None:
        """The records the poller returned without streaming them, then the last page."""
        for nct_id, record in records.items():
            if nct_id not in self.processed:
                self.take(nct_id, record)
        self.flush()
        self.log_tally()

    def flush(self) -> None:
        """Store the page in hand."""
        page, self._page, self._page_bytes = self._page, [], 0
        if not page:
            return
        self._store(page)
        del page
        page_stored()

    def _store(self, page: list[tuple[Trial, dict[str, Any], Encoded]]) -> None:
        known = self.store.versions.latest_hashes([trial.nct_id for trial, _, _ in page])
        differ = [t.nct_id for t, _, encoded in page if known.get(t.nct_id) not in (None, encoded.digest)]
        stored = self.store.versions.latest_many(differ) if differ else {}
        self._held = self.store.meta.present([SUSPECT.of(n) for n in differ]) if differ else frozenset()
        unchanged: list[str] = []
        todo: list[Prepared] = []
        for trial, record, encoded in page:
            try:
                prepared = self._prepare(trial, record, encoded, known.get(trial.nct_id), stored.get(trial.nct_id))
            except Suspect as exc:
                self.report.failed[trial.nct_id] = f"suspect: {exc}"
            except TrialWatchError as exc:
                self.trial_alerts.failed(trial, str(exc))
            except Exception as exc:  # one broken record must not stop the cycle
                log.exception("trial.crashed", nct_id=trial.nct_id)
                self.trial_alerts.failed(trial, f"internal error: {type(exc).__name__}: {exc}")
            else:
                if prepared is None:
                    unchanged.append(trial.nct_id)
                else:
                    todo.append(prepared)
        if unchanged:
            self.trial_alerts.checked(unchanged, self.now())
            self.report.checked += len(unchanged)
        for prepared, saved in zip(todo, self.store.versions.save_many([p.version for p in todo]), strict=True):
            if isinstance(saved, TrialWatchError):
                self.trial_alerts.failed(prepared.trial, str(saved))
            else:
                self._saved(prepared, saved)

    def _history(self) -> RecordHistory:
        """The record history's reader of the trial being prepared: one per trial, so its index is
        asked for once whether a partial answer or the messages' link needed it first."""
        if self._reader is None:
            self._reader = RecordHistory(self.config, self.client)
        return self._reader

    def _newest(self, nct_id: str) -> tuple[HistoryEntry, dict[str, Any] | None]:
        """The record history's newest version of a study (one request): settles a partial answer."""
        return self._history().newest(nct_id)

    def _prepare(
        self,
        trial: Trial,
        record: Mapping[str, Any],
        encoded: Encoded,
        stored_hash: str | None,
        latest: Snapshot | None,
    ) -> Prepared | None:
        """The new version a fetched record makes, or None when it is the stored one (`stored_hash`).
        The stored version (`latest`) was loaded for the page only where the hashes differ; a baseline
        is not diffed at all unless it is notified (`notify.baseline`): its changes are derived when read."""
        settings = self.config.settings
        if stored_hash == encoded.digest:
            self._checked(trial, changed=False)
            return None
        self._reader = None
        now = self.now()
        if stored_hash is None:
            latest = None
        if latest is not None:
            held = SUSPECT.of(trial.nct_id).key in self._held
            fetched, record = (
                record,
                whole_record(self.alerts, self.client, trial, latest, record, held_back=held, newest=self._newest),
            )
            if record is not fetched:
                encoded = encode_record(record)
            if latest.content_hash == encoded.digest:
                return None
            latest, spent = fill_gap(
                self.config,
                self.store,
                self.client,
                trial=trial,
                latest=latest,
                record=record,
                rules=self.rules,
                budget=settings.backfill.max_gap_requests - self.gap_requests,
                previous_data=self.previous_data,
                now=self.now,
                write=self.write,
            )
            self.gap_requests += spent
            now = max(now, latest.fetched_at)
        baseline = latest is None
        notify = not baseline or settings.notify_baseline
        changes = changes_between(latest.record if latest else None, record, self.rules) if notify else []
        title = title_of(record)
        routed = route(trial, changes, settings) if notify and settings.channels else {}
        numbers = Numbers()
        if latest is not None and any(map(summarises, routed.values())):
            # a message summarising a list ends with a link to the full list: ClinicalTrials.gov's comparison
            budget = settings.backfill.max_gap_requests - self.gap_requests
            numbers = ctgov_numbers(self.config, self._history, latest, record, budget=budget)
            self.gap_requests += numbers.requests
        messages = change_messages(
            trial,
            title,
            routed,
            version=(latest.version + 1) if latest else 1,
            detected_at=now,
            web_base_url=settings.web.base_url,
            held=held_for_digest(routed, settings),
            ctgov_versions=numbers.versions,
        )
        messages += site_messages(self.config, trial, title, latest, record, notify=notify, at=now, write=self.write)
        if baseline and trial.channels and trial.nct_id not in self.by_id:  # whole-registry mode, past the first sync
            messages += registry_study_messages(trial.channels, summary(record), settings, detected_at=now)
        recovered = self.trial_alerts.recovered([trial.nct_id])
        messages += self.alerts.messages(recovered)  # written with the version that resets the failure count
        version = NewVersion(
            nct_id=trial.nct_id,
            record=record,
            digest=encoded.digest,
            fetched_at=now,
            changes=changes,
            baseline=baseline,
            messages=messages,
            encoded=encoded,
            ctgov_version=numbers.new,
        )
        return Prepared(trial, title, notify, routed, version, recovered)

    def _saved(self, prepared: Prepared, version: int) -> None:
        trial, new = prepared.trial, prepared.version
        self.alerts.committed(prepared.recovered)
        if prepared.notify and not self.config.settings.channels:
            shown = for_stdout(trial, new.changes, self.config.settings)
            if shown:
                print_changes(trial, prepared.title, shown, self.write)
        self._checked(
            trial,
            changed=True,
            baseline=new.baseline,
            version=version,
            changes=len(new.changes),
            notified=sorted(prepared.routed),
        )
        if new.baseline:
            self.run.new_trials.append(trial.nct_id)
            self.report.baselines.append(trial.nct_id)
        else:
            self.report.changed.append(trial.nct_id)
        self.report.checked += 1

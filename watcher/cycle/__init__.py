"""One poll cycle end to end: poll → snapshot → diff → outbox → deliver.

A trial that fails (bad response, crash in diffing, database hiccup on its row) fails
alone: it is counted, logged and retried next cycle, and the rest of the cycle goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import structlog

from watcher.backfill import Suspect, fill_gap, try_backfill, whole_record
from watcher.config import Config
from watcher.cycle.collector import collections_per_page, page_stored
from watcher.cycle.report import (
    DENIED_BACKOFF_FIRST,
    DENIED_BACKOFF_MAX,
    META_API_DENIED,
    META_API_FAILURES,
    META_API_RETRY_AT,
    META_DATA_TIMESTAMP,
    META_LAST_FULL,
    META_LAST_SUCCESS,
    PAGE,
    CycleReport,
    Pending,
    aware,
    iso,
    poll_state,
)
from watcher.detect import changes_between
from watcher.detect.canonical import encode_record
from watcher.detect.meaning import SeverityRules
from watcher.detect.record import title_of
from watcher.discovery import discover, run_daily_checks, site_messages
from watcher.errors import AccessDenied, ApiError, TrialWatchError
from watcher.models import Trial
from watcher.notify.payloads import change_messages, notify_tick, print_changes
from watcher.notify.routing import for_stdout, registry_trial, route
from watcher.registry.client import CtGovClient
from watcher.registry.outage import registry_wide
from watcher.registry.poll import PollResult, PollState, poll
from watcher.registry.whole import poll_registry
from watcher.store import Store
from watcher.store.database import utcnow
from watcher.store.outbox import NewMessage
from watcher.store.retention import apply_retention_daily
from watcher.store.values import NewVersion, TrialState

log = structlog.get_logger("watcher.cycle")


class Cycle:
    """Runs cycles for one configuration against one store and API client."""

    def __init__(
        self,
        config: Config,
        store: Store,
        client: CtGovClient,
        *,
        now: Callable[[], datetime] = utcnow,
        write: Callable[[str], Any] = print,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.now = now
        self.write = write
        self.progress = progress
        self.rules = SeverityRules.from_mapping(config.settings.severity_rules)

    def run(
        self,
        *,
        force_full: bool = False,
        deliver: bool = True,
        wait_for_lock: bool = False,
        only: Collection[str] | None = None,
    ) -> CycleReport:
        """One cycle, under the database's cycle lock (PostgreSQL): when another process sharing
        the database is in a cycle, this one is skipped (or waits, with `wait_for_lock`), so two
        services never poll the same trial in one cycle nor deliver the same message twice.

        `only`: poll just these of the watched trials (the service's per-trial intervals, trials
        just added); None polls all. The incremental poll keeps a registry-wide gate in `meta` (the
        data timestamp and time of the last complete poll, the last full re-fetch) that speaks for
        every watched trial; a partial cycle neither skips work because of it (it reads the data
        timestamp and last success as absent) nor moves it (it writes none of the three). What
        follows a cycle (feeds, backfill of new trials) still sees the whole watchlist."""
        watched = self.config.watchlist.trials
        chosen = watched if only is None else tuple(t for t in watched if t.nct_id in set(only))
        partial = len(chosen) < len(watched)
        with self.store.exclusive("cycle", wait=wait_for_lock) as got:
            if not got:
                started = self.now()
                log.info("cycle.locked", reason="another process is running a cycle on this database")
                return CycleReport(started_at=started, finished_at=started, skipped=True, strategy="locked")
            self._found = discover(
                self.config, self.store, self.client, partial=partial, now=self.now, write=self.write
            )  # saved searches; `watch: true` matches are polled too
            self._trials, self._partial = (*chosen, *self._found.trials), partial
            self._previous_data = None if partial else self.store.get_meta(META_DATA_TIMESTAMP)
            self._gap_requests, self._new_trials, self._page = 0, [], []
            report = self._run(force_full=force_full, deliver=deliver)
            self._after_cycle()
            return report

    def _run(self, *, force_full: bool, deliver: bool) -> CycleReport:
        trials = self._trials
        started = self.now()
        clock = time.monotonic()
        report = CycleReport(started_at=started)
        cycle_id = self.store.cycles.start(started)
        requests_before = self.client.requests_made
        states = self.store.trials.states()  # read once: this cycle's decisions use the states it began with
        state = poll_state(self.store, trials, states, force_full=force_full, partial=self._partial)
        threshold = self.config.settings.failure_alert_after
        failing = {
            k: st.consecutive_failures
            for k, st in states.items()
            if st.consecutive_failures >= threshold and not st.not_found
        }
        by_id = {t.nct_id: t for t in trials}
        processed: set[str] = set()

        def sink(nct_id: str, record: dict[str, Any]) -> None:
            """Records are stored a page at a time as they arrive, so a big first sync streams."""
            trial = by_id.get(nct_id) or registry_trial(
                nct_id, record, self.config.settings, quiet=state.last_full_refetch is None
            )
            if trial is not None:
                processed.add(nct_id)
                self._page.append((trial, record))
                if len(self._page) >= PAGE:
                    self._store_page(report)

        retry_at = iso(self.store.get_meta(META_API_RETRY_AT))
        if retry_at is not None and aware(started) < aware(retry_at):
            # the registry refused us (403): hammering it would not help, so this cycle sends nothing
            report.api_error = f"backing off after HTTP 403 until {retry_at.isoformat()}"
            report.strategy, report.skipped = "backoff", True
            log.info("cycle.backoff", until=retry_at.isoformat(), reason="HTTP 403")
        else:
            with collections_per_page():  # the records' trees: see `watcher.cycle.collector`
                self._poll_and_apply(
                    state, states, report, failing=failing, by_id=by_id, processed=processed, sink=sink
                )
        report.requests = self.client.requests_made - requests_before + self._found.requests
        report.finished_at = self.now()
        self.store.cycles.finish(
            cycle_id,
            at=report.finished_at,
            result=report.result,
            checked=report.checked,
            changed=len(report.changed),
            failed=len(report.failed),
            requests=report.requests,
            detail={
                "failed": report.failed,
                "not_found": report.not_found,
                "moved": report.moved,
                "skipped": report.skipped,
                "strategy": report.strategy,
                "api_error": report.api_error,
            },
        )
        run_daily_checks(self.config, self.store, self._trials, now=self.now, partial=self._partial)
        if deliver:
            deliveries = notify_tick(self.config, self.store, now=self.now)
            report.deliveries_failed = sum(1 for d in deliveries if not d.accepted)
        log.info(
            "cycle.done",
            result=report.result,
            trials=len(trials),
            checked=report.checked,
            changed=len(report.changed),
            failed=len(report.failed),
            not_found=len(report.not_found),
            requests=report.requests,
            skipped=report.skipped,
            strategy=report.strategy,
            deliveries_failed=report.deliveries_failed,
            duration_s=round(time.monotonic() - clock, 3),
        )
        return report

    def _poll_and_apply(
        self,
        state: PollState,
        states: Mapping[str, TrialState],
        report: CycleReport,
        *,
        failing: Mapping[str, int],
        by_id: Mapping[str, Trial],
        processed: set[str],
        sink: Callable[[str, dict[str, Any]], None],
    ) -> None:
        result = (poll_registry if self.config.settings.registry.all else poll)(
            self.client,
            [t.nct_id for t in self._trials],
            state,
            now=report.started_at,
            progress=self.progress,
            sink=sink,
        )
        for nct_id, record in result.records.items():  # records the poller did not stream
            if nct_id not in processed:
                sink(nct_id, record)
        self._store_page(report)
        if result.api_error is not None:
            report.api_error = str(result.api_error)
            report.strategy = result.strategy
            self._api_failed(report, result.api_error)
            return
        wide = registry_wide(result.failures, len(self._trials))
        self._apply(result, state, states, report, processed, grouped=wide[1] if wide else frozenset())
        if wide is not None:
            error, ids = wide
            report.api_error = (
                f"{len(ids)} of {len(self._trials)} trials failed the same way "
                f"(ClinicalTrials.gov answered /version): {error}"
            )
            self._api_failed(report, error)
            return
        self._api_recovered()
        for nct_id, count in sorted(failing.items()):
            if nct_id in by_id and nct_id not in report.failed and nct_id not in result.failures:
                log.info("trial.recovered", nct_id=nct_id, after_failures=count)
                self._alert(
                    nct_id=nct_id,
                    subject=f"{by_id[nct_id].display}: checked again",
                    text=f"{by_id[nct_id].display} could be checked again after {count} failed cycles.",
                )

    # -- applying a poll result ------------------------------------------------------------------

    def _store_page(self, report: CycleReport) -> None:
        """Store the page of records in hand: one query finds the unchanged ones by their stored
        content hash (nothing loaded), the changed and new ones are diffed one by one and written
        in one transaction (`store.versions.save_many`). A record that fails fails alone."""
        page, self._page = self._page, []
        if not page:
            return
        self._store_records(page, report)
        del page
        page_stored()

    def _store_records(self, page: list[tuple[Trial, dict[str, Any]]], report: CycleReport) -> None:
        known = self.store.versions.latest_hashes([trial.nct_id for trial, _ in page])
        unchanged: list[str] = []
        todo: list[Pending] = []
        for trial, record in page:
            try:
                pending = self._prepare(trial, record, known.get(trial.nct_id))
            except Suspect as exc:
                report.failed[trial.nct_id] = f"suspect: {exc}"
            except TrialWatchError as exc:
                self._trial_failed(trial, str(exc), report)
            except Exception as exc:  # one broken record must not stop the cycle
                log.exception("trial.crashed", nct_id=trial.nct_id)
                self._trial_failed(trial, f"internal error: {type(exc).__name__}: {exc}", report)
            else:
                if pending is None:
                    unchanged.append(trial.nct_id)
                else:
                    todo.append(pending)
        if unchanged:
            self.store.trials.mark_checked(unchanged, self.now())
            report.checked += len(unchanged)
        for pending, saved in zip(todo, self.store.versions.save_many([p.version for p in todo]), strict=True):
            if isinstance(saved, TrialWatchError):
                self._trial_failed(pending.trial, str(saved), report)
            else:
                self._saved(pending, saved, report)

    def _apply(
        self,
        result: PollResult,
        state: PollState,
        states: Mapping[str, TrialState],
        report: CycleReport,
        processed: set[str],
        *,
        grouped: frozenset[str] = frozenset(),
    ) -> None:
        """`grouped`: trials that failed with most others for one reason: one API-level problem, so
        they are reported failed in this cycle but count no per-trial failure (no per-trial alert)."""
        report.skipped, report.strategy = result.skipped, result.strategy
        by_id = {t.nct_id: t for t in self._trials}
        for nct_id, error in result.failures.items():
            if nct_id in grouped:
                report.failed[nct_id] = str(error)
            elif nct_id in by_id:
                self._trial_failed(by_id[nct_id], str(error), report)
        for nct_id in sorted(result.not_found):
            report.not_found.append(nct_id)
            already = states.get(nct_id)
            self.store.trials.record_failure(nct_id, "not found on ClinicalTrials.gov (404)", not_found=True)
            if already is None or not already.not_found:
                log.warning("trial.not_found", nct_id=nct_id)
                self._alert(
                    nct_id=nct_id,
                    subject=f"{nct_id}: not found on ClinicalTrials.gov",
                    text=f"{nct_id} answered 404 Not Found. Check the watchlist entry "
                    f"(line {by_id[nct_id].line if nct_id in by_id else '?'}).",
                )
        for nct_id, canonical in sorted(result.moved.items()):
            report.moved[nct_id] = canonical
            previous = states.get(nct_id)
            if previous is None or previous.canonical_id != canonical:
                self.store.trials.set_canonical(nct_id, canonical)
                log.info("trial.moved", nct_id=nct_id, canonical_id=canonical)
                self._alert(
                    nct_id=nct_id,
                    subject=f"{nct_id} is now listed as {canonical}",
                    text=f"ClinicalTrials.gov redirects {nct_id} to {canonical}. TrialWatch follows it; "
                    f"you may replace the ID in the watchlist.",
                )
        settled = processed | set(result.failures) | result.not_found | set(report.failed)
        unchanged = [t.nct_id for t in self._trials if t.nct_id not in settled and t.nct_id not in state.not_found]
        self.store.trials.mark_checked(unchanged, self.now())
        report.checked += len(unchanged)
        if not self._partial:  # the registry-wide gate moves only when every watched trial was polled
            if result.data_timestamp is not None:
                self.store.set_meta(META_DATA_TIMESTAMP, result.data_timestamp)
            if result.complete and not report.failed:
                self.store.set_meta(META_LAST_SUCCESS, report.started_at.isoformat())
            if result.full_refetch:
                self.store.set_meta(META_LAST_FULL, report.started_at.isoformat())

    def _prepare(self, trial: Trial, record: Mapping[str, Any], stored_hash: str | None) -> Pending | None:
        """The new version a fetched record makes, or None when it is the stored one. The stored
        record is loaded (and decompressed) only when the hashes differ; a baseline is not diffed
        at all unless it is notified (`notify.baseline`): its changes are derived when read."""
        settings = self.config.settings
        encoded = encode_record(record)
        if stored_hash == encoded.digest:
            log.info("trial.checked", nct_id=trial.nct_id, changed=False)
            return None
        now = self.now()
        latest = self.store.versions.latest(trial.nct_id) if stored_hash is not None else None
        if latest is not None:
            fetched, record = record, whole_record(self.store, self.client, trial, latest, record, alert=self._alert)
            if record is not fetched:
                encoded = encode_record(record)
            if latest.content_hash == encoded.digest:
                return None
            budget = settings.backfill.max_gap_requests - self._gap_requests
            latest, spent = fill_gap(
                self.config,
                self.store,
                self.client,
                trial=trial,
                latest=latest,
                record=record,
                rules=self.rules,
                budget=budget,
                previous_data=self._previous_data,
                now=self.now,
                write=self.write,
            )
            self._gap_requests += spent
            now = max(now, latest.fetched_at)
        baseline = latest is None
        notify = not baseline or settings.notify_baseline
        changes = changes_between(latest.record if latest else None, record, self.rules) if notify else []
        title = title_of(record)
        routed = route(trial, changes, settings) if notify and settings.channels else {}
        messages = change_messages(trial, title, routed, version=(latest.version + 1) if latest else 1, detected_at=now)
        messages += site_messages(self.config, trial, title, latest, record, notify=notify, at=now, write=self.write)
        return Pending(
            trial,
            title,
            notify,
            routed,
            NewVersion(
                nct_id=trial.nct_id,
                record=record,
                digest=encoded.digest,
                fetched_at=now,
                changes=changes,
                baseline=baseline,
                messages=messages,
                encoded=encoded,
            ),
        )

    def _saved(self, pending: Pending, version: int, report: CycleReport) -> None:
        trial, new = pending.trial, pending.version
        if pending.notify and not self.config.settings.channels:
            shown = for_stdout(trial, new.changes, self.config.settings)
            if shown:
                print_changes(trial, pending.title, shown, self.write)
        log.info(
            "trial.checked",
            nct_id=trial.nct_id,
            changed=True,
            baseline=new.baseline,
            version=version,
            changes=len(new.changes),
            notified=sorted(pending.routed),
        )
        if new.baseline:
            self._new_trials.append(trial.nct_id)
        else:
            report.changed.append(trial.nct_id)
        report.checked += 1

    # -- history: gaps between polls, backfill of new trials, retention, feeds (storage's block) ---

    _trials: tuple[Trial, ...] = ()
    _partial: bool = False
    _previous_data: Any = None
    _gap_requests: int = 0
    _new_trials: list[str]
    _page: list[tuple[Trial, dict[str, Any]]]

    def _after_cycle(self) -> None:
        """Backfill trials seen for the first time (`backfill.on_add`), apply retention at most
        daily, and rewrite the Atom feeds. Failures are logged: they never fail the cycle."""
        settings = self.config.settings
        try:
            if settings.backfill.on_add and self._new_trials:
                for nct_id in (n for n in self._new_trials if self.config.watchlist.get(n) is not None):
                    try_backfill(self.config, self.store, self.client, nct_id, now=self.now)
            self._retention()
            if settings.feeds.path is not None:
                from watcher.views.feeds import write_feeds

                written = write_feeds(self.config, self.store, now=self.now())
                log.info("feeds.written", files=[str(p) for p in written])
        except (TrialWatchError, OSError) as exc:
            log.warning("housekeeping.failed", error=str(exc))

    def _retention(self) -> None:
        settings = self.config.settings
        result = apply_retention_daily(
            self.store, keep_versions=settings.keep_versions, keep_days=settings.keep_days, now=self.now()
        )
        if result is not None:
            log.info(
                "retention.done",
                pruned=result.pruned,
                blobs_deleted=result.blobs_deleted,
                bytes_freed=result.bytes_freed,
                kept_for_outbox=result.kept_for_outbox,
            )

    # -- failures --------------------------------------------------------------------------------

    def _trial_failed(self, trial: Trial, error: str, report: CycleReport) -> None:
        report.failed[trial.nct_id] = error
        count = self.store.trials.record_failure(trial.nct_id, error)
        log.warning("trial.failed", nct_id=trial.nct_id, error=error, consecutive=count)
        if count == self.config.settings.failure_alert_after:
            self._alert(
                nct_id=trial.nct_id,
                subject=f"{trial.display}: failing for {count} cycles",
                text=f"TrialWatch could not check {trial.display} for {count} consecutive cycles. Last error: {error}",
            )

    def _api_failed(self, report: CycleReport, error: ApiError) -> None:
        count = int(self.store.get_meta(META_API_FAILURES, 0)) + 1
        self.store.set_meta(META_API_FAILURES, count)
        log.error("cycle.api_failed", error=report.api_error, consecutive=count, error_type=type(error).__name__)
        if isinstance(error, AccessDenied):
            self._access_denied(report, error, count)
        elif count == self.config.settings.failure_alert_after and report.failed:
            self._alert(
                nct_id=None,
                subject=f"ClinicalTrials.gov failing for most trials for {count} cycles",
                text=f"The last {count} poll cycles failed for most watched trials at once: one problem at "
                f"ClinicalTrials.gov (or between it and us), not {len(report.failed)} separate ones. "
                f"Last cycle: {report.api_error}",
            )
        elif count == self.config.settings.failure_alert_after:
            self._alert(
                nct_id=None,
                subject=f"ClinicalTrials.gov unreachable for {count} cycles",
                text=f"The last {count} poll cycles failed. Last error: {report.api_error}",
            )

    def _access_denied(self, report: CycleReport, error: AccessDenied, count: int) -> None:
        """A 403 is reported once (its message says what to check) and retried with a growing pause."""
        pause = min(DENIED_BACKOFF_FIRST * 2 ** min(count - 1, 16), DENIED_BACKOFF_MAX)
        retry_at = report.started_at + pause
        self.store.set_meta(META_API_RETRY_AT, retry_at.isoformat())
        log.warning("cycle.access_denied", consecutive=count, retry_at=retry_at.isoformat())
        if not self.store.get_meta(META_API_DENIED):
            self.store.set_meta(META_API_DENIED, 1)
            self._alert(
                nct_id=None,
                subject="ClinicalTrials.gov refuses TrialWatch's requests (HTTP 403)",
                text=f"{error}\nNext attempt after {retry_at.isoformat()}, then with a growing pause "
                f"(at most {DENIED_BACKOFF_MAX}) until it answers.",
            )

    def _api_recovered(self) -> None:
        count = int(self.store.get_meta(META_API_FAILURES, 0))
        if self.store.get_meta(META_API_RETRY_AT):
            self.store.set_meta(META_API_RETRY_AT, None)
        if self.store.get_meta(META_API_DENIED):
            self.store.set_meta(META_API_DENIED, 0)
            count = max(count, self.config.settings.failure_alert_after)  # the 403 was reported: say it is over
        if count:
            self.store.set_meta(META_API_FAILURES, 0)
            if count >= self.config.settings.failure_alert_after:
                self._alert(
                    nct_id=None,
                    subject="ClinicalTrials.gov polling recovered",
                    text=f"Polling works again after {count} failed cycles.",
                )

    def _alert(self, *, subject: str, text: str, nct_id: str | None) -> None:
        """Failure and housekeeping alerts go to every channel, or to stdout when there are none."""
        settings = self.config.settings
        if not settings.channels:
            self.write(f"!! {subject}\n{text}\n")
            return
        payload = {"schema": 1, "type": "alert", "subject": subject, "text": text, "nct_id": nct_id}
        self.store.outbox.enqueue(
            [NewMessage(channel=name, nct_id=nct_id, kind="alert", payload=payload) for name in settings.channels],
            self.now(),
        )

"""One poll cycle end to end: discover → poll → snapshot → diff → outbox → deliver → housekeeping.

`Cycle` only orchestrates; each step is a module of its own:

    report.py         `Run`, one cycle's own state, and the `CycleReport` it returns
    gate.py           the registry-wide gate the incremental poll keeps in `meta`
    records.py        fetched records into stored versions, a page at a time
    partial.py        partial records held back instead of diffed
    alerts.py         alerts, queued in the transaction of the change that causes them
    trial_alerts.py   one trial failing, not found, moved, checked again
    outage.py         the registry failing for every trial, a 403 backed off, recovery
    housekeeping.py   backfill of new trials, retention, feeds: each step guarded on its own
    collector.py      the garbage collector paused while records stream

Saved searches and the daily no-edit checks are `watcher.discovery`'s, backfill and gap-filling
`watcher.backfill`'s. A trial that fails (bad response, crash in diffing, database hiccup on its
row) fails alone: it is counted, logged and retried next cycle, and the rest of the cycle goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

import structlog

from watcher.config import Config
from watcher.cycle.alerts import Alerts
from watcher.cycle.collector import collections_per_page
from watcher.cycle.gate import move_gate, poll_state
from watcher.cycle.housekeeping import run_housekeeping
from watcher.cycle.outage import RegistryAlerts, registry_wide
from watcher.cycle.records import Recorder
from watcher.cycle.report import CycleReport, Run
from watcher.cycle.trial_alerts import TrialAlerts
from watcher.detect.meaning import SeverityRules
from watcher.discovery import announce_no_edit_alerts, discover
from watcher.notify.payloads import drain
from watcher.registry.client import CtGovClient
from watcher.registry.poll import PollResult, PollState, poll
from watcher.registry.whole import poll_whole_registry
from watcher.store import Store
from watcher.times import utcnow

__all__ = ["Cycle", "CycleReport"]

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
        self.alerts = Alerts(store, config.settings, now=now, write=write)

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
        just added); None polls all. A partial cycle neither skips work because of the
        registry-wide gate nor moves it (`watcher.cycle.gate`). What follows a cycle (feeds,
        backfill of new trials) still sees the whole watchlist."""
        watched = self.config.watchlist.trials
        chosen = watched if only is None else tuple(t for t in watched if t.nct_id in set(only))
        partial = len(chosen) < len(watched)
        with self.store.exclusive("cycle", wait=wait_for_lock) as got:
            if not got:
                started = self.now()
                log.info("cycle.locked", reason="another process is running a cycle on this database")
                return CycleReport(started_at=started, finished_at=started, skipped=True, strategy="locked")
            begun = (self.now(), time.monotonic())  # the searches are part of the cycle, and of its duration
            found = discover(self.config, self.store, self.client, partial=partial, now=self.now, write=self.write)
            run = Run(trials=(*chosen, *found.trials), partial=partial, found=found)  # `watch: true` matches too
            report = self._run(run, begun, force_full=force_full, deliver=deliver)
            run_housekeeping(self.config, self.store, self.client, run.new_trials, now=self.now)
            return report

    def _run(self, run: Run, begun: tuple[datetime, float], *, force_full: bool, deliver: bool) -> CycleReport:
        started, clock = begun
        report = CycleReport(started_at=started)
        cycle_id = self.store.cycles.start(started)
        requests_before = self.client.requests_made
        registry = RegistryAlerts(self.alerts)
        retry_at = registry.backing_off(started)
        if retry_at is not None:
            # the registry refused us (403): hammering it would not help, so this cycle sends nothing
            report.api_error = f"backing off after HTTP 403 until {retry_at.isoformat()}"
            report.strategy, report.skipped = "backoff", True
            log.info("cycle.backoff", until=retry_at.isoformat(), reason="HTTP 403")
        else:
            with collections_per_page():  # the records' trees: see `watcher.cycle.collector`
                self._poll(run, report, registry, force_full=force_full)
        report.requests = self.client.requests_made - requests_before + run.found.requests
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
        announce_no_edit_alerts(self.config, self.store, run.trials, now=self.now, partial=run.partial)
        if deliver:
            drained = drain(self.config, self.store, now=self.now)  # a one-shot run: nothing left to a next tick
            report.deliveries_failed = sum(1 for d in drained.outcomes if not d.accepted)
            report.left_queued = drained.left
        log.info(
            "cycle.done",
            result=report.result,
            trials=len(run.trials),
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

    def _poll(self, run: Run, report: CycleReport, registry: RegistryAlerts, *, force_full: bool) -> None:
        """Poll, store what came back page by page, then settle every trial the poll did not return."""
        # read once: this cycle's decisions use the states it began with (its trials' and the failing ones)
        states = self.store.trials.states([t.nct_id for t in run.trials])
        state = poll_state(self.store, run.trials, states, force_full=force_full, partial=run.partial)
        trial_alerts = TrialAlerts(self.alerts, states, {t.nct_id: t for t in run.trials}, report)
        recorder = Recorder(
            self.config,
            self.store,
            self.client,
            run=run,
            report=report,
            alerts=self.alerts,
            trial_alerts=trial_alerts,
            rules=self.rules,
            previous_data=state.data_timestamp,
            quiet=state.last_full_refetch is None,
            now=self.now,
            write=self.write,
        )
        result = (poll_whole_registry if self.config.settings.registry.all else poll)(
            self.client,
            [t.nct_id for t in run.trials],
            state,
            now=report.started_at,
            progress=self.progress,
            sink=recorder.take,
        )
        recorder.take_rest(result.records)
        if result.api_error is not None:
            report.api_error = str(result.api_error)
            report.strategy = result.strategy
            registry.failed(report, result.api_error)
            return
        wide = registry_wide(result.failures, len(run.trials))
        grouped = wide[1] if wide else frozenset()
        self._settle(run, result, state, report, trial_alerts, settled=recorder.processed, grouped=grouped)
        if wide is not None:
            error, ids = wide
            report.api_error = (
                f"{len(ids)} of {len(run.trials)} trials failed the same way "
                f"(ClinicalTrials.gov answered /version): {error}"
            )
            registry.failed(report, error)
            return
        registry.recovered()

    def _settle(
        self,
        run: Run,
        result: PollResult,
        state: PollState,
        report: CycleReport,
        trial_alerts: TrialAlerts,
        *,
        settled: set[str],
        grouped: frozenset[str],
    ) -> None:
        """The poll's verdict on the trials not `settled` by a stored record: failed, not found,
        moved or unchanged; then the gate moves, on a complete cycle. Trials that failed with most
        others for one reason (`grouped`) are one registry-level problem: reported failed in this
        cycle, counted against no trial (no per-trial alert)."""
        report.skipped, report.strategy = result.skipped, result.strategy
        for nct_id, error in result.failures.items():
            if nct_id in grouped:
                report.failed[nct_id] = str(error)
            elif nct_id in trial_alerts.trials:
                trial_alerts.failed(trial_alerts.trials[nct_id], str(error))
        for nct_id in sorted(result.not_found):
            trial_alerts.not_found(nct_id)
        for nct_id, canonical in sorted(result.moved.items()):
            trial_alerts.moved(nct_id, canonical)
        done = settled | set(result.failures) | result.not_found | set(report.failed)
        unchanged = [t.nct_id for t in run.trials if t.nct_id not in done and t.nct_id not in state.not_found]
        trial_alerts.checked(unchanged, self.now())
        report.checked += len(unchanged)
        if not run.partial:  # the registry-wide gate moves only when every watched trial was polled
            move_gate(self.store, result, started_at=report.started_at, clean=not report.failed)

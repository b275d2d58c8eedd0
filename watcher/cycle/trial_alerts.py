"""One trial's health over cycles, and when it is worth an alert.

A trial that cannot be checked is counted, not alerted: one failure is noise (a timeout, a
hiccup), so the alert comes when `notify.failure_alert_after` cycles in a row failed, once, and
"checked again" follows when it next succeeds. A 404 and a redirect to another NCT ID are
reported once each, when first seen. Every counter, flag or ID written here commits with the alert
it raises (`Alerts.raising`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import structlog

from watcher.cycle.alerts import Alert, Alerts
from watcher.cycle.report import CycleReport
from watcher.models import Trial
from watcher.store.failures import alert_reason
from watcher.store.values import TrialState

log = structlog.get_logger("watcher.cycle")


class TrialAlerts:
    """The per-trial alert policy of one cycle, from the trial states the cycle began with."""

    def __init__(
        self, alerts: Alerts, states: Mapping[str, TrialState], trials: Mapping[str, Trial], report: CycleReport
    ) -> None:
        self.alerts = alerts
        self.states = states
        self.trials = trials
        self.report = report
        self.threshold = alerts.settings.failure_alert_after
        self.failing = {
            k: st.consecutive_failures
            for k, st in states.items()
            if st.consecutive_failures >= self.threshold and not st.not_found
        }
        """Trials alerted as failing: a success this cycle is announced (once) as "checked again"."""

    def failed(self, trial: Trial, error: str) -> None:
        """Count a failure of `trial`; alert when the count reaches the threshold."""
        self.report.failed[trial.nct_id] = error
        with self.alerts.raising() as raised:
            count = raised.tx.record_failure(trial.nct_id, error)
            if count == self.threshold:
                raised.alert(
                    f"{trial.display}: failing for {count} cycles",
                    f"TrialWatch could not check {trial.display} for {count} consecutive cycles. "
                    f"Last error: {alert_reason(error)}",
                    nct_id=trial.nct_id,
                )
        log.warning("trial.failed", nct_id=trial.nct_id, error=error, consecutive=count)

    def not_found(self, nct_id: str) -> None:
        """ClinicalTrials.gov answered 404: counted as a failure, alerted when first seen."""
        self.report.not_found.append(nct_id)
        already = self.states.get(nct_id)
        trial = self.trials.get(nct_id)
        with self.alerts.raising() as raised:
            raised.tx.record_failure(nct_id, "not found on ClinicalTrials.gov (404)", not_found=True)
            if already is None or not already.not_found:
                log.warning("trial.not_found", nct_id=nct_id)
                raised.alert(
                    f"{nct_id}: not found on ClinicalTrials.gov",
                    f"{nct_id} answered 404 Not Found. Check the watchlist entry "
                    f"(line {trial.line if trial is not None else '?'}).",
                    nct_id=nct_id,
                )

    def moved(self, nct_id: str, canonical: str) -> None:
        """The registry redirects `nct_id` to `canonical`: followed, and alerted when new."""
        self.report.moved[nct_id] = canonical
        previous = self.states.get(nct_id)
        if previous is not None and previous.canonical_id == canonical:
            return
        with self.alerts.raising() as raised:
            raised.tx.set_canonical(nct_id, canonical)
            log.info("trial.moved", nct_id=nct_id, canonical_id=canonical)
            raised.alert(
                f"{nct_id} is now listed as {canonical}",
                f"ClinicalTrials.gov redirects {nct_id} to {canonical}. TrialWatch follows it; "
                f"you may replace the ID in the watchlist.",
                nct_id=nct_id,
            )

    def checked(self, nct_ids: Sequence[str], at: datetime) -> None:
        """Checked without a failure: their failure counts start again, with the recoveries they announce."""
        if not nct_ids:
            return
        with self.alerts.raising() as raised:
            raised.tx.mark_checked(nct_ids, at)
            raised.alerts.extend(self.recovered(nct_ids))

    def recovered(self, nct_ids: Collection[str]) -> list[Alert]:
        """The "checked again" alerts of these trials, to be written with the state that resets their
        failure count (`checked`, or a new version's transaction); each is said once a cycle."""
        alerts = []
        for nct_id in sorted(set(nct_ids) & self.failing.keys() & self.trials.keys()):
            count, shown = self.failing.pop(nct_id), self.trials[nct_id].display
            log.info("trial.recovered", nct_id=nct_id, after_failures=count)
            alerts.append(
                Alert(f"{shown}: checked again", f"{shown} could be checked again after {count} failed cycles.", nct_id)
            )
        return alerts

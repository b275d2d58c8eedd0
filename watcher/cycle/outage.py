"""When ClinicalTrials.gov itself fails: one problem, one alert, not one per trial.

A cycle fails at the registry level when the API cannot be reached, refuses us, or fails most
trials for one reason (`registry_wide`: an HTML error page served for every study is one outage,
not hundreds of broken trials). Such cycles are counted in `meta` (`API_FAILURES`): the alert comes
when `notify.failure_alert_after` of them ran in a row, and "recovered" when a cycle succeeds
again. A 403 is different: ClinicalTrials.gov refuses this client, retrying at once cannot help, so
it is alerted at once (its message says what to check) and the next requests wait, with a pause
that doubles up to `DENIED_BACKOFF_MAX`. Each counter and flag commits with the alert it raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

import structlog

from watcher.cycle.alerts import Alerts
from watcher.cycle.report import CycleReport
from watcher.errors import AccessDenied, ApiError
from watcher.store.meta import API_DENIED, API_FAILURES, API_RETRY_AT
from watcher.times import utc

log = structlog.get_logger("watcher.cycle")

REGISTRY_WIDE_MIN = 3
"""Fewer trials failing alike are alerted one by one."""
DENIED_BACKOFF_FIRST = timedelta(minutes=15)
DENIED_BACKOFF_MAX = timedelta(hours=6)


def _reason(error: ApiError) -> str:
    """An error's kind and message without the trial IDs and query strings that vary between trials."""
    return f"{type(error).__name__}: " + re.sub(r"\?\S*|NCT\d{8}", "…", str(error))


def registry_wide(failures: Mapping[str, ApiError], polled: int) -> tuple[ApiError, frozenset[str]] | None:
    """(an example error, the trials) when most of the `polled` trials failed for one reason."""
    groups: dict[str, list[str]] = {}
    for nct_id, error in failures.items():
        groups.setdefault(_reason(error), []).append(nct_id)
    if not groups:
        return None
    ids = max(groups.values(), key=len)
    if len(ids) < REGISTRY_WIDE_MIN or 2 * len(ids) <= polled:
        return None
    return failures[ids[0]], frozenset(ids)


class RegistryAlerts:
    """The registry-level alert policy: failing cycles counted, a 403 backed off, recovery said."""

    def __init__(self, alerts: Alerts) -> None:
        self.alerts = alerts
        self.threshold = alerts.settings.failure_alert_after

    def backing_off(self, at: datetime) -> datetime | None:
        """After a 403, the time before which no request may be made, if `at` is before it."""
        retry_at = self.alerts.store.meta.get(API_RETRY_AT)
        return retry_at if retry_at is not None and utc(at) < retry_at else None

    def failed(self, report: CycleReport, error: ApiError) -> None:
        """One more cycle failed at the registry level (`report.api_error` says how)."""
        with self.alerts.raising() as raised:
            meta = raised.tx.meta
            count = (meta.get(API_FAILURES) or 0) + 1
            meta.set(API_FAILURES, count)
            log.error("cycle.api_failed", error=report.api_error, consecutive=count, error_type=type(error).__name__)
            if isinstance(error, AccessDenied):
                pause = min(DENIED_BACKOFF_FIRST * 2 ** min(count - 1, 16), DENIED_BACKOFF_MAX)
                retry_at = report.started_at + pause
                meta.set(API_RETRY_AT, retry_at)
                log.warning("cycle.access_denied", consecutive=count, retry_at=retry_at.isoformat())
                if not meta.get(API_DENIED):
                    meta.set(API_DENIED, True)
                    raised.alert(
                        "ClinicalTrials.gov refuses TrialWatch's requests (HTTP 403)",
                        f"{error}\nNext attempt after {retry_at.isoformat()}, then with a growing pause "
                        f"(at most {DENIED_BACKOFF_MAX}) until it answers.",
                    )
            elif count == self.threshold and report.failed:
                raised.alert(
                    f"ClinicalTrials.gov failing for most trials for {count} cycles",
                    f"The last {count} poll cycles failed for most watched trials at once: one problem at "
                    f"ClinicalTrials.gov (or between it and us), not {len(report.failed)} separate ones. "
                    f"Last cycle: {report.api_error}",
                )
            elif count == self.threshold:
                raised.alert(
                    f"ClinicalTrials.gov unreachable for {count} cycles",
                    f"The last {count} poll cycles failed. Last error: {report.api_error}",
                )

    def recovered(self) -> None:
        """A cycle that worked at the registry level: counters cleared, and said so if it was alerted."""
        with self.alerts.raising() as raised:
            meta = raised.tx.meta
            count = meta.get(API_FAILURES) or 0
            if meta.get(API_RETRY_AT) is not None:
                meta.set(API_RETRY_AT, None)
            if meta.get(API_DENIED):
                meta.set(API_DENIED, False)
                count = max(count, self.threshold)  # the 403 was reported: say it is over
            if count:
                meta.set(API_FAILURES, 0)
                if count >= self.threshold:
                    raised.alert(
                        "ClinicalTrials.gov polling recovered", f"Polling works again after {count} failed cycles."
                    )

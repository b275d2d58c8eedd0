"""What one cycle keeps and reports: its meta keys, the report, the poller's view of the store.

Apart from `Cycle` so that the daemon, `status` and the tests read a cycle's figures and keys
without the cycle's machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.models import Trial
from watcher.registry.poll import PollState
from watcher.store import Store
from watcher.store.values import NewVersion, TrialState

META_DATA_TIMESTAMP = "poll.data_timestamp"
META_LAST_SUCCESS = "poll.last_success"
META_LAST_FULL = "poll.last_full_refetch"
META_API_FAILURES = "poll.api_failures"
META_API_DENIED = "poll.api_denied"  # a 403 was reported to the operator; cleared (and said so) on recovery
META_API_RETRY_AT = "poll.api_retry_at"  # after a 403, no request before this time
DENIED_BACKOFF_FIRST = timedelta(minutes=15)
DENIED_BACKOFF_MAX = timedelta(hours=6)
PAGE = 25  # fetched records stored per transaction (`store.versions.save_many`): the peak RSS is about one page


@dataclass(frozen=True, slots=True)
class Pending:
    """A changed or new trial's next version, diffed and routed, waiting for its page's write."""

    trial: Trial
    title: str | None
    notify: bool
    routed: Mapping[str, Any]
    version: NewVersion


@dataclass(slots=True)
class CycleReport:
    started_at: datetime
    finished_at: datetime | None = None
    checked: int = 0
    changed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    skipped: bool = False
    strategy: str = ""
    api_error: str | None = None
    deliveries_failed: int = 0

    @property
    def result(self) -> str:
        if self.api_error:
            return "api_failed"
        return "partial" if self.failed else "ok"


def aware(moment: datetime) -> datetime:
    """Ours are UTC; a naive one (SQLite, an injected clock) is read as such."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def poll_state(
    store: Store,
    trials: tuple[Trial, ...],
    states: Mapping[str, TrialState],
    *,
    force_full: bool = False,
    partial: bool = False,
) -> PollState:
    """What the poller needs from the store, from the trial states the cycle read once.

    `partial`: `trials` are only some of the watched trials, so the registry-wide gate (the data
    timestamp and time of the last complete poll) does not speak for them and is read as absent.
    """
    watched = {t.nct_id for t in trials}
    return PollState(
        data_timestamp=None if partial else store.get_meta(META_DATA_TIMESTAMP),
        last_success=None if partial else iso(store.get_meta(META_LAST_SUCCESS)),
        last_full_refetch=iso(store.get_meta(META_LAST_FULL)),
        known={
            k: st.last_update_post_date
            for k, st in states.items()
            if k in watched and st.last_update_post_date is not None
        },
        force_full=force_full,
        not_found=frozenset(k for k, st in states.items() if st.not_found and k in watched),
        statuses={k: st.overall_status for k, st in states.items() if k in watched and st.overall_status is not None},
    )

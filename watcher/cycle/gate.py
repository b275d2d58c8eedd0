"""The registry-wide gate: what the last complete poll lets the next one skip.

ClinicalTrials.gov refreshes its data about once a day and says when (`/version`'s data timestamp).
The incremental poll keeps, in `meta`, that timestamp and the time of the last complete poll
(and of the last full re-fetch): while the timestamp has not moved nothing can have changed, and
after it moved only studies updated since the last complete poll need fetching. These facts speak
for every watched trial, so a partial cycle (some trials polled early, or just the new ones) reads
the first two as absent and moves none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from watcher.models import Trial
from watcher.registry.poll import PollResult, PollState
from watcher.store import Store
from watcher.store.meta import DATA_TIMESTAMP, LAST_FULL_REFETCH, LAST_SUCCESS, SUSPECT, MetaEntry
from watcher.store.values import TrialState


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

    A trial whose record was held back as partial (`SUSPECT`), or that failed last cycle, is left out
    of `known`: fetched in full next cycle, like a new one. The poll that fetched it did not fail, so the
    data timestamp moved; with it in `known` every later cycle skipped on that timestamp, and the
    change it carried waited for the registry's next refresh (a day).
    """
    watched = {t.nct_id for t in trials}
    held = store.meta.present([SUSPECT.of(n) for n in watched])
    retry = {n for n in watched if SUSPECT.of(n).key in held}
    retry |= {k for k, st in states.items() if k in watched and st.consecutive_failures and not st.not_found}
    return PollState(
        data_timestamp=None if partial else store.meta.get(DATA_TIMESTAMP),
        last_success=None if partial else store.meta.get(LAST_SUCCESS),
        last_full_refetch=store.meta.get(LAST_FULL_REFETCH),
        known={
            k: st.last_update_post_date
            for k, st in states.items()
            if k in watched and st.last_update_post_date is not None and k not in retry
        },
        force_full=force_full,
        not_found=frozenset(k for k, st in states.items() if st.not_found and k in watched),
        statuses={k: st.overall_status for k, st in states.items() if k in watched and st.overall_status is not None},
    )


def move_gate(store: Store, result: PollResult, *, started_at: datetime, clean: bool) -> None:
    """After a complete poll: the data timestamp it saw, when it ran if `clean` (every trial
    checked), and when it re-fetched everything if it did — in one transaction."""
    entries: list[MetaEntry] = []
    if result.data_timestamp is not None:
        entries.append(DATA_TIMESTAMP.to(result.data_timestamp))
    if result.complete and clean:
        entries.append(LAST_SUCCESS.to(started_at))
    if result.full_refetch:
        entries.append(LAST_FULL_REFETCH.to(started_at))
    if entries:
        store.meta.update(*entries)

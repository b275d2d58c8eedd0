"""One poll of ClinicalTrials.gov for a cycle: which watched trials changed, and their new records.

The cost model (docs/explanation/polling.md; docs/polling-internals.md) in one paragraph:
`/version` first, and nothing more when the data
timestamp has not moved since the last complete poll. Otherwise find the changed trials the cheaper of
two ways — (a) ask for the last-update date of every watched trial, `batch_size` IDs per request, or
(b) ask the registry for every study updated since the last complete poll (one day of overlap) and
intersect locally — then fetch full records only for the changed and the never-fetched. IDs a batch
leaves out get one GET each: 301 means moved, 404 means not found. Every `full_refetch_every` the
whole watchlist is fetched in full, as a safety net for anything the dates missed.

A trial that fails stays out of `records` (no snapshot, no diff, no false "removed" alert) and is in
`failures`; the poll is then incomplete, and the caller keeps the previous `data_timestamp` and
`last_success` so the next cycle looks again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import structlog

from watcher.detect.record import overall_status_of
from watcher.errors import ApiError, StudyNotFound
from watcher.ids import normalize_nct_id
from watcher.registry.client import PROBE_FIELDS, CtGovClient
from watcher.registry.responses import BatchResult, Fetched
from watcher.registry.stream import stream_studies
from watcher.times import utc

log = structlog.get_logger("watcher.registry.poll")

Progress = Callable[[int, int], None]
Sink = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class PollState:
    """What the store remembers between polls (plain data).

    `data_timestamp` and `last_success` belong to the last *complete* poll (`PollResult.complete`):
    store `result.data_timestamp` always, and `last_success = now` only when the result is complete.
    `known` maps a watched ID to the lastUpdatePostDate of its stored record; an ID missing from it
    has never been fetched and is always fetched in full. `not_found` holds IDs already reported as
    404: they are left alone until the next full re-fetch.
    """

    data_timestamp: str | None = None
    last_success: datetime | None = None
    last_full_refetch: datetime | None = None
    known: Mapping[str, str] = field(default_factory=dict)
    force_full: bool = False
    not_found: frozenset[str] = frozenset()
    statuses: Mapping[str, str] = field(default_factory=dict)  # watched ID → overallStatus of its stored record


@dataclass(frozen=True, slots=True)
class PollResult:
    """The outcome for each watched ID: a record, moved, not found, failed — or unchanged (none of those)."""

    data_timestamp: str | None  # the value to store for the next poll's gate (see PollState)
    skipped: bool  # the registry has not changed since the last complete poll: nothing fetched
    records: dict[str, dict[str, Any]]  # watched ID → full record (its nctId differs when moved)
    moved: dict[str, str]  # watched ID → the ID the registry now lists it under
    not_found: set[str]  # confirmed 404 this cycle
    failures: dict[str, ApiError]  # this cycle only; retried next cycle
    requests: int
    strategy: str  # skip | new-only | full | ids | updated-since | unavailable
    full_refetch: bool  # store last_full_refetch = now when true
    api_error: ApiError | None = None  # the API as a whole failed (its /version did not answer)

    @property
    def complete(self) -> bool:
        return not self.failures and self.api_error is None


class _Tracker:
    """Counts watched trials whose fate this cycle is settled, for `progress(done, total)`."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.done = 0
        self.total = total
        self._progress = progress

    def settle(self, count: int) -> None:
        self.done = min(self.total, self.done + count)
        if self._progress is not None:
            self._progress(self.done, self.total)


@dataclass
class _PollRun:
    """What one poll has learnt so far, per watched ID."""

    client: CtGovClient
    state: PollState
    tracker: _Tracker
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    moved: dict[str, str] = field(default_factory=dict)
    not_found: set[str] = field(default_factory=set)
    failures: dict[str, ApiError] = field(default_factory=dict)
    confirm: list[str] = field(default_factory=list)
    sink: Sink | None = None

    def changed(self, tracked: list[str]) -> tuple[str, list[str]]:
        """(strategy, IDs whose last-update date moved), found the cheaper of the two ways."""
        settings = self.client.settings
        probe_cost = -(-len(tracked) // settings.batch_size)
        since = since_day(self.state)
        if since is not None and probe_cost >= settings.strategy_threshold:
            try:
                updates = self.client.updated_since(since, max_pages=max(1, probe_cost - 1))
            except ApiError as exc:  # the probe may still work: it asks about other URLs
                log.warning("poll.updated_since_failed", error=str(exc), error_type=type(exc).__name__)
                updates = None
            if updates is not None:
                moved_on = [
                    i for i in tracked if updates.get(normalize_nct_id(i), self.state.known[i]) != self.state.known[i]
                ]
                self.tracker.settle(len(tracked) - len(moved_on))
                log.info(
                    "poll.strategy",
                    strategy="updated-since",
                    since=since.isoformat(),
                    registry_updates=len(updates),
                    probe_cost=probe_cost,
                    changed=len(moved_on),
                )
                return "updated-since", moved_on

        changed: list[str] = []

        def settle(batch: BatchResult) -> None:
            unchanged = 0
            for nct_id, item in batch.records.items():
                if item.moved:
                    self.moved[nct_id] = item.nct_id
                status = overall_status_of(item.record)
                moved_status = status is not None and self.state.statuses.get(nct_id, status) != status
                if item.last_update is None or item.last_update != self.state.known[nct_id] or moved_status:
                    if moved_status and item.last_update == self.state.known[nct_id]:
                        log.info("poll.status_without_posting", nct_id=nct_id, status=status)
                    changed.append(nct_id)
                else:
                    unchanged += 1
            self.tracker.settle(unchanged + len(batch.errors))

        probe = self.client.fetch_studies(tracked, fields=PROBE_FIELDS, on_batch=settle)
        self.failures.update(probe.errors)
        self.confirm += sorted(probe.missing)
        log.info(
            "poll.strategy", strategy="ids", probe_cost=probe_cost, changed=len(changed), missing=len(probe.missing)
        )
        return "ids", changed

    def fetch(self, ids: list[str]) -> None:
        """Full records, 1,000 a page at most, taken one at a time as they are read (`stream.py`);
        left-out IDs go to `confirm_missing`."""

        def take(batch: BatchResult) -> None:
            for nct_id, item in batch.records.items():
                self._found(nct_id, item)
            self.failures.update(batch.errors)
            self.confirm += sorted(batch.missing)
            self.tracker.settle(len(batch.records) + len(batch.errors))
            batch.records.clear()

        stream_studies(self.client, ids, take)

    def confirm_missing(self) -> None:
        """One GET per ID a batch left out: 301 → moved (and its record), 404 → not found."""
        for nct_id in self.confirm:
            log.info("poll.missing", nct_id=nct_id, reason="left out of a batch; asking for it alone")
            try:
                item = self.client.fetch_study(nct_id)
            except StudyNotFound:
                self.not_found.add(nct_id)
                log.warning("poll.not_found", nct_id=nct_id)
            except ApiError as exc:
                self.failures[nct_id] = exc
            else:
                self._found(nct_id, item)
            self.tracker.settle(1)

    def _found(self, nct_id: str, item: Fetched) -> None:
        if self.sink is not None:
            self.sink(nct_id, item.record)
        else:
            self.records[nct_id] = item.record
        if item.moved:
            self.moved[nct_id] = item.nct_id
            log.info("poll.moved", nct_id=nct_id, canonical_id=item.nct_id)


def poll(
    client: CtGovClient,
    nct_ids: Sequence[str],
    state: PollState,
    *,
    now: datetime,
    progress: Progress | None = None,
    sink: Sink | None = None,
) -> PollResult:
    """Poll the registry once for `nct_ids`; never raises ApiError (see `PollResult`).

    With `sink`, each full record goes to `sink(watched_id, record)` as its batch arrives instead of
    into `PollResult.records`, so a first sync of thousands of trials need not fit in memory at once.
    """
    start = client.requests_made
    ids = list(dict.fromkeys(nct_ids))
    full = (
        state.force_full
        or state.last_full_refetch is None
        or utc(now) - utc(state.last_full_refetch) >= client.settings.full_refetch_every
    )
    active = ids if full else [i for i in ids if i not in state.not_found]
    cycle = _PollRun(client, state, _Tracker(progress, len(active)), sink=sink)

    def result(strategy: str, data_timestamp: str | None, api_error: ApiError | None = None) -> PollResult:
        out = PollResult(
            data_timestamp=data_timestamp,
            skipped=strategy == "skip",
            records=cycle.records,
            moved=cycle.moved,
            not_found=cycle.not_found,
            failures=cycle.failures,
            requests=client.requests_made - start,
            strategy=strategy,
            full_refetch=full and api_error is None,
            api_error=api_error,
        )
        log.info(
            "poll.done",
            strategy=strategy,
            watched=len(ids),
            records=len(out.records),
            moved=len(out.moved),
            not_found=len(out.not_found),
            failures=len(out.failures),
            requests=out.requests,
            full_refetch=out.full_refetch,
            data_timestamp=data_timestamp,
        )
        return out

    try:
        version = client.version()
    except ApiError as exc:
        log.error("poll.api_unavailable", error=str(exc), error_type=type(exc).__name__)  # noqa: TRY400
        cycle.failures.update(dict.fromkeys(active, exc))
        return result("unavailable", state.data_timestamp, api_error=exc)

    never = [i for i in active if i not in state.known]
    unmoved = version.data_timestamp == state.data_timestamp
    if not full and unmoved and not never:
        cycle.tracker.settle(len(active))
        return result("skip", version.data_timestamp)

    if full:
        strategy, to_fetch = "full", list(active)
    elif unmoved:
        strategy, to_fetch = "new-only", never
    else:
        strategy, changed = cycle.changed([i for i in active if i in state.known])
        to_fetch = never + changed
    log.info("poll.plan", strategy=strategy, watched=len(ids), fetch=len(to_fetch), confirm=len(cycle.confirm))
    cycle.fetch(to_fetch)
    cycle.confirm_missing()

    for nct_id, error in cycle.failures.items():
        log.warning("poll.trial_failed", nct_id=nct_id, error=str(error), error_type=type(error).__name__)
    return result(strategy, state.data_timestamp if cycle.failures else version.data_timestamp)


def since_day(state: PollState) -> date | None:
    """The first day the registry-wide query must cover: the last complete poll's, minus a day."""
    if state.last_success is None or state.data_timestamp is None:
        return None
    days = [utc(state.last_success).date()]
    try:
        days.append(date.fromisoformat(state.data_timestamp[:10]))
    except ValueError:
        return None
    return min(days) - timedelta(days=1)

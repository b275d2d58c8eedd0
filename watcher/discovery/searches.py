"""Running the saved searches of a cycle, and the trials their `watch: true` matches add.

Each search keeps, in `meta` (`SEARCH`), a hash of its query and the registry's data
timestamp (GET /version, one request per cycle for all searches) at its last complete run. A
search whose hash is new (just added, or its query edited) runs whole as a baseline: its matches
are recorded and not announced (unless `announce_first` or `notify.baseline`). Later runs are
skipped while the data timestamp has not moved (no refresh: nothing can be new), and otherwise ask
only for studies first posted (or, `since: matching`, updated) since the day before the last run;
what the store has not seen is announced once. A search that fails is retried next cycle from
the same day, so nothing is skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import structlog

from watcher.config import Config
from watcher.config.searches import Search
from watcher.detect.nearby import within
from watcher.detect.newstudies import nct_of, new_matches, sentence, summary
from watcher.errors import TrialWatchError
from watcher.messages import NewMessage
from watcher.models import Trial
from watcher.notify.discovery import new_trial_messages
from watcher.registry.client import CtGovClient
from watcher.registry.search import run_search, search_params
from watcher.store import Store
from watcher.store.discovery import found_trials
from watcher.store.meta import SEARCH, SearchRun

log = structlog.get_logger("watcher.discovery")

OVERLAP = timedelta(days=1)  # a refresh may carry the previous day's postings: ask from the day before


@dataclass(slots=True)
class Discovered:
    """What the searches of one cycle did, and the trials they add to the poll."""

    trials: tuple[Trial, ...] = ()
    requests: int = 0
    new: dict[str, list[str]] = field(default_factory=dict)  # search → NCT IDs announced
    baseline: dict[str, int] = field(default_factory=dict)  # search → matches recorded silently
    failed: dict[str, str] = field(default_factory=dict)


def query_hash(search: Search) -> str:
    key = json.dumps([sorted(search.params().items()), search.since], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def discover(
    config: Config,
    store: Store,
    client: CtGovClient,
    *,
    partial: bool,
    now: Callable[[], datetime],
    write: Callable[[str], Any] = print,
) -> Discovered:
    """Run the searches and return the trials their `watch: true` matches add to the poll; both on
    complete cycles only (a partial one polls some listed trials early, or just the new ones)."""
    result = Discovered()
    if not partial and config.watchlist.searches:
        before = client.requests_made
        stamp = ""
        try:
            stamp = client.version().data_timestamp
        except TrialWatchError as exc:
            result.failed = {s.name: str(exc) for s in config.watchlist.searches}
            log.warning("search.failed", searches=len(result.failed), error=str(exc), error_type=type(exc).__name__)
        for search in config.watchlist.searches if stamp else ():
            try:
                _run_one(config, store, client, search, result, stamp=stamp, now=now, write=write)
            except TrialWatchError as exc:
                result.failed[search.name] = str(exc)
                log.warning("search.failed", search=search.name, error=str(exc), error_type=type(exc).__name__)
        result.requests = client.requests_made - before
    result.trials = () if partial else found_trials(config, store.discovery)  # matches ride with complete cycles
    return result


def _run_one(
    config: Config,
    store: Store,
    client: CtGovClient,
    search: Search,
    result: Discovered,
    *,
    stamp: str,
    now: Callable[[], datetime],
    write: Callable[[str], Any],
) -> None:
    """One search; `stamp` is the registry's data timestamp now: days are the registry's, not our clock's."""
    at = now()
    digest = query_hash(search)
    state = store.meta.get(SEARCH.of(search.name))
    first = state is None or state.hash != digest
    if state is not None and not first and state.stamp == stamp:
        log.info("search.unchanged", search=search.name, data_timestamp=stamp)  # no refresh since: nothing new
        return
    since = None if state is None or first else state.day - OVERLAP
    studies = run_search(client, search_params(search, since))
    known = store.discovery.matched(search.name)
    fresh = new_matches(studies, known)
    announce = not first or search.announce_first or config.settings.notify_baseline
    messages: list[NewMessage] = []
    if announce:
        for study in fresh:
            messages += _announce(config, search, study, at=at, write=write)
        result.new[search.name] = [str(nct_of(s)) for s in fresh]
    else:
        result.baseline[search.name] = len(fresh)
    everything = studies if first else fresh
    found = {str(nct_of(s)): summary(s)["title"] for s in everything if nct_of(s)}
    store.discovery.record_matches(
        search.name,
        found,
        at=at,
        baseline=first and not announce,
        messages=messages,
        keep_only=first and state is not None,
    )
    store.meta.set(SEARCH.of(search.name), SearchRun(digest, date.fromisoformat(stamp[:10]), stamp))
    log.info(
        "search.done",
        search=search.name,
        baseline=first,
        since=since.isoformat() if since else None,
        matched=len(studies),
        new=len(fresh),
        announced=len(fresh) if announce else 0,
    )


def _nearest(search: Search, study: Mapping[str, Any]) -> str | None:
    if search.near is None:
        return None
    close = within(study, search.near, statuses=None)
    if not close:
        return None
    km, site = close[0]
    return f"{km:.0f} km away: {site.facility}" + (f" ({site.place})" if site.place else "")


def _announce(
    config: Config, search: Search, study: Mapping[str, Any], *, at: datetime, write: Callable[[str], Any]
) -> list[NewMessage]:
    facts = summary(study)
    line = sentence(search.name, facts)
    nearest = _nearest(search, study)
    if not config.settings.channels:
        write(f"== {line}" + (f"\n   nearest site: {nearest}" if nearest else "") + "\n")
        return []
    return new_trial_messages(search, facts, line, config.settings, detected_at=at, nearest=nearest)


def preview(client: CtGovClient, search: Search) -> Iterable[dict[str, Any]]:
    """The current matches of a search, as facts for `trialwatch search preview`; nothing is saved."""
    for study in run_search(client, search_params(search, None)):
        facts = summary(study)
        facts["nearest"] = _nearest(search, study)
        yield facts

"""ClinicalTrials.gov's numbers of the two versions a change set compares, for the link its messages end with.

API v2 records carry no version number; the record history does (`watcher.registry.record_history`).
For a changed trial whose message to some channel summarises a list ("Sites: 5 added: …; …and 33
more", `notify.formats.bulk.summarises`), and so ends with a link to the full list, one request for
the history's index finds the new record's number by content (the index carries the newest version,
so usually nothing more is fetched); the old one's number is the stored version's when known (kept
with each version from then on), else found the same way (one more request, usually). With both, messages link to
ClinicalTrials.gov's comparison of the two versions instead of the whole record history. Only
those: a request per changed trial would cost a day of 1,000 changed trials 1,000 requests.

The requests count against `backfill.max_gap_requests` per cycle; `backfill.compare_links: false`
turns the lookup off. A failure costs the link only: the message falls back to the record history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from watcher.config import Config
from watcher.errors import ApiError, BackfillError
from watcher.messages import CtgovVersions
from watcher.models import Snapshot
from watcher.registry.record_history import RecordHistory

log = structlog.get_logger("watcher.cycle")


@dataclass(frozen=True, slots=True)
class Numbers:
    """What the lookup found: the pair for the payload, the new version's own number (stored with it),
    and the requests it spent."""

    versions: CtgovVersions | None = None
    new: int | None = None
    requests: int = 0


def ctgov_numbers(
    config: Config, history: Callable[[], RecordHistory], latest: Snapshot, record: Mapping[str, Any], *, budget: int
) -> Numbers:
    """The numbers of `latest` (stored) and `record` (just fetched) in the trial's record history;
    `history` gives the trial's reader (one per trial, so an index another step read is not asked again)."""
    if not config.settings.backfill.compare_links or budget < 1:
        return Numbers()
    nct_id = latest.nct_id
    try:
        reader = history()
    except BackfillError as exc:
        log.info("compare.unavailable", nct_id=nct_id, error=str(exc))
        return Numbers()
    spent = reader.requests
    numbers = _lookup(reader, latest, record, budget=budget)
    return replace(numbers, requests=reader.requests - spent)


def _lookup(history: RecordHistory, latest: Snapshot, record: Mapping[str, Any], *, budget: int) -> Numbers:
    nct_id = latest.nct_id
    try:
        entries = history.index(nct_id)
        own = history.locate(nct_id, record, entries)
        old = latest.ctgov_version
        if old is None and own is not None and budget > 1:
            earlier = [e for e in entries if e.version < own.version]
            found = history.locate(nct_id, latest.record, earlier)
            old = found.version if found is not None else None
    except ApiError as exc:
        log.info("compare.unavailable", nct_id=nct_id, error=str(exc))
        return Numbers()
    if own is None:
        return Numbers()
    pair = (old, own.version) if old is not None and old < own.version else None
    return Numbers(pair, own.version)

"""Partial records held back: no false "removed" alerts from an answer cut short.

ClinicalTrials.gov sometimes answers with a record lacking modules the stored version has (a
truncated page, a half-refreshed index). Diffed as it is, it would tell every user that sections
of the trial were removed — the one kind of noise that makes people mute TrialWatch. So a fetched
record that lacks what the stored version has (`watcher.registry.completeness`) is fetched again
alone; if that is partial too, the record history settles it with one request (the version index,
which carries the newest posted version): when a version was posted after the stored one and it lacks
the same parts, the sponsor really removed them and the record is diffed at once; otherwise the answer
is partial and held back (`Suspect`): not diffed, reported once, and remembered in `meta` (`SUSPECT`).
When the history cannot be read, the same partial record coming back in `SUSPECT_BELIEVE_AFTER`
cycles is believed: then it is a real edit after all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from watcher.cycle.alerts import Alerts
from watcher.detect.record import content_hash, submit_date_of
from watcher.errors import TrialWatchError
from watcher.models import Snapshot, Trial
from watcher.registry.client import CtGovClient
from watcher.registry.completeness import missing_parts
from watcher.store.meta import SUSPECT, SuspectRecord

log = structlog.get_logger("watcher.cycle")

SUSPECT_BELIEVE_AFTER = 3
"""The same partial record in this many cycles is a real edit after all."""


class Suspect(Exception):
    """A record still partial after a re-fetch alone: held back, not diffed."""


Newest = Callable[[str], tuple[Any, Mapping[str, Any] | None]]
"""The newest posted version of a study (entry with `date`, record): `RecordHistory.newest`."""


def removal_posted(newest: Newest | None, nct_id: str, stored: Mapping[str, Any]) -> bool | None:
    """Whether the record history shows the parts really removed: a version posted after the stored
    one lacks them too (True); none was posted, or the posted one has them (False: a partial answer);
    None when the history cannot tell (not configured, unreachable, no record in the answer)."""
    if newest is None:
        return None
    try:
        entry, record = newest(nct_id)
    except TrialWatchError as exc:
        log.warning("trial.partial_history_failed", nct_id=nct_id, error=str(exc))
        return None
    stored_date = submit_date_of(stored)
    if stored_date is not None and str(entry.date) <= stored_date:
        return False
    return None if record is None else bool(missing_parts(stored, record))


def whole_record(
    alerts: Alerts,
    client: CtGovClient,
    trial: Trial,
    latest: Snapshot,
    record: Mapping[str, Any],
    *,
    held_back: bool | None = None,
    newest: Newest | None = None,
) -> Mapping[str, Any]:
    """`record`, or its re-fetch alone when it lacks what the stored version had; that re-fetch too
    when the record history shows the removal posted; else raises Suspect (the first time with an
    alert, written with the record's memory). `held_back`: whether the trial has a partial record
    held back, when the caller asked for its page."""
    key = SUSPECT.of(trial.nct_id)
    store = alerts.store
    gaps = missing_parts(latest.record, record)
    if not gaps:
        if held_back if held_back is not None else store.meta.get(key) is not None:
            store.meta.set(key, None)
        return record
    log.warning("trial.partial", nct_id=trial.nct_id, missing=gaps, action="re-fetching it alone")
    again = client.fetch_study(trial.nct_id).record
    gaps = missing_parts(latest.record, again)
    if not gaps:
        log.info("trial.partial_recovered", nct_id=trial.nct_id)
        return again
    posted = removal_posted(newest, trial.nct_id, latest.record)
    if posted:
        log.warning("trial.partial_posted", nct_id=trial.nct_id, missing=gaps, action="a posted edit: diffed now")
        if store.meta.get(key) is not None:
            store.meta.set(key, None)
        return again
    digest = content_hash(again)
    with alerts.raising() as raised:
        held = raised.tx.meta.get(key)
        seen = held.seen + 1 if held is not None and held.hash == digest else 1
        if posted is None and seen >= SUSPECT_BELIEVE_AFTER:
            log.warning("trial.partial_believed", nct_id=trial.nct_id, missing=gaps, cycles=seen)
            raised.tx.meta.set(key, None)
            return again
        raised.tx.meta.set(key, SuspectRecord(digest, seen, gaps))
        log.warning("trial.suspect", nct_id=trial.nct_id, missing=gaps, cycles=seen)
        if held is None:
            raised.alert(
                f"{trial.display}: partial record held back",
                f"ClinicalTrials.gov answered {trial.display} twice with a record lacking what the stored "
                f"version has ({'; '.join(gaps)}), and its record history shows no such version posted. "
                'It is not compared, so no false "removed" alerts; it is asked for again whenever it is '
                "next fetched.",
                nct_id=trial.nct_id,
            )
    raise Suspect("; ".join(gaps))

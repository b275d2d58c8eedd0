"""Partial records held back: no false "removed" alerts from an answer cut short.

ClinicalTrials.gov sometimes answers with a record lacking modules the stored version has (a
truncated page, a half-refreshed index). Diffed as it is, it would tell every user that sections
of the trial were removed — the one kind of noise that makes people mute TrialWatch. So a fetched
record that lacks what the stored version has (`watcher.registry.completeness`) is fetched again
alone; if that is partial too it is held back (`Suspect`): not diffed, reported once, and remembered
in `meta` (`SUSPECT`). Only when the same partial record comes back in `SUSPECT_BELIEVE_AFTER`
cycles is it believed: then it is a real edit (a module the sponsor removed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from watcher.cycle.alerts import Alerts
from watcher.detect.record import content_hash
from watcher.models import Snapshot, Trial
from watcher.registry.client import CtGovClient
from watcher.registry.completeness import missing_parts
from watcher.store.meta import SUSPECT, SuspectRecord

log = structlog.get_logger("watcher.cycle")

SUSPECT_BELIEVE_AFTER = 3
"""The same partial record in this many cycles is a real edit after all."""


class Suspect(Exception):
    """A record still partial after a re-fetch alone: held back, not diffed."""


def whole_record(
    alerts: Alerts,
    client: CtGovClient,
    trial: Trial,
    latest: Snapshot,
    record: Mapping[str, Any],
    *,
    held_back: bool | None = None,
) -> Mapping[str, Any]:
    """`record`, or its re-fetch alone when it lacks what the stored version had; raises Suspect
    when that is partial too (the first time with an alert, written with the record's memory).
    `held_back`: whether the trial has a partial record held back, when the caller asked for its page."""
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
    digest = content_hash(again)
    with alerts.raising() as raised:
        held = raised.tx.meta.get(key)
        seen = held.seen + 1 if held is not None and held.hash == digest else 1
        if seen >= SUSPECT_BELIEVE_AFTER:
            log.warning("trial.partial_believed", nct_id=trial.nct_id, missing=gaps, cycles=seen)
            raised.tx.meta.set(key, None)
            return again
        raised.tx.meta.set(key, SuspectRecord(digest, seen, gaps))
        log.warning("trial.suspect", nct_id=trial.nct_id, missing=gaps, cycles=seen)
        if held is None:
            raised.alert(
                f"{trial.display}: partial record held back",
                f"ClinicalTrials.gov answered {trial.display} twice with a record lacking what the stored "
                f'version has ({"; ".join(gaps)}). It is not compared, so no false "removed" alerts; '
                f"it is asked for again whenever it is next fetched, and believed if it comes back the "
                f"same {SUSPECT_BELIEVE_AFTER} times.",
                nct_id=trial.nct_id,
            )
    raise Suspect("; ".join(gaps))

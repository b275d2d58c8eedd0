"""Posted results in words: built from the real records that carry a `resultsSection`.

Each test derives a before/after from a real record (results removed = not yet posted; one value
edited; tables reordered) and checks what a reader is told — never a digest.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.shared import STUDY_IDS, load_study
from watcher.detect import SeverityRules, changes_between
from watcher.models import Change, Trial
from watcher.notify.payloads import changes_payload, render_text

WITH_RESULTS = "NCT00763412"  # 9 outcome measures (3 primary), participant flow, adverse events


def unposted(record: dict[str, Any]) -> dict[str, Any]:
    """The same record before its results were posted."""
    before = copy.deepcopy(record)
    del before["resultsSection"]
    before["hasResults"] = False
    return before


def by_field(changes: list[Change]) -> dict[str, Change]:
    return {c.field: c for c in changes}


def test_results_posted_name_each_outcome_with_its_values() -> None:
    record = load_study(WITH_RESULTS)
    changes = by_field(changes_between(unposted(record), record))
    assert changes["results.hasResults"].severity == "critical"
    bmi = changes["results.outcomes.primary.BMI"]
    assert (bmi.change, bmi.severity) == ("added", "major")
    assert bmi.new == (
        "mean, Kg/m^2: 1 Placebo 19.63 (range 15.56–22.64), n=4; "
        "2. Repaglinide 21.19 (range 20.78–21.8), n=4 — at 2 year/end of study"
    )
    measures = record["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]
    outcomes = [f for f in changes if f.startswith("results.outcomes.")]
    assert len(outcomes) == len(measures) == 9
    assert changes["results.adverseEvents.serious"].new == (
        "0 of 16 participants had serious adverse events (Placebo 0/8, Repaglinide 0/8)"
    )
    assert changes["results.participantFlow.totals"].new.startswith("started 16 (Placebo 8, 2. Repaglinide 8)")
    assert not [c for c in changes.values() if "blake2b" in str(c.old) + str(c.new)]


def test_a_results_posted_message_reads_without_digests() -> None:
    record = load_study(WITH_RESULTS)
    changes = changes_between(unposted(record), record)
    payload = changes_payload(
        Trial(WITH_RESULTS), "Repaglinide in CF", changes, version=2, detected_at=datetime(2026, 11, 30, tzinfo=UTC)
    )
    _, body = render_text(payload)
    assert "blake2b" not in body
    assert "results.outcomes.primary.BMI: (none) → mean, Kg/m^2: 1 Placebo 19.63" in body


@pytest.mark.parametrize(
    "nct_id",
    [
        n
        for n in STUDY_IDS
        if n in {"NCT00763412", "NCT02513394", "NCT02856893", "NCT03064438", "NCT04280705", "NCT04431453"}
    ],
)
def test_every_real_results_section_is_worded_whole(nct_id: str) -> None:
    record = load_study(nct_id)
    changes = changes_between(unposted(record), record)
    texts = [str(c.old) + str(c.new) for c in changes]
    assert not [t for t in texts if "blake2b" in t], nct_id
    measures = record["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]
    assert len([c for c in changes if c.field.startswith("results.outcomes.")]) == len(measures)
    assert all(c.change == "added" for c in changes if c.field.startswith("results.outcomes."))


def test_one_value_edited_shows_the_measure_before_and_after() -> None:
    record = load_study(WITH_RESULTS)
    edited = copy.deepcopy(record)
    measurement = edited["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][0]["classes"][0]["categories"][
        0
    ]["measurements"][0]
    measurement["value"] = "19.70"
    [change] = changes_between(record, edited)
    assert (change.field, change.change, change.severity) == ("results.outcomes.primary.BMI", "changed", "major")
    assert "1 Placebo 19.63 (" in str(change.old) and "1 Placebo 19.70 (" in str(change.new)
    assert change.event is not None and change.event.kind == "results_updated"


def test_reordered_results_tables_are_no_change() -> None:
    record = load_study(WITH_RESULTS)
    shuffled = copy.deepcopy(record)
    results = shuffled["resultsSection"]
    results["outcomeMeasuresModule"]["outcomeMeasures"].reverse()
    for measure in results["outcomeMeasuresModule"]["outcomeMeasures"]:
        measure["groups"].reverse()
        for denom in measure.get("denoms", []):
            denom["counts"].reverse()
    results["adverseEventsModule"]["eventGroups"].reverse()
    results["participantFlowModule"]["periods"][0]["milestones"].reverse()
    assert changes_between(record, shuffled) == []


def test_what_no_summary_covers_is_named_by_the_value_that_changed() -> None:
    record = load_study(WITH_RESULTS)
    edited = copy.deepcopy(record)
    edited["resultsSection"]["moreInfoModule"]["pointOfContact"]["phone"] = "555-0100"
    edited["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][0]["groups"][0]["description"] = "Placebo."
    changes = by_field(changes_between(record, edited))
    assert changes["results.moreInfo.contact.phone"].old == "314-286-1138"
    assert changes["results.moreInfo.contact.phone"].new == "555-0100"
    reworded = changes["results.outcomes.primary.BMI.groups.OG000.description"]
    assert (reworded.new, reworded.severity) == ("Placebo.", "minor")
    assert len(changes) == 2


def test_severity_overrides_apply_to_results_changes() -> None:
    record = load_study(WITH_RESULTS)
    rules = SeverityRules.from_mapping({"results.outcomes.secondary.*": "critical"})
    changes = by_field(changes_between(unposted(record), record, rules))
    assert changes["results.outcomes.secondary.Tanner Stage"].severity == "critical"
    assert changes["results.outcomes.primary.BMI"].severity == "major"

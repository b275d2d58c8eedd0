"""classify: the severities and events of the case table, and the user's overrides."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.support.diff_cases import CASES, case_changes
from tests.support.studies import edit, load
from watcher.detect.diff import diff_fields
from watcher.detect.events import parse_partial_date
from watcher.detect.fields import extract_fields
from watcher.detect.meaning import SeverityRules, classify, default_severity
from watcher.models import Change

MEANING_CASES = [c for c in CASES if any("severity" in e or "event" in e for e in c["expect"])]


@pytest.mark.parametrize("case", MEANING_CASES, ids=[c["name"] for c in MEANING_CASES])
def test_case_table_meaning(case: dict[str, Any]) -> None:
    changes, old, new = case_changes(case)
    classified = classify(changes, old, new)
    assert [(c.field, c.change) for c in classified] == [(c.field, c.change) for c in changes]
    for change, expected in zip(classified, case["expect"], strict=True):
        if "severity" in expected:
            assert change.severity == expected["severity"], change.field
        if "event" in expected:
            assert change.event is not None, change.field
            assert change.event.kind == expected["event"]
            assert change.event.summary or change.event.kind == "site_edited"  # its line names the site
            for key, value in expected.get("data", {}).items():
                assert change.event.data[key] == value, (change.field, key)
        elif "severity" in expected:
            assert change.event is None, change.field


def test_status_summary_reads_like_a_sentence() -> None:
    case = next(c for c in CASES if c["name"].startswith("status transition"))
    changes, old, new = case_changes(case)
    event = classify(changes, old, new)[0].event
    assert event is not None
    assert event.summary == "Status changed from RECRUITING to TERMINATED: Business decision"


def test_baseline_gets_severities_but_no_events() -> None:
    fields = extract_fields(load("NCT04728893"))
    classified = classify(diff_fields(None, fields), None, fields)
    assert all(c.event is None for c in classified)
    by_field = {c.field: c.severity for c in classified}
    assert by_field["outcomes.primary"] == "critical"
    assert by_field["status.lastUpdatePostDate"] == "minor"


def test_user_overrides_win_first_match_first() -> None:
    record = load("NCT04728893")
    changed = edit(
        record,
        [
            {"op": "delete", "path": "protocolSection.contactsLocationsModule.locations.2"},
            {"op": "set", "path": "protocolSection.statusModule.overallStatus", "value": "TERMINATED"},
            {"op": "set", "path": "protocolSection.designModule.enrollmentInfo.count", "value": 460},
        ],
    )
    old, new = extract_fields(record), extract_fields(changed)
    rules = SeverityRules.from_mapping({"locations.*": "minor", "design.*": "critical", "*": "major"})
    classified = {c.field.split(".")[0]: c for c in classify(diff_fields(old, new), old, new, rules)}
    assert classified["locations"].severity == "minor"
    assert classified["locations"].event is not None
    assert classified["design"].severity == "critical"
    assert classified["status"].severity == "major"


def test_severity_rules_reject_unknown_severities() -> None:
    with pytest.raises(ValueError, match=r"locations\.\*: 'urgent'.*x: 3"):
        SeverityRules.from_mapping({"locations.*": "urgent", "status.*": "major", "x": 3})


def test_default_severity_table() -> None:
    assert default_severity("eligibility.criteria.inclusion.3") == "major"
    assert default_severity("sponsor.collaborators.NIH") == "major"
    assert default_severity("identification.acronym") == "minor"
    assert default_severity("derived.versionHolder") == "minor"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025", date(2025, 1, 1)),
        ("2025-09", date(2025, 9, 1)),
        ("2025-09-17", date(2025, 9, 17)),
        ("soon", None),
        (None, None),
    ],
)
def test_partial_dates(text: str | None, expected: date | None) -> None:
    assert parse_partial_date(text) == expected


def test_date_added_is_not_a_slip() -> None:
    change = Change("status.startDate", "added", None, "2025-01")
    classified = classify([change], {}, {"status.startDate": "2025-01"})
    assert classified[0].event is None
    assert classified[0].severity == "major"


def test_site_keys_with_dots_are_split_right() -> None:
    path = "protocolSection.contactsLocationsModule.locations.0"
    rename = {"op": "set", "path": f"{path}.facility", "value": "St. Vincent's Hospital"}
    record = edit(load("NCT04728893"), [rename])
    changed = edit(record, [{"op": "set", "path": f"{path}.status", "value": "SUSPENDED"}])
    old, new = extract_fields(record), extract_fields(changed)
    [change] = classify(diff_fields(old, new), old, new)
    assert change.field == "locations.st. vincent's hospital|springdale|arkansas|united states.status"
    assert change.event is not None
    assert change.event.kind == "site_status"
    site = "st. vincent's hospital|springdale|arkansas|united states"
    assert change.event.data == {
        "site": site,
        "from": "RECRUITING",
        "to": "SUSPENDED",
        "facility": "St. Vincent's Hospital",
        "city": "Springdale",
        "state": "Arkansas",
        "zip": "72762",
        "country": "United States",
    }
    assert change.event.summary == (
        "Site St. Vincent's Hospital, Springdale, Arkansas, United States: RECRUITING → SUSPENDED"
    )


def test_collaborator_with_dots_in_its_name() -> None:
    path = "protocolSection.sponsorCollaboratorsModule.collaborators.0.class"
    record = load("NCT02513394")
    changed = edit(record, [{"op": "set", "path": path, "value": "NIH"}])
    old, new = extract_fields(record), extract_fields(changed)
    [change] = classify(diff_fields(old, new), old, new)
    assert change.field.endswith(".class")
    assert change.event is not None
    assert change.event.kind == "sponsor_change"
    assert change.severity == "major"


def test_results_bookkeeping_in_the_status_module_is_not_a_results_update() -> None:
    old = {"results.firstSubmitDate": "2020-01-02", "results.adverseEvents": {"a": 1}}
    new = {"results.firstSubmitDate": "2020-01-03", "results.adverseEvents": {"a": 2}}
    classified = classify(diff_fields(old, new), old, new)
    assert [(c.field, c.event.kind if c.event else None) for c in classified] == [
        ("results.firstSubmitDate", None),
        ("results.adverseEvents", "results_updated"),
    ]


def test_the_priority_table_puts_clinical_events_before_rewordings() -> None:
    from watcher.detect.priority import PRIORITY, priority

    targets = [target for target, _, _ in PRIORITY]
    assert targets.index("field:status.overallStatus") == 0
    reworded = targets.index("event:primary_outcome_reworded")
    for first in (
        "field:results.hasResults",
        "event:enrollment_change",
        "event:date_slip",
        "field:eligibility.*",
        "event:site_status",
        "event:site_added",
    ):
        assert targets.index(first) < reworded
    timeframe = {
        "field": "outcomes.primary.ORR.timeFrame",
        "severity": "critical",
        "event": {"kind": "primary_outcome_reworded", "data": {"part": "timeFrame"}},
    }
    opening = {
        "field": "locations.x|y||z.status",
        "severity": "major",
        "event": {"kind": "site_status", "data": {"from": "NOT_YET_RECRUITING", "to": "RECRUITING"}},
    }
    closing = {
        "field": "locations.x|y||z.status",
        "severity": "major",
        "event": {"kind": "site_status", "data": {"from": "RECRUITING", "to": "COMPLETED"}},
    }
    rise = {
        "field": "design.enrollmentCount",
        "severity": "minor",
        "event": {"kind": "enrollment_change", "data": {"delta": 10}},
    }
    drop = {**rise, "event": {"kind": "enrollment_change", "data": {"delta": -10}}}
    assert priority(opening) < priority(closing) < priority(timeframe)
    assert priority(drop) < priority(rise)
    assert priority({"field": "something.unknown"}) == len(PRIORITY)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("2025-02", "2025-04-11", "slipped about 2 months later"),
        ("2026-07", "2028-07", "slipped about 2 years later"),
        ("2025-04", "2025-05-09", "slipped about 1 month later"),
        ("2026-01-14", "2026-01-29", "slipped 15 days later"),
        ("2026-07-31", "2026-07-30", "moved 1 day earlier"),
        ("2025", "2026-03", "slipped about 1 year later"),
    ],
)
def test_a_date_moves_by_what_its_precision_can_say(old: str, new: str, words: str) -> None:
    record = load("NCT04728893")
    path = "protocolSection.statusModule.startDateStruct.date"
    before = extract_fields(edit(record, [{"op": "set", "path": path, "value": old}]))
    after = extract_fields(edit(record, [{"op": "set", "path": path, "value": new}]))
    [change] = [c for c in classify(diff_fields(before, after), before, after) if c.field == "status.startDate"]
    assert change.event is not None
    assert change.event.summary == f"Start date {words} ({old} → {new})"

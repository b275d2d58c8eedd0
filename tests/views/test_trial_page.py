"""The trial page follows the seed report; values render on one short line.

The product's seed page (seed 000, read from ../shared by `tests.support.shared`) is the page a
mirror site shows for NCT06747156. A real record overwritten with that trial's data must
render to the seed page line for line; other real records must share its skeleton.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from tests.support.shared import seed_text
from tests.support.studies import edit, load
from watcher.detect.describe import change_line, format_pair, format_value, render_diff, word_diff
from watcher.detect.diff import diff_fields
from watcher.detect.fields import extract_fields
from watcher.models import Change
from watcher.views.trial_page import Baseline, render_trial_page

SEED = seed_text("000")
SEED_PAGE = SEED.removeprefix("---\n").split("\n---\n")[1].strip() + "\n"
"""The seed's page without its front matter and its mirror-site footer."""
TODAY = date(2026, 5, 20)
DAY = date(2026, 5, 12)
PS = "protocolSection."


def skeleton(text: str) -> list[str]:
    """Headings and fact labels, counts blanked: the shape a page must share with the seed."""
    shape = []
    for line in text.splitlines():
        if line.startswith("## "):
            shape.append(re.sub(r"\d+", "N", line))
        elif match := re.match(r"^- \*\*([^*]+):\*\* ", line):
            shape.append(match.group(1))
    return shape


def seed_change_lines() -> list[str]:
    return [line for line in SEED_PAGE.splitlines() if line.startswith("- `")]


CHANGE_LINE = re.compile(r"^- `[^`]+` — (added|removed|changed)(: .+)? _\(\d{4}-\d{2}-\d{2}\)_$")


def test_change_line_pattern_matches_the_seed() -> None:
    assert len(seed_change_lines()) == 18
    assert all(CHANGE_LINE.match(line) for line in seed_change_lines())


SEED_RECENT = "## Recent Field Changes (last 30 days)\n\n"


def seed_page_with_a_collapsed_baseline(fields: int) -> str:
    """The seed page with its 18 baseline lines collapsed to one (the baseline of 167
    fields listed as "added" buried the real changes)."""
    head, rest = SEED_PAGE.split(SEED_RECENT)
    tail = rest.split("\n\n", 1)[1] if "\n\n" in rest else ""
    return head + SEED_RECENT + f"- First recorded on 2026-05-12 with {fields} fields\n\n" + tail


def seed_record() -> dict[str, Any]:
    """A real record (NCT06863285) overwritten with the seed trial's data, as the API shapes it."""
    lines = SEED_PAGE.splitlines()
    frame = "from the first dose of study treatment to 30 days after the last dose of study treatment."
    measures = [
        "The incidence, severity, and nature of treatment-emergent adverse events (TEAE)s.",
        "The incidence, severity, and nature of serious TEAEs (TESAE)s .",
        "The incidence, severity, and nature of TEAEs leading to interruption or early termination of study treatment.",
    ]
    union = "Union Hospital, Tongji Medical College, Huazhong University of Science and Technology"
    sites = [
        {"facility": union, "status": "NOT_YET_RECRUITING", "city": "Wuhan", "state": "Hubei", "country": "China"},
        {
            "facility": "Nanjing Drum Tower Hospital",
            "status": "RECRUITING",
            "city": "Nanjing",
            "state": "Jiangsu",
            "country": "China",
        },
        {"facility": "Ruijin Hospital", "status": "RECRUITING", "city": "Shanghai", "country": "China"},
    ]
    intervention = {
        "type": "DRUG",
        "name": "ABO2203 Injection",
        "armGroupLabels": ["ABO2203"],
        "description": "Name of Active Ingredient: mRNA encoding CD19/CD3 T cell engager",
    }
    values: dict[str, Any] = {
        "identificationModule.nctId": "NCT06747156",
        "identificationModule.briefTitle": lines[0].removeprefix("# "),
        "identificationModule.officialTitle": lines[2].removeprefix("**Official Title:** "),
        "statusModule.overallStatus": "RECRUITING",
        "statusModule.startDateStruct": {"date": "2024-12-23", "type": "ACTUAL"},
        "statusModule.completionDateStruct": {"date": "2028-12", "type": "ESTIMATED"},
        "statusModule.lastUpdatePostDateStruct.date": "2026-03-24",
        "designModule.phases": ["EARLY_PHASE1"],
        "designModule.enrollmentInfo": {"count": 66, "type": "ESTIMATED"},
        "sponsorCollaboratorsModule.leadSponsor.name": "Ruijin Hospital",
        "sponsorCollaboratorsModule.collaborators": [
            {"name": "Abogen Life Sciences (Shanghai) Co., Ltd.", "class": "INDUSTRY"}
        ],
        "conditionsModule.conditions": ["Autoimmune Diseases"],
        "descriptionModule.briefSummary": SEED_PAGE.split("## Brief Summary\n\n", 1)[1].split("\n\n", 1)[0],
        "eligibilityModule.eligibilityCriteria": SEED_PAGE.split("```\n", 1)[1].split("\n```", 1)[0],
        "eligibilityModule.minimumAge": "18 Years",
        "armsInterventionsModule.armGroups": [
            {"label": "ABO2203", "type": "EXPERIMENTAL", "interventionNames": ["Drug: ABO2203 Injection"]}
        ],
        "armsInterventionsModule.interventions": [intervention],
        "outcomesModule.primaryOutcomes": [{"measure": m, "timeFrame": frame} for m in measures],
        "contactsLocationsModule.locations": sites,
    }
    return edit(load("NCT06863285"), [{"op": "set", "path": PS + k, "value": v} for k, v in values.items()])


def test_page_is_the_seed_page_for_the_seed_data() -> None:
    record = seed_record()
    baseline = {c.field: c for c in diff_fields(None, extract_fields(record))}
    seed_fields = [line.split("`")[1] for line in seed_change_lines()]
    assert set(seed_fields) <= set(baseline)
    text = render_trial_page(record, [], days=30, today=DAY, baseline=Baseline(DAY, len(baseline)))
    body, footer = text.split("\n---\n")
    assert body.rstrip("\n") == seed_page_with_a_collapsed_baseline(len(baseline)).rstrip("\n")
    assert footer == "\n*Source data (authoritative): https://clinicaltrials.gov/study/NCT06747156*\n"


def test_front_matter_is_the_seeds() -> None:
    seen = datetime(2026, 5, 12, 7, 8, 52, 385000, tzinfo=UTC)
    text = render_trial_page(seed_record(), [], days=30, today=DAY, front_matter=True, last_seen=seen)
    seed = SEED.split("\n---\n", 1)[0] + "\n---\n"
    expected = "".join(line + "\n" for line in seed.splitlines() if not line.startswith("canonical_url:"))
    assert text.startswith(expected)
    assert text[len(expected) :].startswith("# A Study of mRNA Encoding CD19/CD3 T Cell Engager")
    assert not render_trial_page(seed_record(), [], days=30, today=DAY).startswith("---")


def test_other_real_records_share_the_seed_skeleton() -> None:
    collaborator = {"name": "Aga Khan University", "class": "OTHER"}
    path = PS + "sponsorCollaboratorsModule.collaborators"
    record = edit(load("NCT06863285"), [{"op": "set", "path": path, "value": [collaborator]}])
    fields = len(diff_fields(None, extract_fields(record)))
    site = {"facility": "Ruijin Hospital", "city": "Shanghai", "country": "China", "status": "RECRUITING"}
    changes = [
        (DAY, Change("status.overallStatus", "changed", "NOT_YET_RECRUITING", "RECRUITING")),
        (DAY, Change("locations.ruijin hospital|shanghai||china", "added", None, site)),
    ]
    text = render_trial_page(record, changes, days=30, today=TODAY, baseline=Baseline(DAY, fields))
    assert skeleton(text) == skeleton(SEED_PAGE)
    lines = text.splitlines()
    assert lines[4] == "**NCT ID:** [NCT06863285](https://clinicaltrials.gov/study/NCT06863285)"
    recent = text.split("## Recent Field Changes (last 30 days)\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert recent == [
        "- `status.overallStatus` — changed: NOT_YET_RECRUITING → RECRUITING _(2026-05-12)_",
        "- `locations.ruijin hospital|shanghai||china` — added: Ruijin Hospital, Shanghai, China (RECRUITING)"
        " _(2026-05-12)_",
        f"- First recorded on 2026-05-12 with {fields} fields",
    ]
    assert all(CHANGE_LINE.match(line) for line in recent[:-1])


def test_missing_parts_are_left_out() -> None:
    text = render_trial_page(load("NCT06610240"), [], days=30, today=TODAY)
    assert "## Arms" not in text
    assert "**Phase:**" not in text
    assert "- **Maximum age:**" not in text


def test_site_status_and_the_window() -> None:
    record = load("NCT04728893")
    changes = [
        (date(2026, 5, 19), Change("status.overallStatus", "changed", "RECRUITING", "SUSPENDED")),
        (date(2026, 4, 1), Change("design.enrollmentCount", "changed", 450, 300)),
    ]
    text = render_trial_page(record, changes, days=7, today=TODAY)
    assert "## Recent Field Changes (last 7 days)" in text
    assert "- `status.overallStatus` — changed: RECRUITING → SUSPENDED _(2026-05-19)_" in text
    assert "design.enrollmentCount" not in text
    site = "Highlands Oncology Group ( Site 2728), Springdale, Arkansas, United States"
    assert f"- {site} — _RECRUITING_" in text
    assert "## Locations (106)" in text
    assert "_No field changes._" in render_trial_page(record, changes, days=7, today=date(2027, 1, 1))


def test_format_value() -> None:
    assert format_value(None) == "(none)"
    assert format_value(True) == "yes"
    assert format_value(["PHASE2", "PHASE3"]) == "PHASE2, PHASE3"
    assert format_value("a\n\n b") == "a b"
    site = {"facility": "Ruijin Hospital", "city": "Shanghai", "country": "China", "status": "RECRUITING"}
    assert format_value(site) == "Ruijin Hospital, Shanghai, China (RECRUITING)"
    assert format_value({"measure": "ORR", "timeFrame": "1 year"}) == "ORR (1 year)"
    assert format_value({"ORR": {"measure": "ORR"}, "OS": {"measure": "OS"}}) == "2 items: ORR; OS"
    long = format_value("word " * 100, width=40)
    assert len(long) <= 40
    assert long.endswith("…")


def test_format_pair_keeps_the_difference_visible() -> None:
    prefix = "Has an Eastern Cooperative Oncology Group (ECOG) performance status of "
    texts = (prefix + "0 to 2 within 7 days prior to allocation", prefix + "0 to 1 within 7 days")
    old, new = format_pair(*texts, width=50)
    assert old != new
    assert "0 to 2" in old
    assert "0 to 1" in new
    assert old.startswith("…")
    assert len(old) <= 50
    assert format_pair("RECRUITING", "SUSPENDED") == ("RECRUITING", "SUSPENDED")
    assert format_pair(None, ["PHASE2"]) == ("(none)", "PHASE2")


def test_word_diff_marks_words_and_elides_unchanged_runs() -> None:
    old = "Part 1 consists of three arms " + "with many unchanged words " * 10 + "and a closing note."
    new = old.replace("three", "four").replace("closing", "final")
    segments = word_diff(old, new)
    assert segments is not None
    line = render_diff(segments)
    assert "[-three-] {+four+} arms" in line
    assert "[-closing-] {+final+} note." in line
    assert " … " in line
    assert len(line) < len(old)
    assert word_diff("short", "shorter") is None
    assert word_diff(old, old.replace(" ", "\n  ")) == []
    assert word_diff({"measure": old}, {"measure": new}) is None


def test_change_line_never_shows_two_sides_that_read_the_same() -> None:
    change = {"field": "description.briefSummary", "change": "changed", "old": "A  b", "new": "A b"}
    assert change_line(change) == "description.briefSummary: only spacing or line breaks changed"
    long = {"field": "f", "change": "changed", "old": ["x" * 130, "y"], "new": ["x" * 130, "y", "z"]}
    assert change_line(long).endswith(", [-y-] {+y, z+}")

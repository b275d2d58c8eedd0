"""Matching list items between versions (`detect.match`): edits in place are changes, names are stable."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.studies import edit, load
from watcher.detect import changes_between
from watcher.detect.keys import location_key
from watcher.detect.match import match_items
from watcher.models import Change

SITES = "protocolSection.contactsLocationsModule.locations"
STUDY = "NCT04728893"  # 106 sites with zip codes and geoPoints


def site(record: dict[str, Any], index: int = 0) -> dict[str, Any]:
    item: dict[str, Any] = record["protocolSection"]["contactsLocationsModule"]["locations"][index]
    return item


def changed(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    return [
        (c.field, c.change, c.old, c.new)
        for c in changes_between(old, new)
        if c.field.startswith("locations.") or c.field.startswith("outcomes.")
    ]


def test_a_second_site_of_the_same_name_leaves_the_first_one_alone() -> None:
    record = load(STUDY)
    first = site(record)
    generic = {"facility": "Research Site", "city": "Haifa", "state": None, "country": "Israel"}
    old = edit(record, [{"op": "set", "path": f"{SITES}.0", "value": {**first, **generic, "zip": "3436212"}}])
    newcomer = {**first, **generic, "zip": "3109601", "status": "NOT_YET_RECRUITING"}
    new = edit(old, [{"op": "append", "path": SITES, "value": newcomer}])
    found = changed(old, new)
    assert [(f, c) for f, c, _, _ in found] == [("locations.research site|haifa||3109601|israel", "added")]


def test_the_old_name_is_kept_when_the_matched_site_also_changed() -> None:
    record = load(STUDY)
    generic = {"facility": "Research Site", "city": "Haifa", "state": None, "country": "Israel"}
    old = edit(record, [{"op": "set", "path": f"{SITES}.0", "value": {**site(record), **generic, "zip": "1"}}])
    new = edit(
        old,
        [
            {"op": "set", "path": f"{SITES}.0.status", "value": "COMPLETED"},
            {"op": "append", "path": SITES, "value": {**site(old), "zip": "2"}},
        ],
    )
    assert sorted((f, c) for f, c, _, _ in changed(old, new)) == [
        ("locations.research site|haifa||2|israel", "added"),
        ("locations.research site|haifa||israel.status", "changed"),
    ]


def test_a_site_edited_in_place_is_changed_not_removed_and_added() -> None:
    old = load(STUDY)
    key = "locations." + location_key(site(old))
    new = edit(
        old,
        [
            {"op": "set", "path": f"{SITES}.0.facility", "value": "Highlands Oncology Group (Site 2728)"},
            {"op": "set", "path": f"{SITES}.0.status", "value": "NOT_YET_RECRUITING"},
            {"op": "delete", "path": f"{SITES}.1.state"},  # filled in again: see below
        ],
    )
    found = changed(old, new)
    assert (
        f"{key}.facility",
        "changed",
        "Highlands Oncology Group ( Site 2728)",
        "Highlands Oncology Group (Site 2728)",
    ) in found
    assert (f"{key}.status", "changed", "RECRUITING", "NOT_YET_RECRUITING") in found
    assert not [f for f, c, _, _ in found if c in ("added", "removed") and f.count(".") <= 1]
    back = changed(new, old)
    assert [c for _, c, _, _ in back if c != "changed"] == ["added"]  # the state, under the old name
    assert all(f.startswith("locations.") and "|" in f for f, _, _, _ in back)


def test_re_encoded_facility_at_the_same_geopoint_is_the_same_site() -> None:
    old = load(STUDY)
    renamed = {**site(old), "facility": 'H\u0103"pital Highlands Oncology Group ( Site 2728)'}
    a = {**site(old), "facility": "Hôpital Highlands Oncology Group ( Site 2728)"}
    old = edit(old, [{"op": "set", "path": f"{SITES}.0", "value": a}])
    new = edit(old, [{"op": "set", "path": f"{SITES}.0", "value": renamed}])
    assert [(f, c) for f, c, _, _ in changed(old, new)] == [("locations." + location_key(a) + ".facility", "changed")]


def test_different_sites_stay_removed_and_added() -> None:
    old = load(STUDY)
    other = {**copy.deepcopy(site(old, 5)), "facility": "Another Hospital", "geoPoint": {"lat": 1.0, "lon": 2.0}}
    new = edit(old, [{"op": "set", "path": f"{SITES}.0", "value": other}])
    assert sorted(c for f, c, _, _ in changed(old, new) if f.count("|") == 3 and f.count(".") <= 2) == [
        "added",
        "removed",
    ]


def test_a_reworded_outcome_with_the_same_time_frame_and_description_is_changed() -> None:
    old = load(STUDY)
    measure = old["protocolSection"]["outcomesModule"]["primaryOutcomes"][0]["measure"]
    new = edit(
        old,
        [
            {
                "op": "set",
                "path": "protocolSection.outcomesModule.primaryOutcomes.0.measure",
                "value": measure + " (reworded)",
            }
        ],
    )
    assert changed(old, new) == [(f"outcomes.primary.{measure}.measure", "changed", measure, measure + " (reworded)")]


def test_stages_pair_only_unambiguous_items() -> None:
    a = {"facility": "Research Site", "city": "Rome", "country": "Italy", "status": "RECRUITING"}
    b = {**a, "zip": "00100"}
    old = {"research site|rome||italy": a}
    new = {"research site|rome||italy|": {**a, "status": "COMPLETED"}, "research site|rome||00100|italy": b}
    from watcher.detect.fields import KEYS

    assert match_items(old, new, KEYS["locations.<key>"]) == {"research site|rome||italy": "research site|rome||italy|"}


def test_baseline_and_identity_are_untouched() -> None:
    record = load(STUDY)
    assert changes_between(record, copy.deepcopy(record)) == []
    assert all(isinstance(c, Change) and c.change == "added" for c in changes_between(None, record))


def test_an_arm_whose_label_and_description_were_both_touched_up_is_one_changed_arm() -> None:
    """The real NCT07098338 edit of 2026-02-09: "… in 2L AGA+ NSCLC" → "… in 2/3L AGA+ NSCLC", and its
    description lost "as assessed by the investigator"."""
    from tests.support.real_pairs import pairs

    (pair,) = [p for p in pairs() if p.nct_id == "NCT07098338" and p.new_name.startswith("2026-02-05")]
    arms = [c for c in changes_between(pair.old, pair.new) if c.field.startswith("armsInterventions.arms.")]
    assert not [c for c in arms if c.change in ("added", "removed")]
    label = "armsInterventions.arms.Sub-study 3, investigate Dato-DXd + ramucirumab ± rilvegostomig in 2L AGA+ NSCLC"
    assert {c.field for c in arms if c.field.startswith(label)} == {f"{label}.label", f"{label}.description"}


def test_two_different_arms_with_one_field_in_common_stay_removed_and_added() -> None:
    old = {
        "armsInterventions.arms": {
            "A": {
                "label": "Cohort A: low dose",
                "type": "EXPERIMENTAL",
                "description": "Drug X 10 mg daily for 12 weeks",
            }
        }
    }
    new = {
        "armsInterventions.arms": {
            "B": {"label": "Placebo run-in", "type": "EXPERIMENTAL", "description": "Matching placebo twice a day"}
        }
    }
    assert match_items(old["armsInterventions.arms"], new["armsInterventions.arms"], [lambda i: i["label"]]) == {}


def test_an_arm_whose_label_was_prefixed_and_description_touched_up_is_one_changed_arm() -> None:
    record = load(STUDY)
    arms = "protocolSection.armsInterventionsModule.armGroups.0"
    arm = record["protocolSection"]["armsInterventionsModule"]["armGroups"][0]
    new = edit(
        record,
        [
            {"op": "set", "path": f"{arms}.label", "value": "Arm A: " + arm["label"]},
            {"op": "set", "path": f"{arms}.description", "value": arm["description"] + " Part 1 only."},
        ],
    )
    found = [(c.field, c.change) for c in changes_between(record, new) if c.field.startswith("armsInterventions.arms")]
    assert found == [
        ("armsInterventions.arms.Nemtabrutinib.description", "changed"),
        ("armsInterventions.arms.Nemtabrutinib.label", "changed"),
    ]


def test_a_site_whose_city_was_renamed_at_the_same_zip_code_is_one_edited_site() -> None:
    record = load(STUDY)
    first = site(record)
    moved = {**first, "city": "Another City", "geoPoint": {"lat": 1.0, "lon": 2.0}}
    new = edit(record, [{"op": "set", "path": f"{SITES}.0", "value": moved}])
    found = {(c.change, c.field.rsplit(".", 1)[-1]) for c in changes_between(record, new)}
    assert ("removed", location_key(first)) not in found
    assert ("changed", "city") in found


def test_two_unknown_sites_sharing_a_zip_code_are_not_taken_for_one() -> None:
    record = load(STUDY)
    first = site(record)
    other = {**first, "facility": "A Different Clinic", "city": "Elsewhere", "geoPoint": {"lat": 1.0, "lon": 2.0}}
    new = edit(record, [{"op": "set", "path": f"{SITES}.0", "value": other}])
    kinds = sorted(c.change for c in changes_between(record, new) if c.field.startswith("locations."))
    assert kinds == ["added", "removed"]

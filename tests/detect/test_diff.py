"""diff_fields on real records: the YAML case table, properties, and the 437-site record."""

from __future__ import annotations

import copy
import random
from collections import Counter
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.diff_cases import CASES, case_changes
from tests.support.studies import NCT_IDS, edit, load
from watcher.detect.catalog import field_kind, field_rank
from watcher.detect.diff import criteria_sections, diff_criteria, diff_fields
from watcher.detect.fields import extract_fields
from watcher.detect.keys import fingerprint, normalize
from watcher.detect.match import align
from watcher.models import Change


@cache
def fields_of(nct_id: str) -> dict[str, Any]:
    return extract_fields(load(nct_id))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_table(case: dict[str, Any]) -> None:
    changes, _, _ = case_changes(case)
    assert [(c.field, c.change) for c in changes] == [(e["field"], e["change"]) for e in case["expect"]]
    for change, expected in zip(changes, case["expect"], strict=True):
        for attr in ("old", "new"):
            if attr in expected:
                assert getattr(change, attr) == expected[attr], (change.field, attr)


def test_case_table_is_built_from_every_kind_of_edit() -> None:
    ops = {step["op"] for case in CASES for step in case["edits"]}
    assert ops == {"set", "delete", "append", "copy", "reverse", "replace"}
    assert len(CASES) >= 25


def test_one_site_removed_from_the_middle_of_437() -> None:
    record = load("NCT02513394")
    sites = record["protocolSection"]["contactsLocationsModule"]["locations"]
    assert len(sites) == 437
    middle = sites[218]
    path = "protocolSection.contactsLocationsModule.locations.218"
    changed = edit(record, [{"op": "delete", "path": path}])
    changes = diff_fields(extract_fields(record), extract_fields(changed))
    key = "|".join(middle.get(p, "") for p in ("facility", "city", "state", "country")).lower()
    assert changes == [Change(f"locations.{key}", "removed", changes[0].old, None)]
    assert changes[0].old["facility"] == middle["facility"]


def test_baseline_reports_every_field_as_added_in_catalog_order() -> None:
    for nct_id in NCT_IDS:
        fields = fields_of(nct_id)
        changes = diff_fields(None, fields)
        assert [c.field for c in changes] == sorted(fields, key=field_rank)
        assert all(c.change == "added" and c.old is None for c in changes)


def test_baseline_starts_like_the_seed() -> None:
    seed = [
        "status.overallStatus",
        "status.primaryCompletionDate",
        "status.completionDate",
        "status.lastUpdatePostDate",
        "design.phases",
        "design.enrollmentCount",
        "eligibility.criteria",
        "eligibility.minAge",
        "eligibility.sex",
        "outcomes.primary",
        "armsInterventions.arms",
        "armsInterventions.interventions",
        "sponsor.lead",
        "sponsor.collaborators",
        "results.hasResults",
    ]
    fields = fields_of("NCT00763412")
    names = [c.field for c in diff_fields(None, fields)]
    assert names[: len(seed)] == seed
    site = "washington university school of medicine|saint louis|missouri|united states"
    assert names[len(seed)] == f"locations.{site}"


def test_results_modules_are_reported_by_digest() -> None:
    changes = diff_fields(None, fields_of("NCT02513394"))
    adverse = next(c for c in changes if c.field == "results.adverseEvents")
    assert isinstance(adverse.new, str)
    assert adverse.new.startswith("blake2b:")


def test_criteria_sections_strip_markers_and_headers() -> None:
    text = "Key Inclusion Criteria:\n\n1. Adults\n   * a) sub point\n\n**Exclusion Criteria**\n\n- Pregnant"
    assert criteria_sections(text) == {"inclusion": ["Adults", "sub point"], "exclusion": ["Pregnant"]}


def test_criteria_without_headers_are_general() -> None:
    changes = list(diff_criteria("eligibility.criteria", "* a\n* b", "* a\n* c"))
    assert changes == [Change("eligibility.criteria.general.2", "changed", "b", "c")]


# --- properties ------------------------------------------------------------------------

SHUFFLED_SECTIONS = ("protocolSection", "derivedSection", "documentSection", "annotationSection")


def shuffle_lists(value: Any, rng: random.Random) -> None:
    """Shuffle every list in place (results tables are order-sensitive digests: left alone)."""
    if isinstance(value, dict):
        for item in value.values():
            shuffle_lists(item, rng)
    elif isinstance(value, list):
        rng.shuffle(value)
        for item in value:
            shuffle_lists(item, rng)


def leaf_paths(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, f"{prefix}{i}.")]
    return [prefix[:-1]]


@cache
def paths_of(nct_id: str) -> tuple[str, ...]:
    return tuple(leaf_paths(load(nct_id)))


def top_field(name: str, names: set[str]) -> str:
    """The extracted field a change belongs to (field keys may contain dots)."""
    candidates = [n for n in names if name == n or name.startswith(n + ".")]
    return max(candidates, key=len)


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(nct_id=st.sampled_from(NCT_IDS))
def test_diff_of_a_record_with_itself_is_empty(nct_id: str) -> None:
    assert diff_fields(fields_of(nct_id), extract_fields(load(nct_id))) == []


@PROPERTY
@given(nct_id=st.sampled_from(NCT_IDS), rng=st.randoms(use_true_random=False))
def test_permuting_lists_is_no_change(nct_id: str, rng: random.Random) -> None:
    record = load(nct_id)
    for section in SHUFFLED_SECTIONS:
        shuffle_lists(record.get(section), rng)
    assert diff_fields(fields_of(nct_id), extract_fields(record)) == []


def mutate(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None:
        return "set"
    return f"{value} (edited)"


@PROPERTY
@given(nct_id=st.sampled_from(NCT_IDS), data=st.data())
def test_every_edit_is_reported_once_and_only_where_it_happened(nct_id: str, data: st.DataObject) -> None:
    record = load(nct_id)
    paths = paths_of(nct_id)
    edits = [
        {"op": "set", "path": path, "value": mutate(_get(record, path))}
        for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4, unique=True))
    ]
    old, new = fields_of(nct_id), aligned(fields_of(nct_id), extract_fields(edit(record, edits)))
    changes = diff_fields(old, new)
    assert changes, "an edit of a leaf went unreported"
    pairs = Counter((c.field, c.change) for c in changes)
    assert max(pairs.values()) == 1
    differing = {n for n in old.keys() | new.keys() if old.get(n, ...) != new.get(n, ...)}
    assert {top_field(c.field, old.keys() | new.keys()) for c in changes} == differing


@PROPERTY
@given(nct_id=st.sampled_from(NCT_IDS), data=st.data())
def test_deleting_any_key_or_item_is_reported(nct_id: str, data: st.DataObject) -> None:
    record = load(nct_id)
    path = data.draw(st.sampled_from(paths_of(nct_id)))
    parts = path.split(".")
    cut = data.draw(st.integers(min_value=1, max_value=len(parts)))
    target = ".".join(parts[:cut])
    changes = diff_fields(fields_of(nct_id), extract_fields(edit(record, [{"op": "delete", "path": target}])))
    assert changes
    assert max(Counter((c.field, c.change) for c in changes).values()) == 1


def _get(record: Any, path: str) -> Any:
    node = record
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def apply_changes(old: dict[str, Any], new: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    """Replay changes on the old fields, resolving dotted names against the keys present."""
    state = {name: comparable(name, value) for name, value in old.items()}
    names = old.keys() | new.keys()
    for change in changes:
        top = top_field(change.field, names)
        if field_kind(top) == "criteria" and change.field != top:
            state[top] = new[top]  # per-line changes are checked by the case table
            continue
        if change.field == top:
            if change.change == "removed":
                del state[top]
            else:
                state[top] = change.new
            continue
        container, rest = state[top], change.field[len(top) + 1 :]
        while True:
            keys = [k for k in container if rest.startswith(k + ".")]
            if rest in container or not keys:
                break
            key = max(keys, key=len)
            container, rest = container[key], rest[len(key) + 1 :]
        if change.change == "removed":
            del container[rest]
        else:
            container[rest] = change.new
    return state


def aligned(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` named as the diff names it: items matched to old ones take their names (`match.align`).

    Alignment only renames: every keyed list (and the set of sites) holds the same values as before.
    """
    out = dict(align(old, new))
    assert _values(out) == _values(new)
    assert {n for n in out if not n.startswith("locations.")} == {n for n in new if not n.startswith("locations.")}
    for name, value in new.items():
        if isinstance(value, dict) and field_kind(name) == "keyed":
            assert sorted(map(repr, value.values())) == sorted(map(repr, out[name].values()))
    return out


def _values(fields: dict[str, Any]) -> list[str]:
    return sorted(repr(v) for n, v in fields.items() if n.startswith("locations."))


def comparable(name: str, value: Any) -> Any:
    return fingerprint(value) if field_kind(name) == "digest" else copy.deepcopy(normalize(value))


@PROPERTY
@given(nct_id=st.sampled_from(NCT_IDS), data=st.data())
def test_applying_the_changes_to_old_yields_new(nct_id: str, data: st.DataObject) -> None:
    record = load(nct_id)
    paths = data.draw(st.lists(st.sampled_from(paths_of(nct_id)), min_size=1, max_size=5, unique=True))
    edits = [{"op": "set", "path": path, "value": mutate(_get(record, path))} for path in paths]
    if data.draw(st.booleans()):
        edits.append({"op": "delete", "path": data.draw(st.sampled_from(paths_of(nct_id)))})
    old, new = fields_of(nct_id), aligned(fields_of(nct_id), extract_fields(edit(record, edits)))
    replayed = apply_changes(old, new, diff_fields(old, new))
    assert replayed == {name: comparable(name, value) for name, value in new.items()}


def with_repeated_keys() -> dict[str, Any]:
    """A real record with the duplicate shapes real data has: generic site names (some with
    the same zip, one byte-identical), repeated outcome measures and interventions."""
    sites = "protocolSection.contactsLocationsModule.locations"
    outcomes = "protocolSection.outcomesModule.primaryOutcomes"
    interventions = "protocolSection.armsInterventionsModule.interventions"
    generic = {"facility": "Research Site", "city": "Springdale", "state": "Arkansas"}
    return edit(
        load("NCT04728893"),
        [
            {"op": "copy", "from": f"{sites}.0", "to": sites, "with": generic},
            {"op": "copy", "from": f"{sites}.0", "to": sites, "with": generic},
            {"op": "copy", "from": f"{sites}.0", "to": sites, "with": {**generic, "status": "COMPLETED"}},
            {"op": "copy", "from": f"{sites}.0", "to": sites, "with": {**generic, "zip": "72764"}},
            {"op": "copy", "from": f"{outcomes}.0", "to": outcomes, "with": {"description": "second reading"}},
            {"op": "copy", "from": f"{outcomes}.0", "to": outcomes, "with": {"timeFrame": "Up to 2 years"}},
            {"op": "copy", "from": f"{interventions}.0", "to": interventions, "with": {"description": "other"}},
        ],
    )


def test_repeated_keys_are_disambiguated() -> None:
    fields = extract_fields(with_repeated_keys())
    research = sorted(n for n in fields if n.startswith("locations.research site"))
    assert research == [
        "locations.research site|springdale|arkansas|72762|united states",
        "locations.research site|springdale|arkansas|72762|united states#2",
        "locations.research site|springdale|arkansas|72762|united states#3",
        "locations.research site|springdale|arkansas|72764|united states",
    ]
    measure = load("NCT04728893")["protocolSection"]["outcomesModule"]["primaryOutcomes"][0]["measure"]
    keys = [k for k in fields["outcomes.primary"] if k.startswith(measure)]
    assert len(keys) == 3
    assert {k.count("#") for k in keys} == {0, 1}
    assert sorted(fields["armsInterventions.interventions"]) == ["DRUG|Nemtabrutinib", "DRUG|Nemtabrutinib#2"]


@PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_permuting_lists_with_repeated_keys_is_no_change(rng: random.Random) -> None:
    record = with_repeated_keys()
    shuffled = copy.deepcopy(record)
    for section in SHUFFLED_SECTIONS:
        shuffle_lists(shuffled.get(section), rng)
    assert diff_fields(extract_fields(record), extract_fields(shuffled)) == []

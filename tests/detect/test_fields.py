"""extract_fields on real records: names, identity keys, completeness, the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.studies import NCT_IDS, edit, load
from watcher.detect.catalog import CATALOG, catalog_table, field_rank, is_bookkeeping, spec_for
from watcher.detect.fields import extract_fields
from watcher.detect.keys import normalize

BASELINE_NAMES = (  # the baseline's fields, in the seed's order
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
)


def test_catalog_names_and_sources_are_unique() -> None:
    names = [spec.name for spec in CATALOG]
    sources = [spec.source for spec in CATALOG]
    assert len(names) == len(set(names))
    assert len(sources) == len(set(sources))


def test_catalog_starts_with_the_seed_fields_in_seed_order() -> None:
    headline = [spec.name for spec in CATALOG if spec.headline]
    assert headline == [*BASELINE_NAMES, "locations.<key>"]
    assert [spec.name for spec in CATALOG[: len(headline)]] == headline


def test_baseline_names_hold_plain_values() -> None:
    fields = extract_fields(load("NCT00763412"))
    assert set(BASELINE_NAMES) <= set(fields)
    assert fields["status.overallStatus"] == "COMPLETED"
    assert fields["status.primaryCompletionDate"] == "2013-01"
    assert fields["status.primaryCompletionDateType"] == "ACTUAL"
    assert fields["design.phases"] == ["NA"]
    assert fields["design.enrollmentCount"] == 31
    assert fields["eligibility.minAge"] == "12 Years"
    assert fields["sponsor.lead"] == "Arbelaez, Ana Maria"
    assert fields["results.hasResults"] is True
    assert "Novo Nordisk A/S" in fields["sponsor.collaborators"]
    assert set(fields["outcomes.primary"]) == {"BMI", "Body Composition", "CRP"}


def test_location_keys_are_lower_case_with_empty_parts_kept() -> None:
    fields = extract_fields(load("NCT04728893"))
    sites = [name for name in fields if name.startswith("locations.")]
    assert len(sites) == 106
    assert "locations.highlands oncology group ( site 2728)|springdale|arkansas|united states" in sites
    assert all(name == name.lower() and name.count("|") == 3 for name in sites)
    every_site = [n for nct in NCT_IDS for n in extract_fields(load(nct)) if n.startswith("locations.")]
    assert any("||" in n for n in every_site)


def test_identity_keys() -> None:
    fields = extract_fields(load("NCT00763412"))
    assert set(fields["armsInterventions.arms"]) == {"1 Placebo", "2. repaglinide"}
    assert set(fields["armsInterventions.interventions"]) == {"DRUG|placebo", "DRUG|repaglinide"}
    officials = extract_fields(load("NCT06610240"))["contacts.officials"]
    assert list(officials) == ["Zhong Dr., MD|STUDY_CHAIR"]
    references = extract_fields(load("NCT04280705"))["references.references"]
    assert all(key.isdigit() or len(key) > 20 for key in references)


def test_repeated_outcome_measures_add_the_time_frame() -> None:
    path = "protocolSection.outcomesModule.primaryOutcomes"
    copy = {"op": "copy", "from": f"{path}.0", "to": path, "with": {"timeFrame": "6 months"}}
    record = edit(load("NCT06863285"), [copy])
    keys = set(extract_fields(record)["outcomes.primary"])
    repeated = {"Asthma Control Score|1 month", "Asthma Control Score|6 months"}
    assert keys == {*repeated, "Patients Medication Adherence Score"}


def test_results_modules_and_derived_section() -> None:
    fields = extract_fields(load("NCT03064438"))
    results = {n for n in fields if n.startswith("results.")}
    assert {
        "results.participantFlow",
        "results.baselineCharacteristics",
        "results.outcomeMeasures",
        "results.adverseEvents",
        "results.moreInfo",
        "results.firstPostDate",
    } <= results
    assert "annotation.violationAnnotation" in fields
    assert "documents.largeDocs" in fields
    assert all(is_bookkeeping(n) for n in fields if n.startswith("derived."))
    assert is_bookkeeping("status.lastUpdatePostDate")
    assert not is_bookkeeping("status.overallStatus")


def test_unknown_keys_get_generic_names() -> None:
    fields = extract_fields(load("NCT02513394"))
    nested = fields["contacts.locations_nested"]
    assert isinstance(nested, list)
    assert len(nested) == 437
    assert spec_for("contacts.locations_nested") is None
    assert field_rank("contacts.locations_nested")[0] < len(CATALOG)
    record = edit(
        load("NCT06863285"),
        [
            {"op": "set", "path": "protocolSection.eligibilityModule.minAge", "value": "x"},
            {"op": "set", "path": "brandNewSection", "value": {"a": [3, 1, 2]}},
        ],
    )
    fields = extract_fields(record)
    assert fields["eligibility.unknown.minAge"] == "x"
    assert fields["record.brandNewSection"] == {"a": [3, 1, 2]}
    assert normalize(fields["record.brandNewSection"]) == {"a": [1, 2, 3]}


@pytest.mark.parametrize("nct_id", NCT_IDS)
def test_fields_are_json_and_the_record_is_untouched(nct_id: str) -> None:
    record = load(nct_id)
    before = json.dumps(record, sort_keys=True)
    fields = extract_fields(record)
    json.dumps(fields)
    assert json.dumps(record, sort_keys=True) == before
    assert fields == extract_fields(load(nct_id))


def leaves(value: object, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, f"{prefix}{k}.")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, f"{prefix}{i}.")]
    return [prefix[:-1]]


# the four smallest records, named so that collecting this module needs no data
SMALL = ["NCT06610240", "NCT03418623", "NCT00973089", "NCT06171568"]


def test_small_are_the_four_smallest_records() -> None:
    assert sorted(NCT_IDS, key=lambda n: len(json.dumps(load(n))))[:4] == SMALL


@pytest.mark.parametrize("nct_id", SMALL)
def test_every_leaf_of_a_record_lands_in_some_field(nct_id: str) -> None:
    record = load(nct_id)
    fields = extract_fields(record)
    for path in leaves(record):
        changed = extract_fields(edit(record, [{"op": "set", "path": path, "value": "\u2063edited"}]))
        assert changed != fields, path


def test_catalog_table_is_in_the_docs() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "explanation" / "fields.md").read_text(encoding="utf-8")
    assert catalog_table() in docs
    for spec in CATALOG:
        assert f"`{spec.name.replace('|', chr(92) + '|')}`" in docs

"""The completeness guard: partial records derived from real ones are caught; real edits are not."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest

from tests.support import shared
from watcher.registry.completeness import missing_parts

MANY_SITES = "NCT04267848"  # 1,148 locations
WITH_RESULTS = "NCT02513394"  # hasResults true, 437 locations


def real(nct_id: str) -> dict[str, Any]:
    return shared.load_study(nct_id)


def without_locations_module(study: dict[str, Any]) -> dict[str, Any]:
    study["protocolSection"].pop("contactsLocationsModule")
    return study


def without_has_results(study: dict[str, Any]) -> dict[str, Any]:
    study.pop("hasResults")
    return study


def with_empty_eligibility(study: dict[str, Any]) -> dict[str, Any]:
    study["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = ""
    return study


def with_truncated_locations(study: dict[str, Any]) -> dict[str, Any]:
    locations = study["protocolSection"]["contactsLocationsModule"]["locations"]
    del locations[len(locations) // 3 :]
    return study


@pytest.mark.parametrize(
    ("nct_id", "cut", "expected"),
    [
        (MANY_SITES, without_locations_module, "protocolSection.contactsLocationsModule: missing"),
        (WITH_RESULTS, without_has_results, "hasResults: missing"),
        (MANY_SITES, with_empty_eligibility, "protocolSection.eligibilityModule.eligibilityCriteria: empty"),
        (
            MANY_SITES,
            with_truncated_locations,
            "protocolSection.contactsLocationsModule.locations: 1148 items before, 382 now",
        ),
    ],
)
def test_partial_records_derived_from_real_ones_are_caught(nct_id: str, cut: Any, expected: str) -> None:
    study = real(nct_id)
    assert expected in missing_parts(study, cut(copy.deepcopy(study)))


def test_a_whole_record_and_small_list_edits_pass() -> None:
    study = real(MANY_SITES)
    assert missing_parts(study, study) == []
    fewer = copy.deepcopy(study)
    del fewer["protocolSection"]["contactsLocationsModule"]["locations"][:4]  # four sites closed
    assert missing_parts(study, fewer) == []


def test_no_real_successive_versions_look_partial() -> None:
    """The regression corpus: every real pair of versions passes (no false suspect)."""
    checked = 0
    for folder in sorted(p for p in shared.pairs_dir().iterdir() if p.is_dir()):
        versions = sorted(
            (json.loads(f.read_text()) for f in folder.glob("*.json")),
            key=lambda v: v["derivedSection"]["miscInfoModule"]["versionHolder"],
        )  # as truth.json
        for old, new in itertools.pairwise(versions):
            assert missing_parts(old, new) == [], folder.name
            checked += 1
    assert checked >= 90

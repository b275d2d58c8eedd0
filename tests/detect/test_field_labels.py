"""Field names in words (`describe.field_label`): an item by its name, never its key; "→" in a label quoted."""

from __future__ import annotations

import pytest

from watcher.detect.describe import field_label, site_name


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("status.overallStatus", "status.overallStatus"),
        (
            "locations.nanyang second general hospital|nanyang|henan|china.geoPoint.lat",
            "Site Nanyang Second General Hospital (Nanyang, Henan, China) · latitude",
        ),
        ("locations.st. mary's|leeds||united kingdom.status", "Site St. Mary's (Leeds, United Kingdom) · status"),
        ("locations.research site|haifa||3109601|israel", "Site Research Site (Haifa, Israel)"),
        ("locations.hôpital foch|suresnes||france.facility", "Site in Suresnes, France · name"),
        (
            "armsInterventions.arms.Arm 3, Part B: Gocataming + I-DXd → gocatamig + atezolizumab.description",
            "Arm “Arm 3, Part B: Gocataming + I-DXd → gocatamig + atezolizumab” · description",
        ),
        (
            "armsInterventions.interventions.DRUG|Ramucirumab.armGroupLabels",
            "Intervention “Ramucirumab (drug)” · armGroupLabels",
        ),
        ("outcomes.primary.Overall Survival (OS).timeFrame", "Primary outcome “Overall Survival (OS)” · timeFrame"),
        ("eligibility.criteria.exclusion.9", "Exclusion criterion 9"),
        ("references.references.41529226", "Reference “41529226”"),
    ],
)
def test_a_field_reads_as_words(field: str, words: str) -> None:
    assert field_label(field) == words
    assert "|" not in field_label(field)


def test_a_site_key_without_place_is_its_facility() -> None:
    assert site_name("research site|||") == "Research Site"

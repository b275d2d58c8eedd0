"""notifiable: bookkeeping defaults, ignore/only globs, min_severity."""

from __future__ import annotations

import pytest

from watcher.detect.filters import BOOKKEEPING, matches, notifiable
from watcher.models import Change

SITE = "locations.ruijin hospital|shanghai||china"


def change(field: str, severity: str = "minor") -> Change:
    return Change(field, "changed", "a", "b", severity=severity)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field",
    [
        "status.lastUpdatePostDate",
        "status.lastUpdatePostDateType",
        "status.lastUpdateSubmitDate",
        "status.statusVerifiedDate",
        "derived.versionHolder",
        "derived.conditionBrowse.browseLeaves.M1",
    ],
)
def test_bookkeeping_is_not_notified_by_default(field: str) -> None:
    assert matches(field, BOOKKEEPING)
    assert not notifiable(change(field))
    assert notifiable(change(field), include_bookkeeping=True)


def test_bookkeeping_needs_the_flag_even_under_only() -> None:
    assert not notifiable(change("status.lastUpdatePostDate"), only=["status.*"])
    assert notifiable(change("status.lastUpdatePostDate"), only=["status.*"], include_bookkeeping=True)


def test_real_fields_are_notified_by_default() -> None:
    for field in ("status.overallStatus", SITE, f"{SITE}.status", "eligibility.criteria.inclusion.2"):
        assert notifiable(change(field))


def test_a_pattern_covers_its_sub_fields() -> None:
    assert not notifiable(change("eligibility.criteria.inclusion.3"), ignore=["eligibility.criteria"])
    assert not notifiable(change(f"{SITE}.contacts.Dr X|CONTACT.phone"), ignore=["locations.*"])
    assert notifiable(change("eligibility.criteriaNotes"), ignore=["eligibility.criteria"])


def test_only_and_ignore_combine() -> None:
    only = ["status.*", "locations.*"]
    assert notifiable(change("status.overallStatus"), only=only)
    assert not notifiable(change("design.phases"), only=only)
    assert not notifiable(change(f"{SITE}.contacts.x"), only=only, ignore=["locations.*.contacts*"])
    assert notifiable(change(f"{SITE}.status"), only=only, ignore=["locations.*.contacts*"])


def test_min_severity() -> None:
    assert not notifiable(change("status.overallStatus", "minor"), min_severity="major")
    assert notifiable(change("status.overallStatus", "major"), min_severity="major")
    assert notifiable(change("status.overallStatus", "critical"), min_severity="major")
    assert not notifiable(change("status.overallStatus", "major"), min_severity="critical")

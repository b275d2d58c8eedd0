"""Named real pairs against expectations written by hand from the records (`expected_messages.yaml`):
a site re-addressed or renamed is one edited site, and what is system-side churn stays minor."""

from __future__ import annotations

import pytest

from tests.support import expected_messages
from watcher.detect import changes_between
from watcher.detect.catalog import is_bookkeeping

IDS = expected_messages.pair_ids()


@pytest.mark.parametrize("pair_id", IDS)
def test_a_site_given_another_address_or_name_is_one_edited_site(pair_id: str) -> None:
    case = expected_messages.expected(pair_id)
    if not case.one_site:
        pytest.skip("no site of this pair was re-addressed")
    changes = changes_between(case.pair.old, case.pair.new)
    for old_site, new_site in case.one_site:
        gone = [c.field for c in changes if c.change == "removed" and expected_messages.is_site(c.old, old_site)]
        came = [c.field for c in changes if c.change == "added" and expected_messages.is_site(c.new, new_site)]
        assert (gone, came) == ([], []), f"{case.why}\n{old_site} -> {new_site}"
        edits = [c for c in changes if c.field.startswith("locations.") and c.change == "changed"]
        assert edits, "the edit itself is reported"


@pytest.mark.parametrize("pair_id", IDS)
def test_severity_says_whether_someone_should_act_now(pair_id: str) -> None:
    case = expected_messages.expected(pair_id)
    if case.minor_only is None:
        pytest.skip("no severity expectation")
    changes = [c for c in changes_between(case.pair.old, case.pair.new) if not is_bookkeeping(c.field)]
    assert changes, case.why
    assert all(c.severity == "minor" for c in changes) is case.minor_only, (
        case.why,
        [(c.field, c.severity) for c in changes if c.severity != "minor"],
    )

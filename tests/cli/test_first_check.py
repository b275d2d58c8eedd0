"""The first `check` says what it did: it recorded the trials, and changes come from the next cycle on."""

from __future__ import annotations

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace

FIRST = "Recorded 3 trials (baseline); changes are reported from the next cycle on."


def test_the_first_check_says_it_recorded_a_baseline(workspace: Workspace, fake_api: FakeCtGov) -> None:
    ids = fake_api.ids()[:4]
    workspace.write(trials=ids[:3])

    first = workspace.cli("check")
    assert first.code == 0, first.err
    assert FIRST in first.out.splitlines()

    again = workspace.cli("check")
    assert again.code == 0, again.err
    assert "Recorded" not in again.out, "a cycle that records no new trial says nothing of baselines"

    workspace.write(trials=ids)
    added = workspace.cli("check")
    assert added.code == 0, added.err
    assert "Recorded 1 new trial (baseline); changes to it are reported from the next cycle on." in added.out

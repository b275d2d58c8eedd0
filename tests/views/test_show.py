"""`trialwatch show`: the seed-style markdown page built from the stored snapshot and history."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace

NCT = "NCT04728893"


def test_show_renders_the_latest_version_with_recent_changes(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[NCT])
    assert workspace.cli("check").code == 0

    def suspend(study: dict) -> None:  # type: ignore[type-arg]
        study["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"

    fake_api.update(NCT, suspend)
    assert workspace.cli("check").code == 0
    page = workspace.cli("show", NCT)
    assert page.code == 0, page.err
    today = datetime.now(UTC).date().isoformat()
    assert page.out.startswith("# Efficacy and Safety of Nemtabrutinib")
    assert f"**NCT ID:** [{NCT}](https://clinicaltrials.gov/study/{NCT})" in page.out
    assert "- **Status:** SUSPENDED" in page.out
    assert "## Recent Field Changes (last 30 days)" in page.out
    recent = page.out.split("## Recent Field Changes (last 30 days)\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert recent[0] == f"- `status.overallStatus` — changed: RECRUITING → SUSPENDED _({today})_"
    assert re.fullmatch(rf"- First recorded on {today} with \d{{3}} fields", recent[-1])
    assert all(
        re.fullmatch(r"- `[^`]+` — (added|removed|changed): .+ _\(\d{4}-\d{2}-\d{2}\)_", ln) for ln in recent[:-1]
    )
    assert not page.out.startswith("---")
    mirrored = workspace.cli("show", NCT, "--front-matter")
    assert mirrored.out.startswith("---\ntitle: Efficacy and Safety of Nemtabrutinib")
    assert f"\nnct_id: {NCT}\noverall_status: SUSPENDED\n" in mirrored.out
    assert "\nsource: ClinicalTrials.gov (mirrored, no enrichment)\n---\n# Efficacy" in mirrored.out

    narrow = workspace.cli("show", NCT, "--days", "7")
    assert "## Recent Field Changes (last 7 days)" in narrow.out


def test_show_unknown_trial_explains_what_to_do(workspace: Workspace) -> None:
    workspace.store()  # the database a first `check` makes: reading commands never create it
    result = workspace.cli("show", "NCT00000000")
    assert result.code == 1
    assert "no stored snapshot yet" in result.err

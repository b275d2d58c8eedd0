"""History queries through the CLI: history filters, diff between versions, changes across trials."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace

TRIAL, OTHER = "NCT04728893", "NCT03418623"


def suspend(study: dict[str, Any]) -> None:
    ps = study["protocolSection"]
    ps["statusModule"]["overallStatus"] = "SUSPENDED"
    ps["designModule"]["enrollmentInfo"]["count"] = 520


def resume(study: dict[str, Any]) -> None:
    study["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"


def three_versions(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[{"id": TRIAL, "label": "CLL", "tags": ["oncology"]}, {"id": OTHER, "tags": ["other"]}])
    assert workspace.cli("check").code == 0
    fake_api.update(TRIAL, suspend)
    assert workspace.cli("check").code == 0
    fake_api.update(TRIAL, resume)
    fake_api.update(OTHER, lambda s: s["protocolSection"]["designModule"]["enrollmentInfo"].update(count=999))
    assert workspace.cli("check").code == 0


def test_history_filters_by_field_and_since_and_prints_csv(workspace: Workspace, fake_api: FakeCtGov) -> None:
    three_versions(workspace, fake_api)
    status = workspace.cli("history", TRIAL, "--field", "status.overall*", "--json").json()
    assert [(h["version"], h["old"], h["new"]) for h in status if not h["baseline"]] == [
        (2, "RECRUITING", "SUSPENDED"),
        (3, "SUSPENDED", "RECRUITING"),
    ]
    assert set(status[0]) == {
        "nct_id",
        "version",
        "detected_at",
        "field",
        "change",
        "old",
        "new",
        "severity",
        "event",
        "baseline",
    }
    assert workspace.cli("history", TRIAL, "--since", "2099-01-01", "--json").json() == []
    assert len(workspace.cli("history", TRIAL, "--since", "1d", "--json").json()) == len(
        workspace.cli("history", TRIAL, "--json").json()
    )
    rows = list(csv.DictReader(io.StringIO(workspace.cli("history", TRIAL, "--field", "design.*", "--csv").out)))
    changed = [r for r in rows if r["baseline"] == "false"]
    assert [(r["field"], r["old"], r["new"]) for r in changed] == [("design.enrollmentCount", "450", "520")]
    bad = workspace.cli("history", TRIAL, "--since", "last tuesday")
    assert bad.code == 2 and "not a date" in bad.err


def test_diff_between_any_two_versions(workspace: Workspace, fake_api: FakeCtGov) -> None:
    three_versions(workspace, fake_api)
    latest = workspace.cli("diff", TRIAL)
    assert latest.code == 0, latest.err
    assert latest.out.startswith(f"{TRIAL}: v2 (")
    assert "status.overallStatus: SUSPENDED → RECRUITING" in latest.out
    across = workspace.cli("diff", TRIAL, "--from", "1", "--to", "3", "--json").json()
    fields = {c["field"]: c for c in across["changes"]}
    assert "status.overallStatus" not in fields, "A→B→A: no net change of the status from v1 to v3"
    assert (fields["design.enrollmentCount"]["old"], fields["design.enrollmentCount"]["new"]) == (450, 520)
    assert (across["from"]["version"], across["to"]["version"]) == (1, 3)
    by_date = workspace.cli("diff", TRIAL, "--from", "2000-01-01")
    assert by_date.code == 2 and "no version was stored by 2000-01-01" in by_date.err
    assert workspace.cli("diff", TRIAL, "--from", "9").code == 2
    assert workspace.cli("diff", "NCT00000000").code == 2


def test_changes_across_trials_by_tag_and_severity(workspace: Workspace, fake_api: FakeCtGov) -> None:
    three_versions(workspace, fake_api)
    everything = workspace.cli("changes", "--json").json()
    assert {c["nct_id"] for c in everything} == {TRIAL, OTHER}
    assert not any(c["baseline"] for c in everything)
    assert not any(c["field"].startswith("status.lastUpdate") for c in everything), "bookkeeping hidden"
    assert any(c["field"] == "status.lastUpdatePostDate" for c in workspace.cli("changes", "--all", "--json").json())
    tagged = workspace.cli("changes", "--tag", "oncology", "--json").json()
    assert {c["nct_id"] for c in tagged} == {TRIAL}
    critical = workspace.cli("changes", "--min-severity", "critical", "--json").json()
    assert critical and {c["severity"] for c in critical} == {"critical"}
    text = workspace.cli("changes", "--tag", "oncology").out
    assert f"{TRIAL} (CLL)  v2  critical status.overallStatus: RECRUITING → SUSPENDED" in text
    assert workspace.cli("changes", "--since", "2099-01-01").out.startswith("No changes since")
    assert workspace.cli("changes", "--tag", "nope").code == 2


@pytest.mark.parametrize(
    "command", [["history", "NCT123"], ["diff", "NCT123"], ["show", "NCT123"], ["backfill", "NCT04728893", "nct1"]]
)
def test_every_command_taking_an_nct_id_rejects_a_malformed_one(workspace: Workspace, command: list[str]) -> None:
    workspace.write(trials=["NCT04728893"])
    result = workspace.cli(*command)
    assert result.code == 2
    assert f"{command[-1]!r} is not an NCT ID (NCT followed by 8 digits)" in result.err


def test_notify_retry_rejects_an_unknown_channel(workspace: Workspace) -> None:
    workspace.write(trials=["NCT04728893"], channels={"hook": {"url": "json://127.0.0.1:9/x"}})
    result = workspace.cli("notify-retry", "--channel", "nosuch")
    assert result.code == 2
    assert "unknown channel 'nosuch' (known: hook)" in result.err

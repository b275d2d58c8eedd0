"""The whole path, watchlist → notification, against real local peers.

Fake ClinicalTrials.gov over HTTP serving real records, a real SMTP server and a real
webhook receiver; the CLI is driven as a user would drive it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.edits import CHANGED, QUIET_1, QUIET_2, SITE_FIELD, edit_trial
from tests.support.fakeapi import FakeCtGov
from tests.support.peers import SmtpServer, WebhookReceiver
from tests.support.workspace import Workspace
from watcher.detect.describe import field_label


def body_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def test_baseline_then_one_changed_trial_is_notified_everywhere(
    workspace: Workspace,
    fake_api: FakeCtGov,
    smtp_server: SmtpServer,
    webhook: WebhookReceiver,
) -> None:
    workspace.write(
        trials=[{"id": CHANGED, "label": "Nemtabrutinib CLL"}, QUIET_1, QUIET_2],
        channels={"email": {"url": smtp_server.url()}, "hook": {"url": webhook.url()}},
    )

    first = workspace.cli("check")
    assert first.code == 0, first.err
    assert smtp_server.messages == []
    assert webhook.requests == []
    baseline = workspace.cli("history", CHANGED, "--json").json()
    assert baseline, "the baseline is recorded"
    assert all(item["change"] == "added" and item["baseline"] for item in baseline)
    assert {"status.overallStatus", "design.enrollmentCount", "results.hasResults"} <= {
        item["field"] for item in baseline
    }

    fake_api.update(CHANGED, edit_trial)
    second = workspace.cli("check")
    assert second.code == 0, second.err

    expected = {
        "status.overallStatus: RECRUITING → SUSPENDED",
        "design.enrollmentCount: 450 → 520",
    }
    # Email: one message, for the changed trial only.
    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert CHANGED in mail["Subject"] and "Nemtabrutinib CLL" in mail["Subject"]
    plain = mail.get_body(preferencelist=("plain",))
    assert plain is not None
    text = plain.get_content()
    assert expected <= body_lines(text)
    assert any(line.startswith(f"{field_label(SITE_FIELD)}: (none) → ") for line in body_lines(text))
    assert "|" not in text, "a site is named, never shown by its key"
    assert f"https://clinicaltrials.gov/study/{CHANGED}" in text
    assert "status.lastUpdatePostDate" not in text, "bookkeeping fields are not notified"
    assert QUIET_1 not in text and QUIET_2 not in text

    # Webhook: one POST, same content.
    assert len(webhook.requests) == 1
    post = webhook.requests[0].json()
    payload_text = repr(post)
    assert CHANGED in payload_text
    for line in expected:
        assert line in payload_text or _structured_has(post, line)

    # History holds the same changes, plus the bookkeeping date.
    history = [h for h in workspace.cli("history", CHANGED, "--json").json() if not h["baseline"]]
    by_field = {h["field"]: h for h in history}
    assert by_field["status.overallStatus"]["old"] == "RECRUITING"
    assert by_field["status.overallStatus"]["new"] == "SUSPENDED"
    assert by_field["status.overallStatus"]["change"] == "changed"
    assert by_field["design.enrollmentCount"]["old"] == 450
    assert by_field["design.enrollmentCount"]["new"] == 520
    assert by_field[SITE_FIELD]["change"] == "added"
    posted = fake_api.get(CHANGED)["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
    assert by_field["status.lastUpdatePostDate"]["old"] == "2023-11-06"
    assert by_field["status.lastUpdatePostDate"]["new"] == posted
    assert all(h["nct_id"] == CHANGED and h["detected_at"] for h in history)
    for quiet in (QUIET_1, QUIET_2):
        assert [h for h in workspace.cli("history", quiet, "--json").json() if not h["baseline"]] == []

    # A third cycle with nothing new sends nothing and stores no version.
    third = workspace.cli("check")
    assert third.code == 0
    assert len(smtp_server.messages) == 1
    assert len(webhook.requests) == 1


def _structured_has(post: dict[str, Any], line: str) -> bool:
    """The webhook payload may carry changes as structured objects instead of text lines."""
    field, _, rest = line.partition(": ")
    old, _, new = rest.partition(" → ")
    for change in post.get("changes", []):
        if change.get("field") == field and str(change.get("old")) == old and str(change.get("new")) == new:
            return True
    return False


def test_without_channels_changes_print_to_stdout(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[CHANGED])
    assert workspace.cli("check").code == 0
    fake_api.update(CHANGED, edit_trial)
    result = workspace.cli("check")
    assert result.code == 0
    assert f"== {CHANGED}: " in result.out
    assert "status.overallStatus: RECRUITING → SUSPENDED" in result.out


def test_check_exits_1_when_a_trial_fails_and_2_on_bad_config(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[CHANGED, "NCT09999999"])
    result = workspace.cli("check")
    assert result.code == 1
    workspace.watchlist.write_text("trials:\n  - NCT123\n")
    bad = workspace.cli("check")
    assert bad.code == 2
    assert "'NCT123' is not NCT followed by 8 digits" in bad.err


@pytest.mark.slow
def test_check_as_a_real_process(workspace: Workspace) -> None:
    workspace.write(trials=[QUIET_1])
    result = workspace.process("check")
    assert result.code == 0, result.err
    listing = workspace.process("list", "--json")
    (row,) = listing.json()
    assert row["nct_id"] == QUIET_1
    assert row["status"] == "COMPLETED"
    assert row["last_checked"]


def test_check_reports_progress_as_events_when_not_on_a_terminal(workspace: Workspace) -> None:
    workspace.write(trials=[CHANGED, QUIET_1, QUIET_2])
    result = workspace.cli("check")
    assert result.code == 0
    events = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    progress = [e for e in events if e["event"] == "poll.progress"]
    assert progress, "a first sync reports its progress"
    assert (progress[-1]["done"], progress[-1]["total"], progress[-1]["percent"]) == (3, 3, 100.0)

"""Backfill from ClinicalTrials.gov's record history, and gap-free history between polls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace
from watcher.registry.record_history import HistoryFormatError, adopt_markup, parse_index, parse_version

TRIAL = "NCT04728893"


def status(value: str) -> Any:
    def edit(study: dict[str, Any]) -> None:
        study["protocolSection"]["statusModule"]["overallStatus"] = value

    return edit


def enrollment(count: int) -> Any:
    def edit(study: dict[str, Any]) -> None:
        study["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = count

    return edit


def edits_on_separate_days(fake: FakeCtGov, *edits: Any) -> None:
    for edit in edits:
        fake.update(TRIAL, edit)
        fake.new_refresh()


def non_baseline(workspace: Workspace) -> list[dict[str, Any]]:
    return [h for h in workspace.cli("history", TRIAL, "--json").json() if not h["baseline"]]


def test_backfill_puts_past_versions_before_the_watched_ones(workspace: Workspace, fake_api: FakeCtGov) -> None:
    edits_on_separate_days(fake_api, enrollment(500), status("ACTIVE_NOT_RECRUITING"))  # versions 1, 2 of 0..2
    workspace.write(trials=[TRIAL])
    assert workspace.cli("check").code == 0
    result = workspace.cli("backfill", TRIAL)
    assert result.code == 0, result.err
    assert result.out.strip() == f"{TRIAL}: imported 2 past versions of 3 on ClinicalTrials.gov (4 requests)"

    history = workspace.cli("history", TRIAL, "--json").json()
    assert {h["version"] for h in history if h["baseline"]} == {1}, "the oldest version is the baseline now"
    changes = [
        (h["version"], h["field"], h["old"], h["new"])
        for h in history
        if not h["baseline"] and not h["field"].startswith(("status.lastUpdate", "derived."))
    ]
    assert changes == [
        (2, "design.enrollmentCount", 450, 500),
        (3, "status.overallStatus", "RECRUITING", "ACTIVE_NOT_RECRUITING"),
    ]
    shown = workspace.cli("history", TRIAL).out
    assert "v3  major    status.overallStatus: RECRUITING → ACTIVE_NOT_RECRUITING" in shown

    again = workspace.cli("backfill", TRIAL)
    assert again.out.strip() == f"{TRIAL}: already backfilled"

    fake_api.update(TRIAL, status("COMPLETED"))
    assert workspace.cli("check").code == 0
    latest = non_baseline(workspace)[-1]
    assert latest["version"] == 4, "polling goes on after the backfilled versions"
    diff = workspace.cli("diff", TRIAL, "--from", "1", "--to", "4").out
    assert "design.enrollmentCount: 450 → 500" in diff
    assert "status.overallStatus: RECRUITING → COMPLETED" in diff


def test_backfill_of_a_trial_never_polled_and_automatically_on_add(workspace: Workspace, fake_api: FakeCtGov) -> None:
    edits_on_separate_days(fake_api, enrollment(500))
    workspace.write(trials=[TRIAL])
    assert workspace.cli("backfill", TRIAL).code == 0
    assert [h["version"] for h in non_baseline(workspace) if h["field"] == "design.enrollmentCount"] == [2]
    assert workspace.cli("check").code == 0
    assert workspace.cli("diff", TRIAL).out.startswith(f"{TRIAL}: v1 ("), "the first poll finds nothing new"

    other = "NCT03418623"
    fake_api.update(other, lambda s: s["protocolSection"]["statusModule"].update(overallStatus="TERMINATED"))
    workspace.write(trials=[TRIAL, other], extra="backfill:\n  on_add: true\n")
    assert workspace.cli("check").code == 0
    statuses = [
        (h["version"], h["old"], h["new"])
        for h in workspace.cli("history", other, "--json").json()
        if h["field"] == "status.overallStatus" and not h["baseline"]
    ]
    assert statuses == [(2, "COMPLETED", "TERMINATED")]


def test_backfill_moves_version_numbers_in_undelivered_messages(workspace: Workspace, fake_api: FakeCtGov) -> None:
    from watcher.store import Store

    edits_on_separate_days(fake_api, enrollment(500))
    workspace.write(trials=[TRIAL], channels={"hook": {"url": "json://127.0.0.1:9/never"}})
    assert workspace.cli("check").code == 0
    fake_api.update(TRIAL, status("SUSPENDED"))
    workspace.cli("check")  # the webhook is down: the message stays in the outbox
    assert workspace.cli("backfill", TRIAL).code == 0
    with Store(workspace.db_url) as store:
        (message,) = store.outbox.messages(status="pending")
        assert message.payload["version"] == 3
        assert store.versions.get(TRIAL, 3).record["protocolSection"]["statusModule"]["overallStatus"] == "SUSPENDED"  # type: ignore[union-attr]


def test_backfill_fails_clearly_on_a_bad_answer(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[TRIAL])
    fake_api.fail("html", path_contains="/api/int/", times=1)
    result = workspace.cli("backfill", TRIAL)
    assert result.code == 1
    assert "/api/int/studies/NCT04728893?history=true: an HTML page instead of JSON" in result.err
    missing = workspace.cli("backfill", "NCT09999999")
    assert missing.code == 1 and "NCT09999999" in missing.err and "404" in missing.err
    workspace.write(trials=[TRIAL], extra="backfill:\n  max_bytes: 1000\n")
    capped = workspace.cli("backfill", TRIAL)
    assert capped.code == 1 and "over the cap of 1000" in capped.err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"history": {"changes": []}}, "`history.changes` is missing or empty"),
        ({"study": {}}, "no `history` object"),
        ({"history": {"changes": [{"version": 1, "date": "2020-01-01"}]}}, "expected versions numbered 0, 1, 2"),
        ({"history": {"changes": [{"version": 0, "date": "01/02/2020"}]}}, "is '01/02/2020', not yyyy-MM-dd"),
        (
            {
                "history": {"changes": [{"version": 0, "date": "2020-01-01"}]},
                "study": {"protocolSection": {"identificationModule": {"nctId": "NCT00000001"}}},
            },
            "not NCT04728893",
        ),
    ],
)
def test_history_index_parser_rejects_what_it_cannot_trust(body: dict[str, Any], message: str) -> None:
    with pytest.raises(
        HistoryFormatError,
        match="^u: .*"
        + message.replace("(", r"\(").replace(")", r"\)").replace("`", "`").replace(".", r"\.").replace("*", r"\*"),
    ):
        parse_index(json.dumps(body).encode(), TRIAL, "u")


def test_version_parser_rejects_duplicates_and_wrong_versions() -> None:
    ok = {"studyVersion": 2, "study": {"protocolSection": {"identificationModule": {"nctId": TRIAL}}}}
    assert parse_version(json.dumps(ok).encode(), TRIAL, 2, "u")["protocolSection"]
    with pytest.raises(HistoryFormatError, match="asked for version 3, got studyVersion 2"):
        parse_version(json.dumps(ok).encode(), TRIAL, 3, "u")
    with pytest.raises(HistoryFormatError, match="duplicate key 'study'"):
        parse_version(b'{"study": {}, "study": {}}', TRIAL, 0, "u")
    with pytest.raises(HistoryFormatError, match="truncated JSON"):
        parse_version(b'{"study": ', TRIAL, 0, "u")


def test_markup_only_differences_take_the_stored_text() -> None:
    stored = {"briefSummary": "The **main** aim: A/B testing.", "n": 1, "other": "old words"}
    past = {"briefSummary": "<p>The <b>main</b> aim: A&#x2F;B testing.</p>", "n": 2, "other": "<p>new words</p>"}
    assert adopt_markup(stored, past) == {"briefSummary": stored["briefSummary"], "n": 2, "other": "new words"}, (
        "a real edit is kept, as markdown"
    )


# -- gaps between polls ----------------------------------------------------------------------------


def a_b_a_between_polls(fake: FakeCtGov) -> None:
    """Suspended and resumed again, each on its own day, while nobody polled."""
    fake.update(TRIAL, status("SUSPENDED"))
    fake.new_refresh()
    fake.update(TRIAL, status("RECRUITING"))


def test_an_edit_undone_between_two_polls_is_still_reported(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[TRIAL])
    assert workspace.cli("check").code == 0
    fake_api.update(TRIAL, enrollment(470))  # an ordinary day: one version, no history request
    fake_api.reset_requests()
    assert workspace.cli("check").code == 0
    assert fake_api.requests_to("/api/int/") == []

    a_b_a_between_polls(fake_api)
    fake_api.reset_requests()
    result = workspace.cli("check")
    assert result.code == 0, result.err
    assert "status.overallStatus: RECRUITING → SUSPENDED" in result.out
    assert "status.overallStatus: SUSPENDED → RECRUITING" in result.out
    assert len(fake_api.requests_to("/api/int/")) == 2, "the index and the one version in between"
    statuses = [
        (h["version"], h["old"], h["new"]) for h in non_baseline(workspace) if h["field"] == "status.overallStatus"
    ]
    assert statuses == [(3, "RECRUITING", "SUSPENDED"), (4, "SUSPENDED", "RECRUITING")]


@pytest.mark.parametrize("extra", ["backfill:\n  fill_gaps: never\n", "backfill:\n  max_gap_requests: 0\n"])
def test_gap_filling_can_be_turned_off_or_capped(workspace: Workspace, fake_api: FakeCtGov, extra: str) -> None:
    workspace.write(trials=[TRIAL], extra=extra)
    assert workspace.cli("check").code == 0
    a_b_a_between_polls(fake_api)
    assert workspace.cli("check").code == 0
    assert fake_api.requests_to("/api/int/") == []
    assert [h for h in non_baseline(workspace) if h["field"] == "status.overallStatus"] == []


def test_fill_gaps_always_asks_even_on_an_ordinary_day(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[TRIAL], extra="backfill:\n  fill_gaps: always\n")
    assert workspace.cli("check").code == 0
    fake_api.update(TRIAL, enrollment(470))
    assert workspace.cli("check").code == 0
    assert len(fake_api.requests_to("/api/int/")) == 1, "one index request; nothing in between to fetch"


def test_a_missing_history_page_is_not_called_a_missing_trial(workspace: Workspace, fake_api: FakeCtGov) -> None:
    """The study answers on API v2; only its record-history page is 404: the watchlist is fine."""
    gone = workspace.api_url.replace("/api/v2", "/api/gone")  # the fake answers 404 to paths it does not serve
    workspace.write(trials=[TRIAL], extra=f"backfill:\n  base_url: {gone}\n")
    result = workspace.cli("backfill", TRIAL)
    assert result.code == 1
    assert f"no record history (404) for {TRIAL}; the study itself is still polled" in result.err
    assert "check the watchlist" not in result.err

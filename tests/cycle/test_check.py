"""One cycle end to end: failures stay local, are alerted once after N cycles, and recover."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from tests.support.fakeapi import FakeCtGov, synthetic_studies
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace

GOOD, BAD = "NCT04728893", "NCT03418623"
FAST = {"max_retries": 0, "backoff_base": 0.01, "backoff_max": 0.01}


def titles(webhook: WebhookReceiver) -> list[str]:
    return [r.json()["title"] for r in webhook.requests]


def complaints(err: str) -> list[str]:
    """The CLI's own error lines (stderr also carries the JSON log)."""
    return [line for line in err.splitlines() if line.startswith("trialwatch: ")]


def setup(workspace: Workspace, webhook: WebhookReceiver, trials: list[str]) -> None:
    workspace.write(
        trials=trials, channels={"hook": {"url": webhook.url()}}, api=FAST, extra="notify:\n  failure_alert_after: 2\n"
    )


def test_a_failing_trial_is_alerted_once_after_n_cycles_then_recovers(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    setup(workspace, webhook, [GOOD, BAD])
    fake_api.fail("wrong_id", ids=[BAD], times=1000)
    first = workspace.cli("check")
    assert first.code == 1
    assert complaints(first.err) == [f"trialwatch: {BAD}: asked for {BAD}, the record is NCT99999999"]
    assert webhook.requests == []
    assert workspace.cli("check").code == 1
    assert titles(webhook) == [f"{BAD}: failing for 2 cycles"]
    assert workspace.cli("check").code == 1
    assert len(webhook.requests) == 1, "alerted once, not every cycle"
    fake_api.clear_faults()
    assert workspace.cli("check").code == 0
    assert titles(webhook)[1:] == [f"{BAD}: checked again"]
    good = [h for h in workspace.cli("history", GOOD, "--json").json() if not h["baseline"]]
    assert good == [], "the healthy trial produced no false change"


def test_api_outage_is_alerted_once_and_recovery_announced(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    setup(workspace, webhook, [GOOD])
    assert workspace.cli("check").code == 0
    fake_api.fail(500, path_contains="/version", times=1000)
    for _ in range(3):
        result = workspace.cli("check")
        assert result.code == 1
        assert [c.split(":")[1] for c in complaints(result.err)] == [" cycle failed"]
    assert titles(webhook) == ["ClinicalTrials.gov unreachable for 2 cycles"]
    fake_api.clear_faults()
    assert workspace.cli("check").code == 0
    assert titles(webhook)[1:] == ["ClinicalTrials.gov polling recovered"]
    assert [h for h in workspace.cli("history", GOOD, "--json").json() if not h["baseline"]] == []


def test_not_found_and_moved_are_reported_once(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    setup(workspace, webhook, [GOOD, "NCT09999999"])
    assert workspace.cli("check").code == 1
    again = workspace.cli("check")
    assert again.code == 1, "the exit code stays 1 until the watchlist is fixed: cron monitoring does not flap"
    assert "NCT09999999: not found on ClinicalTrials.gov (404); check the watchlist" in again.err
    assert len(fake_api.requests_to("/studies/NCT09999999")) == 1, (
        "asked once; left alone until the weekly full re-fetch"
    )
    assert titles(webhook) == ["NCT09999999: not found on ClinicalTrials.gov"], "alerted once"
    states = workspace.cli("list", "--json").json()
    assert next(r for r in states if r["nct_id"] == "NCT09999999")["status"] is None

    fake_api.alias(GOOD, "NCT07000001")
    workspace.cli("check", "--full")
    workspace.cli("check", "--full")
    moved = [t for t in titles(webhook) if "now listed as" in t]
    assert moved == [f"{GOOD} is now listed as NCT07000001"]


def test_one_crashing_record_does_not_stop_the_cycle(
    workspace: Workspace,
    fake_api: FakeCtGov,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import watcher.cycle.records

    workspace.write(trials=[GOOD, BAD], api=FAST)
    real = watcher.cycle.records.title_of  # read of every new or changed record (a baseline is not diffed)

    def explode(new: dict[str, Any]) -> Any:
        if new["protocolSection"]["identificationModule"]["nctId"] == BAD:
            raise KeyError("boom")
        return real(new)

    monkeypatch.setattr(watcher.cycle.records, "title_of", explode)
    result = workspace.cli("check")
    logs = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    assert result.code == 1
    assert complaints(result.err) == [f"trialwatch: {BAD}: internal error: KeyError: 'boom'"]
    crashed = [e for e in logs if e["event"] == "trial.crashed"]
    assert [e["nct_id"] for e in crashed] == [BAD]
    done = next(e for e in logs if e["event"] == "cycle.done")
    assert (done["checked"], done["failed"]) == (1, 1)
    assert [r["nct_id"] for r in workspace.cli("list", "--json").json() if r["status"]] == [GOOD]


def test_403_is_reported_once_naming_the_cause_and_backed_off_at_the_cycle_level(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    setup(workspace, webhook, [GOOD])
    assert workspace.cli("check").code == 0
    fake_api.fail(403, path_contains="/version", times=1000)
    fake_api.reset_requests()
    assert workspace.cli("check").code == 1
    assert titles(webhook) == ["ClinicalTrials.gov refuses TrialWatch's requests (HTTP 403)"]
    assert "compares the User-Agent with the TLS client" in json.dumps(webhook.requests[0].json())
    assert len(fake_api.requests) == 1, "not retried at once"
    again = workspace.cli("check")
    assert again.code == 1
    assert len(fake_api.requests) == 1, "the next cycle backs off: no request"
    assert len(webhook.requests) == 1


def test_403_recovery_is_announced_once(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import watcher.cycle.outage

    monkeypatch.setattr(watcher.cycle.outage, "DENIED_BACKOFF_FIRST", timedelta(0))
    setup(workspace, webhook, [GOOD])
    fake_api.fail(403, path_contains="/version", times=1000)
    for _ in range(3):
        assert workspace.cli("check").code == 1
    assert titles(webhook) == ["ClinicalTrials.gov refuses TrialWatch's requests (HTTP 403)"]
    fake_api.clear_faults()
    assert workspace.cli("check").code == 0
    assert titles(webhook)[1:] == ["ClinicalTrials.gov polling recovered"]


def test_registry_wide_outage_is_one_alert_and_one_recovery_not_one_per_trial(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    """300 trials; /studies serves an HTML page with 200 while /version answers, for 3 cycles."""
    studies = list(synthetic_studies(300))
    for study in studies:
        fake_api.put(study)
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
    setup(workspace, webhook, ids)
    assert workspace.cli("check").code == 0
    fake_api.fail("html", path_contains="filter.ids", times=10_000)
    for _ in range(3):
        fake_api.new_refresh()
        result = workspace.cli("check")
        assert result.code == 1
    assert titles(webhook) == ["ClinicalTrials.gov failing for most trials for 2 cycles"]
    states = workspace.cli("list", "--json").json()
    assert all(r["failing"] is None for r in states), "no per-trial failure was counted"
    fake_api.clear_faults()
    fake_api.new_refresh()
    assert workspace.cli("check").code == 0
    assert titles(webhook) == [
        "ClinicalTrials.gov failing for most trials for 2 cycles",
        "ClinicalTrials.gov polling recovered",
    ]


def test_a_trial_failing_alone_among_many_keeps_its_own_alert(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    studies = list(synthetic_studies(20))
    for study in studies:
        fake_api.put(study)
    ids = [s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
    setup(workspace, webhook, [*ids, BAD])
    fake_api.fail("wrong_id", ids=[BAD], times=1000)
    workspace.cli("check")
    workspace.cli("check", "--full")
    assert titles(webhook) == [f"{BAD}: failing for 2 cycles"]


SITES = "NCT04267848"  # 1,148 locations


def complete(fake_api: FakeCtGov) -> None:
    fake_api.update(SITES, lambda s: s["protocolSection"]["statusModule"].update(overallStatus="COMPLETED"))


def versions(workspace: Workspace) -> list[dict[str, Any]]:
    return [h for h in workspace.cli("history", SITES, "--json").json() if not h["baseline"]]


def test_partial_record_in_a_batch_is_refetched_alone_and_the_whole_one_is_diffed(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    setup(workspace, webhook, [SITES])
    assert workspace.cli("check").code == 0
    complete(fake_api)
    fake_api.fail("partial", ids=[SITES], path_contains="filter.ids", times=99)
    fake_api.reset_requests()
    assert workspace.cli("check").code == 0
    assert [r[1] for r in fake_api.requests].count(f"/api/v2/studies/{SITES}") == 1, "re-fetched once alone"
    text = json.dumps(versions(workspace))
    assert "COMPLETED" in text
    assert "locations." not in text, "no false site removals"


def test_partial_record_twice_is_held_back_reported_once_and_never_removes_anything(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    setup(workspace, webhook, [SITES])
    assert workspace.cli("check").code == 0
    complete(fake_api)
    fake_api.fail("partial", ids=[SITES], times=999)
    assert workspace.cli("check").code == 1
    fake_api.new_refresh()
    assert workspace.cli("check").code == 1
    assert titles(webhook) == [f"{SITES}: partial record held back"], "reported once"
    assert versions(workspace) == [], "not diffed, nothing stored"
    fake_api.clear_faults()
    fake_api.new_refresh()
    assert workspace.cli("check").code == 0
    text = json.dumps(versions(workspace))
    assert "COMPLETED" in text
    assert "locations." not in text, "the whole record after a partial one: no false new sites either"


def test_a_record_held_back_is_fetched_again_next_cycle_not_at_the_next_daily_refresh(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    """The soak lost a change so: the partial record held back, the data timestamp moved anyway (the poll
    itself had not failed), and every later cycle skipped on the unmoved timestamp, until the registry's
    next refresh (a day). A trial held back, or failing, is fetched again by the next cycle."""
    setup(workspace, webhook, [SITES])
    assert workspace.cli("check").code == 0
    complete(fake_api)
    fake_api.fail("partial", ids=[SITES], times=99)  # the batch's answer and the re-fetch alone: held back
    assert workspace.cli("check").code == 1
    assert versions(workspace) == [], "held back"
    fake_api.clear_faults()
    assert workspace.cli("check").code == 0  # no new refresh: the data timestamp has not moved
    assert "COMPLETED" in json.dumps(versions(workspace)), "the whole record, diffed the next cycle"
    fake_api.reset_requests()
    assert workspace.cli("check").code == 0
    assert [r[1] for r in fake_api.requests] == ["/api/v2/version"], "settled: the gate skips again"


def test_an_unchanged_record_is_recognised_by_its_hash_without_loading_the_stored_one(
    workspace: Workspace,
    fake_api: FakeCtGov,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from watcher.store.versions import Versions

    workspace.write(trials=[GOOD, BAD], api=FAST)
    assert workspace.cli("check").code == 0
    loads: list[str] = []
    real = Versions.latest_many

    def counting(self: Versions, nct_ids: Sequence[str]) -> Any:
        loads.extend(nct_ids)
        return real(self, nct_ids)

    monkeypatch.setattr(Versions, "latest_many", counting)
    assert workspace.cli("check", "--full").code == 0, "both records fetched again, both unchanged"
    assert loads == [], "no stored record was loaded and decompressed to compare a hash"
    fake_api.update(GOOD, lambda study: study["protocolSection"]["statusModule"].update(overallStatus="SUSPENDED"))
    assert workspace.cli("check", "--full").code == 0
    assert loads == [GOOD], "only the changed trial's stored record is loaded, to diff it"


def test_a_status_set_by_the_registry_without_a_new_posting_is_noticed_within_one_poll(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    """9 of the 92 real pairs changed protocolSection while lastUpdatePostDate stayed, e.g. the
    registry setting a status to UNKNOWN. The probe asks for OverallStatus, so that is seen at once."""
    workspace.write(trials=[GOOD, BAD], api=FAST)
    assert workspace.cli("check").code == 0
    fake_api.update(GOOD, _unknown_status, bump=False)  # the data timestamp moves, the posting date does not
    result = workspace.cli("check")
    assert result.code == 0
    changes = [h for h in workspace.cli("history", GOOD, "--json").json() if not h["baseline"]]
    assert [(c["field"], c["new"]) for c in changes] == [("status.overallStatus", "UNKNOWN")]


def _unknown_status(study: dict[str, Any]) -> None:
    study["protocolSection"]["statusModule"]["overallStatus"] = "UNKNOWN"


def test_a_module_the_sponsor_really_removed_is_diffed_at_once_by_the_record_history(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    setup(workspace, webhook, [GOOD])
    assert workspace.cli("check").code == 0
    fake_api.update(GOOD, lambda s: s["protocolSection"].pop("referencesModule") and None)
    fake_api.reset_requests()
    assert workspace.cli("check").code == 0
    paths = [r[1] for r in fake_api.requests]
    assert paths.count(f"/api/int/studies/{GOOD}") == 1, "one request to the record history"
    assert f"{GOOD}: partial record held back" not in titles(webhook)
    text = json.dumps(versions_of(workspace, GOOD))
    assert "references." in text, "the removal is reported in the first cycle that sees it"


def versions_of(workspace: Workspace, nct_id: str) -> list[dict[str, Any]]:
    return [h for h in workspace.cli("history", nct_id, "--json").json() if not h["baseline"]]

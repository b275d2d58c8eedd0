"""Discovery end to end over HTTP: saved searches, nearby sites and no-edit alerts, from the
watchlist to a real webhook receiver, against the fake API serving real records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import shared
from tests.support.discovery_studies import WATCHLIST, add_boston_site, post_three
from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.servicerun import Service
from tests.support.workspace import Workspace
from watcher.messages import HeartbeatPayload


def received(webhook: WebhookReceiver, start: int = 0) -> list[dict[str, Any]]:
    return [r.json() for r in webhook.requests[start:]]


def kinds(posts: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return sorted((p["kind"], p.get("nct_id") or (p.get("trial") or {}).get("nct_id")) for p in posts)


def setup(workspace: Workspace, webhook: WebhookReceiver, **channel: Any) -> None:
    workspace.write(channels={"team": {"url": webhook.url(), **channel}})
    workspace.watchlist.write_text(WATCHLIST)


def heartbeat(workspace: Workspace) -> HeartbeatPayload:
    """The heartbeat payload the service would send now, from the workspace's store."""
    from watcher.config import load_config
    from watcher.notify.digest import heartbeat_payload
    from watcher.store import Store

    config = load_config(workspace.settings)
    with Store(config.settings.storage_url) as store:
        return heartbeat_payload(config, store, now=datetime.now(UTC), next_poll=None)


def test_two_searches_announce_the_two_matching_of_three_new_studies_once(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    setup(workspace, webhook)
    assert workspace.cli("check").code == 0
    assert webhook.requests == [], "the first run of a search is a silent baseline"
    baseline = {s["name"]: s["matches"] for s in workspace.cli("search", "list", "--json").json()}
    assert baseline == {"t1d-cell-therapy": 0, "nsclc-boston": 1}  # NCT04267848: NSCLC, recruiting in Boston

    post_three(fake_api)
    fake_api.update("NCT04728893", add_boston_site)
    fake_api.reset_requests()
    second = workspace.cli("check")
    assert second.code == 0, second.err
    posts = received(webhook)
    assert kinds(posts) == [
        ("changes", "NCT04728893"),
        ("nearby_site", "NCT04728893"),
        ("new_trial", "NCT07200001"),
        ("new_trial", "NCT07200003"),
    ]
    by_id = {(p["kind"], p.get("nct_id")): p for p in posts}
    t1d = by_id[("new_trial", "NCT07200001")]
    assert t1d["title"] == "New trial matching t1d-cell-therapy: NCT07200001"
    assert t1d["message"].startswith(
        "New trial matching t1d-cell-therapy: NCT07200001 — Autologous CAR-T Regulatory Cells in New-onset "
        "Type 1 Diabetes, Phase 1/Phase 2, Sonoma Biotherapeutics, RECRUITING, 1 site (Aurora, Colorado, "
        "United States)"
    )
    assert t1d["event"]["data"]["search"] == "t1d-cell-therapy"
    nsclc = by_id[("new_trial", "NCT07200003")]
    assert "Nearest site: 1 km away: Massachusetts General Hospital" in nsclc["message"]
    near = by_id[("nearby_site", "NCT04728893")]
    assert near["title"] == (
        "NCT04728893 (Nemtabrutinib): New recruiting site 4 km away: Boston Children's "
        "Hospital (Boston, Massachusetts, United States)"
    )
    assert near["event"]["data"]["km"] == 4.5

    searches = [p for _, path, p in fake_api.requests if path.endswith("/studies") and "query.cond" in p]
    assert len(searches) == 2
    for params in searches:
        assert params["pageSize"] == "1000" and params["countTotal"] == "true"
        assert params["filter.advanced"].startswith("AREA[StudyFirstPostDate]RANGE[2026-09-0")

    # nothing is announced twice: the same refresh, then a new refresh with nothing new posted
    assert workspace.cli("check").code == 0
    fake_api.touch(["NCT03418623"])
    assert workspace.cli("check").code == 0
    assert len(webhook.requests) == 4


def test_a_watch_true_match_is_watched_like_a_listed_trial_wherever_trials_show(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    setup(workspace, webhook)
    assert workspace.cli("check").code == 0
    post_three(fake_api)
    assert workspace.cli("check").code == 0
    announced = len(webhook.requests)

    # polled like a listed trial, tagged with its search
    rows = {r["nct_id"]: r for r in workspace.cli("list", "--json").json()}
    assert rows["NCT04728893"]["source"] == "watchlist"
    assert rows["NCT07200001"]["source"] == "search:t1d-cell-therapy"
    assert rows["NCT07200001"]["tags"] == ["t1d-cell-therapy"] and rows["NCT07200001"]["status"] == "RECRUITING"
    assert "NCT07200003" not in rows, "watch: false matches are announced only"
    assert "search:t1d-cell-therapy" in workspace.cli("list").out

    # its own changes are notified like any trial's (min_severity major)
    fake_api.update(
        "NCT07200001", lambda s: s["protocolSection"]["statusModule"].update(overallStatus="ACTIVE_NOT_RECRUITING")
    )
    assert workspace.cli("check").code == 0
    later = received(webhook, announced)
    assert kinds(later) == [("changes", "NCT07200001")]
    assert "RECRUITING → ACTIVE_NOT_RECRUITING" in later[0]["message"]
    by_tag = workspace.cli("changes", "--tag", "t1d-cell-therapy", "--json").json()
    assert {c["nct_id"] for c in by_tag} == {"NCT07200001"}
    assert any(c["field"] == "status.overallStatus" for c in by_tag)

    # it counts and shows wherever watched trials do: status, feeds, heartbeat
    assert workspace.cli("status", "--json").json()["trials"] == 2  # NCT04728893 listed + NCT07200001 found
    feed = workspace.cli("feed", "--tag", "t1d-cell-therapy")
    assert feed.code == 0, feed.err
    assert "NCT07200001" in feed.out and "NCT04728893" not in feed.out
    beat = heartbeat(workspace)
    assert beat.trials_watched == 2 and beat.text.startswith("Watching 2 trials")


def test_a_failed_search_is_asked_again_from_the_same_day_and_misses_nothing(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    workspace.write(channels={"team": {"url": webhook.url()}}, api={"max_retries": 0})
    workspace.watchlist.write_text(WATCHLIST)
    assert workspace.cli("check").code == 0
    post_three(fake_api)
    fake_api.fail(500, path_contains="query.cond", times=10)
    failed = workspace.cli("check")
    assert failed.code == 0, "a search failing is logged, not a failed trial"
    assert [json.loads(line)["search"] for line in failed.err.splitlines() if '"search.failed"' in line] == [
        "t1d-cell-therapy",
        "nsclc-boston",
    ]
    assert [p for p in received(webhook) if p["kind"] == "new_trial"] == []
    fake_api.clear_faults()
    fake_api.touch(["NCT03418623"])  # a later refresh: the window still starts before the missed day
    assert workspace.cli("check").code == 0
    assert sorted(p["nct_id"] for p in received(webhook) if p["kind"] == "new_trial") == ["NCT07200001", "NCT07200003"]


def test_a_search_edited_starts_a_new_baseline_and_announce_first_speaks(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    setup(workspace, webhook)
    assert workspace.cli("check").code == 0
    edited = WATCHLIST.replace(
        """    query: {cond: non-small cell lung}
    filter: {overallStatus: RECRUITING}
    near: {lat: 42.36, lon: -71.06, km: 50}""",
        """    query: {cond: NSCLC}
    filter: {overallStatus: ACTIVE_NOT_RECRUITING}
    announce_first: true""",
    )
    assert edited != WATCHLIST
    workspace.watchlist.write_text(edited)
    assert workspace.cli("check").code == 0, "no new refresh: an edited query runs all the same"
    announced = sorted(p["nct_id"] for p in received(webhook) if p["kind"] == "new_trial")
    assert announced == ["NCT02856893", "NCT04764188"]
    matches = {s["name"]: s["matches"] for s in workspace.cli("search", "list", "--json").json()}
    assert matches["nsclc-boston"] == 2, "what the old query matched is forgotten"


def test_no_edit_alerts_from_real_records_once_and_only_where_enabled(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    fake_api.put(shared.load_study("NCT05915728"))
    quiet = WebhookReceiver().start()
    try:
        workspace.write(
            channels={"team": {"url": webhook.url(), "no_edit": True}, "quiet": {"url": quiet.url()}},
            trials=["NCT03418623", "NCT04728893", "NCT05915728", "NCT04280705"],
        )
        assert workspace.cli("check").code == 0
        posts = [p for p in received(webhook) if p["kind"] == "no_edit"]
        assert sorted((p["nct_id"], p["event"]["kind"]) for p in posts) == [
            ("NCT03418623", "results_overdue"),
            ("NCT04728893", "status_unverified"),
            ("NCT05915728", "completion_passed"),
            ("NCT05915728", "status_unverified"),
        ]
        assert quiet.requests == [], "off by default per channel"
        overdue = next(p for p in posts if p["event"]["kind"] == "results_overdue")
        assert overdue["title"] == "NCT03418623: results may be overdue"
        assert "42 CFR 11.44" in overdue["message"] and "primary completion 2020-03-13" in overdue["message"]

        # not repeated: the same day, nor a later cycle while the condition holds
        assert workspace.cli("check").code == 0
        assert len([p for p in received(webhook) if p["kind"] == "no_edit"]) == 4
    finally:
        quiet.stop()


def test_check_config_reports_a_misspelt_search_parameter_with_file_and_line(workspace: Workspace) -> None:
    workspace.write(channels={"team": {"url": "json://127.0.0.1:9/hook"}})
    workspace.watchlist.write_text(
        WATCHLIST.replace("intr: CAR-T", "intervention: CAR-T").replace(
            "overallStatus: RECRUITING}", "overallStatus: OPEN}"
        )
    )
    result = workspace.cli("check-config")
    assert result.code == 2
    assert (
        f"{workspace.watchlist}:7: searches[0].query.intervention: `query.intervention` is not a "
        "ClinicalTrials.gov API parameter"
    ) in result.err
    assert f"{workspace.watchlist}:14: searches[1].filter.overallStatus: 'OPEN': not a status" in result.err


def test_search_cli_add_preview_list_remove(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=["NCT04728893"])
    added = workspace.cli(
        "search",
        "add",
        "lymphoma",
        "-q",
        "cond=lymphoma",
        "-f",
        "overallStatus=RECRUITING,NOT_YET_RECRUITING",
        "--watch",
    )
    assert added.code == 0, added.err
    text = workspace.watchlist.read_text()
    assert "trials:\n  - NCT04728893\n" in text
    assert "query: {cond: lymphoma}" in text and "filter: {overallStatus: [RECRUITING, NOT_YET_RECRUITING]}" in text
    preview = workspace.cli("search", "preview", "lymphoma")
    assert preview.code == 0, preview.err
    assert preview.out.splitlines() == [
        "NCT04728893  RECRUITING  Phase 2  Merck Sharp & Dohme LLC: Efficacy and Safety of Nemtabrutinib (MK-1026) "
        "in Participants With Hematologic Malignancies (MK-1026-003) (106 sites)",
        "1 study matches 'lymphoma' now (nothing saved)",
    ]
    adhoc = workspace.cli("search", "preview", "-q", "cond=type 1 diabetes")
    assert adhoc.out.splitlines()[-1] == "0 studies match 'preview' now (nothing saved)"
    bad = workspace.cli("search", "preview", "-q", "condition=x")
    assert bad.code == 2 and "query.condition" in bad.err
    workspace.store()  # the database a first `check` makes: reading commands never create it
    listed = workspace.cli("search", "list", "--json").json()
    assert listed[0]["name"] == "lymphoma" and listed[0]["watch"] is True and listed[0]["matches"] == 0
    assert workspace.cli("search", "add", "lymphoma", "-q", "cond=x").code == 2, "the name is taken"
    removed = workspace.cli("search", "remove", "lymphoma")
    assert removed.code == 0 and "searches" not in workspace.watchlist.read_text()
    assert workspace.cli("search", "remove", "lymphoma").code == 2


@pytest.mark.slow
def test_a_search_added_while_the_service_runs_is_run_at_once(workspace: Workspace, fake_api: FakeCtGov) -> None:
    """Live reload: `search add` edits the watchlist; the service reloads and runs the new search's
    baseline in a full cycle at once (the listed trial costs only the /version gate)."""
    workspace.write(trials=["NCT04728893"], interval="1h")
    service = Service(workspace)
    try:
        service.wait_event("cycle.done")
        assert workspace.cli("search", "add", "covid", "-q", "cond=covid-19", "--watch").code == 0
        reloaded = service.wait_event("config.reloaded")[0]
        assert reloaded["searches_changed"] == ["covid"]
        done = service.wait_event("search.done")[0]
        assert done["search"] == "covid" and done["baseline"] is True and done["matched"] == 2
        wait_until(
            lambda: (
                {r["nct_id"] for r in workspace.cli("list", "--json").json()}
                == {"NCT04728893", "NCT04280705", "NCT04431453"}
            )
        )
        assert service.stop()[0] == 0
    finally:
        service.kill()

"""Whole-registry mode (`registry: {all: true}`): every study watched, only filtered channels notified."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.fakeapi import FakeCtGov, load_fixture
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.detect.studies import StudyFilter, study_matches
from watcher.errors import ConfigError

LUNG, COVID, WATCHED = "NCT04267848", "NCT04280705", "NCT04728893"
REGISTRY = "registry:\n  all: true\n"


def set_status(status: str) -> Any:
    def change(study: dict[str, Any]) -> None:
        study["protocolSection"]["statusModule"]["overallStatus"] = status

    return change


# the filter (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "matched"),
    [
        (StudyFilter(conditions=("*lung cancer*",)), True),  # "Stage II Lung Cancer AJCC v8", any case
        (StudyFilter(conditions=("*lung cancer*",), phases=("PHASE3",)), True),
        (StudyFilter(conditions=("*lung cancer*",), phases=("PHASE2",)), False),  # every criterion must hold
        (StudyFilter(sponsors=("National Cancer Institute*",)), True),
        (StudyFilter(sponsors=("gilead*",)), False),
        (StudyFilter(statuses=("RECRUITING", "NOT_YET_RECRUITING")), True),
        (StudyFilter(statuses=("COMPLETED",)), False),
        (StudyFilter(), False),  # an empty filter would be the whole registry: it matches nothing
    ],
)
def test_a_study_filter_on_a_real_record(rule: StudyFilter, matched: bool) -> None:
    assert study_matches(rule, load_fixture(LUNG)) is matched


# configuration ---------------------------------------------------------------------------------------


def test_registry_settings_and_channel_filters_are_read(workspace: Workspace) -> None:
    workspace.write(
        channels={
            "lung": {
                "url": "json://localhost/",
                "studies": {"conditions": ["*lung*"], "phases": ["phase3"], "statuses": "RECRUITING"},
            }
        },
        extra=REGISTRY,
    )
    settings = load_config(workspace.settings).settings
    assert settings.registry.all
    assert settings.channels["lung"].studies == StudyFilter(
        conditions=("*lung*",), phases=("PHASE3",), statuses=("RECRUITING",)
    )


def test_filter_mistakes_are_reported_with_file_and_line(workspace: Workspace) -> None:
    workspace.write(
        channels={
            "a": {"url": "json://localhost/", "studies": {"phases": ["PHASE5"], "sponsor": ["x"]}},
            "b": {"url": "json://localhost/", "studies": {}},
        },
        extra="registry:\n  all: yes please\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(workspace.settings)
    text = str(caught.value)
    name = workspace.settings.name
    assert f"{name}:14: channels.a.studies.phases: 'PHASE5' is not one of NA, EARLY_PHASE1" in text
    assert f"{name}:14: channels.a.studies.sponsor: unknown key" in text
    assert f"{name}:17: channels.b.studies: give at least one of conditions" in text
    assert f"{name}:19: registry.all: expected true or false" in text


def test_a_channel_filter_without_the_registry_mode_is_an_error(workspace: Workspace) -> None:
    workspace.write(channels={"a": {"url": "json://localhost/", "studies": {"statuses": ["RECRUITING"]}}})
    with pytest.raises(ConfigError, match=r"channels\.a\.studies: only used when the whole registry is watched"):
        load_config(workspace.settings)


# the cycle -----------------------------------------------------------------------------------------


def test_the_whole_registry_is_stored_and_only_filtered_channels_hear_of_unlisted_studies(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    workspace.write(
        trials=[WATCHED],
        extra=REGISTRY + "feeds:\n  path: feeds/all.atom\n",
        channels={
            "lung": {"url": webhook.url("lung"), "studies": {"conditions": ["*lung*"]}},
            "everyone": {"url": webhook.url("everyone")},
        },
    )
    first = workspace.cli("check")
    assert first.code == 0, first.err
    assert [r[1] for r in fake_api.requests] == ["/api/v2/version", "/api/v2/studies"]
    assert fake_api.requests[1][2] == {"pageSize": "1000", "countTotal": "true"}  # the whole registry
    assert webhook.requests == [], "no baseline of the registry's first sync reaches anyone"
    for nct_id in fake_api.ids():
        assert workspace.cli("history", nct_id, "--json").code == 0, nct_id

    fake_api.reset_requests()
    for nct_id in (LUNG, COVID, WATCHED):
        fake_api.update(nct_id, set_status("SUSPENDED"))
    second = workspace.cli("check")
    assert second.code == 0, second.err
    [version, since] = [r for r in fake_api.requests if r[1].startswith("/api/v2/")]  # (/api/int: compare links)
    assert version[1] == "/api/v2/version"
    assert since[2]["filter.advanced"].startswith("AREA[LastUpdatePostDate]RANGE[")  # the day's delta only
    heard = sorted((r.path, r.json()["trial"]["nct_id"]) for r in webhook.requests)
    assert heard == [("/everyone", WATCHED), ("/lung", LUNG), ("/lung", WATCHED)], (
        "the watched trial goes where watched trials go; an unlisted study only where its filter matches"
    )
    page = workspace.cli("show", COVID)  # an unlisted study has its page and history too
    assert page.code == 0
    assert "SUSPENDED" in page.out
    feed = (workspace.root / "feeds" / "all.atom").read_text()
    assert COVID in feed
    assert LUNG in feed


def test_a_registry_page_cut_short_keeps_the_whole_records_and_leaves_the_gate(fake_api: FakeCtGov) -> None:
    from datetime import UTC, datetime

    from watcher.config import ApiSettings
    from watcher.errors import InvalidResponse
    from watcher.registry.client import CtGovClient
    from watcher.registry.poll import PollState
    from watcher.registry.whole import poll_whole_registry

    fake_api.fail("truncated", path_contains="/studies")
    now = datetime(2026, 9, 5, tzinfo=UTC)
    with CtGovClient(ApiSettings(base_url=fake_api.base_url, requests_per_second=0)) as client:
        broken = poll_whole_registry(client, [], PollState(), now=now)
        assert isinstance(broken.api_error, InvalidResponse)
        assert (broken.data_timestamp, broken.full_refetch) == (None, False), "the next cycle reads it all again"
        assert 0 < len(broken.records) < len(fake_api.ids())
        assert all(record == load_fixture(nct_id) for nct_id, record in broken.records.items())
        whole = poll_whole_registry(client, [], PollState(), now=now)
    assert whole.api_error is None
    assert (whole.strategy, whole.full_refetch, len(whole.records)) == ("registry", True, len(fake_api.ids()))
    assert whole.data_timestamp == fake_api.data_timestamp


def test_new_studies_matching_a_filter_are_announced_changes_covers_every_study_and_logs_go_by_page(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    from tests.support.discovery_studies import DENVER, new_study

    workspace.write(
        trials=[WATCHED],
        extra=REGISTRY,
        channels={
            "lung": {"url": webhook.url("lung"), "studies": {"conditions": ["*lung*"]}},
            "everyone": {"url": webhook.url("everyone")},
        },
    )
    first = workspace.cli("check")
    assert first.code == 0, first.err
    events = [json.loads(line) for line in first.err.splitlines() if line.startswith("{")]
    assert [e["nct_id"] for e in events if e["event"] == "trial.checked"] == [WATCHED], "one line per watched trial"
    pages = [e for e in events if e["event"] == "registry.page"]
    assert [(p["studies"], p["new"]) for p in pages] == [(len(fake_api.ids()) - 1, len(fake_api.ids()) - 1)]

    lung_title = "Durvalumab After Chemoradiation in Unresectable Non-small Cell Lung Cancer"
    new_study(
        fake_api,
        "NCT07300001",
        title=lung_title,
        conditions=["Non-small Cell Lung Cancer"],
        intervention="Durvalumab",
        site=DENVER,
    )
    new_study(
        fake_api,
        "NCT07300002",
        title="Insulin Pumps in Adolescents",
        conditions=["Type 1 Diabetes"],
        intervention="Insulin pump",
        site=DENVER,
    )
    fake_api.update(COVID, set_status("SUSPENDED"))
    second = workspace.cli("check")
    assert second.code == 0, second.err

    heard = sorted((r.path, r.json()["kind"], r.json().get("nct_id")) for r in webhook.requests)
    assert heard == [("/lung", "new_trial", "NCT07300001")], "a new study reaches only the channel it matches"
    (announced,) = [r.json() for r in webhook.requests]
    assert announced["title"] == "New trial matching channels.lung.studies: NCT07300001"
    assert lung_title in announced["message"]

    changes = workspace.cli("changes", "--json")
    assert changes.code == 0, changes.err
    assert COVID in {row["nct_id"] for row in changes.json()}, "changes covers every stored study, not the list"

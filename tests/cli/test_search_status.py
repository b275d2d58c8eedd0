"""Studies a search announced can be found again; `status` names failing channels, counts the searches
in a cycle's duration and words relative times one way. Against the fake API serving real records and
a real webhook receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.discovery_studies import WATCHLIST, post_three
from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver
from tests.support.workspace import Workspace
from watcher.service.status import Status, status_lines
from watcher.times import relative

ANNOUNCED = "NCT07200003"  # matches `nsclc-boston`, a search without `watch: true`
TITLE = "Consolidation Osimertinib After Chemoradiation in Stage III NSCLC"


def announce(workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver) -> None:
    workspace.write(channels={"team": {"url": webhook.url()}})
    workspace.watchlist.write_text(WATCHLIST)
    assert workspace.cli("check").code == 0
    post_three(fake_api)
    assert workspace.cli("check").code == 0
    assert any(r.json().get("nct_id") == ANNOUNCED for r in webhook.requests)


def test_search_show_lists_what_a_search_announced(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    announce(workspace, fake_api, webhook)

    shown = workspace.cli("search", "show", "nsclc-boston")
    assert shown.code == 0, shown.err
    (line,) = [line for line in shown.out.splitlines() if ANNOUNCED in line]
    assert "announced" in line and TITLE in line and f"https://clinicaltrials.gov/study/{ANNOUNCED}" in line
    assert shown.out.splitlines()[-1].startswith("'nsclc-boston': 1 announced, 1 recorded by its first run")
    rows = workspace.cli("search", "show", "nsclc-boston", "--all", "--json").json()
    assert {(r["nct_id"], r["baseline"]) for r in rows} == {("NCT04267848", True), (ANNOUNCED, False)}
    assert workspace.cli("search", "show", "no-such-search").code == 2

    changes = workspace.cli("changes")
    assert changes.code == 0, changes.err
    assert f"{ANNOUNCED}  new study matching search 'nsclc-boston': {TITLE}" in changes.out

    feed = workspace.cli("feed")
    assert feed.code == 0, feed.err
    assert f"<title>New study matching search 'nsclc-boston': {TITLE} [major]</title>" in feed.out
    assert f'href="https://clinicaltrials.gov/study/{ANNOUNCED}"' in feed.out


def test_status_names_a_failing_channel_and_its_error_never_its_secrets(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    url = f"json://bot:s3cret@127.0.0.1:{webhook.port}/incoming?+X-Token=tok-hidden"
    workspace.write(trials=["NCT04728893"], channels={"team": {"url": url}})
    assert workspace.cli("check").code == 0
    fake_api.update("NCT04728893", lambda s: s["protocolSection"]["statusModule"].update(overallStatus="SUSPENDED"))
    webhook.fail_next(50, 503)
    checked = workspace.cli("check")
    assert checked.code == 0, checked.err

    status = workspace.cli("status")
    assert status.code == 0, status.err
    (line,) = [line for line in status.out.splitlines() if "failing  channel" in line]
    assert line.startswith("  failing  channel 'team'  refusing since 20")
    assert "; 1 pending, tried 1 time, next attempt 20" in line
    assert line.endswith("channel 'team': the webhook answered HTTP 503 Service Unavailable (error=503)")
    assert "s3cret" not in status.out and "tok-hidden" not in status.out and str(webhook.port) not in status.out
    (failing,) = workspace.cli("status", "--json").json()["failing_channels"]
    assert failing["channel"] == "team" and failing["pending"] == 1 and "503" in failing["error"]
    assert failing["failing_since"] and failing["others_told"] is False


def test_status_shows_a_channel_refusing_every_message_from_its_failing_state_alone(workspace: Workspace) -> None:
    """`notify.failing.<name>` is the channel's state (since when it refuses, whether the others were
    told): shown even when no message of it waits (its last one parked), never with its URL or secret."""
    from watcher.config import load_config
    from watcher.store import Store
    from watcher.store.meta import CHANNEL_FAILING, ChannelDown

    url = "json://bot:s3cret@hooks.example.org/incoming?+X-Token=tok-hidden"
    workspace.write(trials=["NCT04728893"], channels={"team": {"url": url}, "mail": {"url": "json://127.0.0.1:9/x"}})
    config = load_config(workspace.settings)
    since = datetime.now(UTC) - timedelta(minutes=42)
    with Store(config.settings.storage_url) as store:
        store.meta.set(CHANNEL_FAILING.of("team"), ChannelDown(since, "channel 'team': HTTP 503", alerted=True))

    status = workspace.cli("status")
    assert status.code == 0, status.err
    (line,) = [line for line in status.out.splitlines() if "failing  channel" in line]
    assert line == (
        f"  failing  channel 'team'  refusing since {since:%Y-%m-%d %H:%M} UTC (42m ago, the other channels "
        "were told): channel 'team': HTTP 503"
    )
    assert "s3cret" not in status.out and "tok-hidden" not in status.out and "hooks.example.org" not in status.out
    (failing,) = workspace.cli("status", "--json").json()["failing_channels"]
    assert failing["channel"] == "team" and failing["others_told"] is True and failing["pending"] == 0


def test_a_cycles_duration_counts_its_searches(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    workspace.write(channels={"team": {"url": webhook.url()}})
    workspace.watchlist.write_text(WATCHLIST)
    fake_api.fail("timeout", path_contains="query.cond", times=2, delay=1.5)  # each search answers 1.5 s late
    assert workspace.cli("check").code == 0
    last = workspace.cli("status", "--json").json()["last_cycle"]
    assert last["duration_s"] >= 3.0, last


def test_relative_times_are_worded_one_way() -> None:
    now = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert relative(now + timedelta(minutes=5), now) == "in 5m"
    assert relative(now - timedelta(seconds=11), now) == "11s ago"
    overdue = Status(
        service="running",
        pid=1,
        started_at=(now - timedelta(hours=1)).isoformat(),
        heartbeat=now.isoformat(),
        health="ok",
        last_cycle=None,
        cycle_running_since=None,
        next_cycle=(now - timedelta(seconds=11)).isoformat(),
        trials=1,
        notifications={"pending": 0, "parked": 0, "sent": 0},
    )
    lines = status_lines(overdue, now=now)
    assert "next cycle:     2026-12-07 13:59 UTC (due 11s ago)" in lines
    assert not any("ago from now" in line or "from now" in line for line in lines)
    coming = status_lines(
        Status(**{**overdue.to_json(), "next_cycle": (now + timedelta(minutes=5)).isoformat()}), now=now
    )
    assert "next cycle:     2026-12-07 14:05 UTC (in 5m)" in coming

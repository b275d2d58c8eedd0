"""The service recovering on its own: a (re)start on a broken watchlist runs with the last good one,
and an API-level failed cycle is retried within a growing back-off instead of at the next tick.

The process tests start a real `trialwatch run` against the fake ClinicalTrials.gov API and a webhook
receiver; the back-off decisions are pure and tested on plain values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.servicerun import Service, fast_settings
from tests.support.workspace import Workspace
from watcher.config import load_config, load_settings
from watcher.service.lastgood import last_good_path
from watcher.service.retry import ApiRetry
from watcher.service.schedule import Clock
from watcher.store import Store
from watcher.store.meta import SERVICE_WATCHLIST_ERROR, MetaKey

A, B = "NCT04728893", "NCT03418623"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)

HOUR_SCHEDULE = """\
  interval: 1h
  watch_interval: 1s
  notify_interval: 1s
  stop_timeout: 5s
  api_retry: 2s
"""

# -- the back-off (pure) -------------------------------------------------------------------------


def test_the_retry_doubles_is_capped_at_the_tick_and_resets_on_success() -> None:
    retry = ApiRetry(M)
    far = NOW + 24 * H
    delays = [retry.after(True, now=NOW, tick=6 * H, next_tick=far) for _ in range(10)]
    assert [d - NOW for d in delays if d] == [M * 2**n for n in range(9)] + [6 * H]
    assert retry.after(False, now=NOW, tick=6 * H, next_tick=far) is None
    assert retry.after(True, now=NOW, tick=6 * H, next_tick=far) == NOW + M  # reset by the success


def test_no_retry_when_the_next_tick_comes_first_or_when_turned_off() -> None:
    assert ApiRetry(M).after(True, now=NOW, tick=H, next_tick=NOW + timedelta(seconds=30)) is None
    off = ApiRetry(timedelta())
    assert off.after(True, now=NOW, tick=H, next_tick=NOW + H) is None and off.failures == 1


def test_the_retry_never_comes_before_the_403_back_off() -> None:
    retry_at = NOW + 15 * M
    assert ApiRetry(M).after(True, now=NOW, tick=6 * H, next_tick=NOW + 6 * H, not_before=retry_at) == retry_at
    assert ApiRetry(M).after(True, now=NOW, tick=H, next_tick=NOW + 10 * M, not_before=retry_at) is None
    assert ApiRetry(M).after(True, now=NOW, tick=H, next_tick=NOW + H, not_before=NOW - M) == NOW + M


def test_the_clock_shows_a_pending_retry_as_the_next_poll_and_drops_one_asked_for_while_stopping(
    workspace: Workspace,
) -> None:
    workspace.write(trials=[A])
    clock = Clock(poll=lambda: None, notify=lambda: None, watch=lambda: None)
    clock.start_paused()
    clock.schedule(load_config(workspace.settings), first=True)
    clock.resume()
    try:
        tick = clock.next_tick()
        assert tick is not None and clock.next_poll() == tick
        soon = datetime.now(UTC) + M
        clock.retry_at(soon)
        assert clock.next_poll() == soon and clock.next_tick() == tick
        clock.retry_at(None)
        clock.retry_at(None)  # cancelling twice is harmless
        assert clock.next_poll() == tick
    finally:
        clock.stop()
    clock.retry_at(soon)  # a cycle that failed while the service stops: no retry, and no crash
    assert clock.next_poll() in (None, tick)


def _meta(workspace: Workspace, key: MetaKey[Any]) -> Any:
    with Store(workspace.db_url, create=False) as store:
        return store.meta.get(key)


# -- a real service ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_bad_version_page_is_retried_within_the_back_off_not_at_the_next_tick(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace, HOUR_SCHEDULE)
    fake_api.fail("html", path_contains="/version", times=2)  # a maintenance page, twice
    service = Service(workspace)
    try:
        cycles = service.wait_event("cycle.done", count=3, timeout=30)
        assert [c["result"] for c in cycles] == ["api_failed", "api_failed", "ok"]
        retries = service.named("cycle.retry_scheduled")
        assert [(r["failures"], r["delay_s"]) for r in retries] == [(1, 2), (2, 4)]
        assert workspace.cli("history", A, "--json").json()
        status = workspace.cli("status", "--json").json()
        assert status["trials"] == 1
        # a success resets the back-off and leaves no retry: the next poll is the hourly tick
        wait_until(lambda: service.named("cycle.done")[-1]["result"] == "ok")
        assert len(service.named("cycle.retry_scheduled")) == 2
        assert service.stop()[0] == 0
        assert len(service.named("cycle.done")) == 3
    finally:
        service.kill()


@pytest.mark.slow
def test_a_restart_on_a_broken_watchlist_runs_with_the_last_good_one_and_alerts_once(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    workspace.write(trials=[A], channels={"hook": {"url": webhook.url()}})
    fast_settings(workspace)
    first = Service(workspace)
    try:
        first.wait_event("cycle.done")
        assert first.stop()[0] == 0
    finally:
        first.kill()
    copy = last_good_path(load_settings(workspace.settings))
    assert copy.read_text() == workspace.watchlist.read_text()

    workspace.watchlist.write_text(f"trials:\n  - {A}\n  - NCT0000\n")  # a typo while the service is down
    expected = "watchlist.yaml:3: trials[1]: 'NCT0000' is not NCT followed by 8 digits"
    second = Service(workspace)
    try:
        started = second.wait_event("watchlist.started_on_last_good")[0]
        assert any(expected in p for p in started["problems"]) and started["trials"] == 1
        polled = len(fake_api.requests_to("/version"))
        second.wait_event("cycle.done")
        wait_until(lambda: len(fake_api.requests_to("/version")) > polled + 1, timeout=10)  # still polling A
        status = workspace.cli("status", "--json").json()
        assert status["service"] == "running" and any(expected in p for p in status["watchlist_error"])
        assert any(expected in p for p in _meta(workspace, SERVICE_WATCHLIST_ERROR))  # the service's own record
        alert = wait_until(lambda: [r.json() for r in webhook.requests], timeout=15)[0]
        assert "still watching the previous 1 trials" in alert["title"] and expected in alert["message"]
        assert copy.read_text() == f"trials:\n  - {A}\n"  # the broken file is never remembered

        workspace.watchlist.write_text(f"trials:\n  - {A}\n  - {B}\n")  # fixed: the live reload takes it
        assert second.wait_event("config.reloaded")[0]["added"] == [B]
        wait_until(lambda: _meta(workspace, SERVICE_WATCHLIST_ERROR) is None)
        assert not workspace.cli("status", "--json").json()["watchlist_error"]
        wait_until(lambda: copy.read_text() == workspace.watchlist.read_text())
        assert second.stop()[0] == 0
        assert len(webhook.requests) == 1
    finally:
        second.kill()


@pytest.mark.slow
def test_a_restart_on_the_same_broken_watchlist_does_not_alert_again(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    workspace.write(trials=[A], channels={"hook": {"url": webhook.url()}})
    fast_settings(workspace)
    for broken in (False, True, True):
        if broken:
            workspace.watchlist.write_text("trials:\n  - NCT1\n")
        service = Service(workspace)
        try:
            service.wait_event("cycle.done")
            if broken:
                wait_until(lambda: webhook.requests, timeout=15)
            assert service.stop()[0] == 0
        finally:
            service.kill()
    assert len(webhook.requests) == 1
    # the restart's alert would have been queued before its first cycle: none was
    with Store(workspace.db_url, create=False) as store:
        assert [m.payload["subject"] for m in store.outbox.messages() if m.kind == "alert"] == [
            "TrialWatch: configuration edit rejected, still watching the previous 1 trials"
        ]


@pytest.mark.slow
def test_a_first_start_on_a_broken_watchlist_still_refuses_with_file_and_line(workspace: Workspace) -> None:
    workspace.write(trials=[A])
    workspace.watchlist.write_text("trials:\n  - NCT1\n")
    result = workspace.process("run", timeout=30)
    assert result.code == 2
    assert "watchlist.yaml:2: trials[0]: 'NCT1' is not NCT followed by 8 digits" in result.err
    assert not last_good_path(load_settings(workspace.settings)).exists()


@pytest.mark.slow
def test_a_broken_settings_file_still_refuses_even_with_a_last_good_watchlist(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace)
    service = Service(workspace)
    try:
        service.wait_event("cycle.done")
        assert service.stop()[0] == 0
    finally:
        service.kill()
    assert last_good_path(load_settings(workspace.settings)).exists()
    workspace.settings.write_text(workspace.settings.read_text() + "channels: [oops]\n")
    result = workspace.process("run", timeout=30)
    assert result.code == 2 and "trialwatch.yaml:" in result.err

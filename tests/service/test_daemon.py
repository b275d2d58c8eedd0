"""The service: scheduling decisions (pure), and a real `trialwatch run` process under a fake systemd.

The process tests start `python -m watcher … run` with a real AF_UNIX datagram socket as
NOTIFY_SOCKET, the fake ClinicalTrials.gov API over HTTP, and 1-2 s intervals.
"""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.databases import sqlite_file
from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.servicerun import FAST_SCHEDULE, NotifySocket, Service, fast_settings
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.models import Trial
from watcher.registry.client import CtGovClient
from watcher.service.reload import FileWatch
from watcher.service.schedule import due_trials, tick_interval
from watcher.service.workers import poll_trials
from watcher.store import Store
from watcher.store.meta import DATA_TIMESTAMP

A, B, C = "NCT04728893", "NCT03418623", "NCT06171568"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


# -- pure decisions ------------------------------------------------------------------------------


def test_due_trials_follow_their_own_interval() -> None:
    trials = [Trial(A), Trial(B, interval=24 * H), Trial(C, interval=H)]
    last = {A: NOW - 6 * H, B: NOW - 6 * H, C: NOW - H}
    assert due_trials(trials, last, now=NOW, default=6 * H, tick=H) == [A, C]
    assert due_trials(trials, {A: NOW - 6 * H, B: NOW - 25 * H, C: NOW}, now=NOW, default=6 * H, tick=H) == [A, B]


def test_never_checked_trials_are_always_due_and_half_a_tick_of_slack_avoids_drift() -> None:
    trials = [Trial(A), Trial(B)]
    # checked 5h58m ago at a 6h interval: due now rather than a whole tick late
    assert due_trials(trials, {A: NOW - 6 * H + timedelta(minutes=2)}, now=NOW, default=6 * H, tick=6 * H) == [A, B]
    assert due_trials(trials, {A: NOW, B: NOW}, now=NOW, default=6 * H, tick=6 * H) == []


def test_the_clock_ticks_at_the_shortest_interval(workspace: Workspace) -> None:
    workspace.write(trials=[A, {"id": B, "interval": "30m"}])
    config = load_config(workspace.settings)
    assert tick_interval(config) == timedelta(minutes=30)
    workspace.write(trials=[A, {"id": B, "interval": "2d"}])
    assert tick_interval(load_config(workspace.settings)) == H


def test_file_watch_waits_until_the_file_holds_still(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("trials: []\n")
    watch = FileWatch(path)
    assert not watch.changed()
    path.write_text("trials: [NCT04728893]\n")
    assert not watch.changed(), "first sight of a change: wait one more look"
    assert watch.changed()
    assert not watch.changed()
    path.unlink()
    assert not watch.changed()
    assert watch.changed(), "a deleted watchlist is a change too (it means: no trials)"


def test_a_partial_cycle_polls_only_due_trials_and_leaves_the_registry_gate_alone(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    workspace.write(trials=[A, B])
    config = load_config(workspace.settings)
    with Store(config.settings.storage_url) as store, CtGovClient(config.settings.api) as client:
        report = poll_trials(config, store, client, only=[A], write=lambda _: None)
        assert report.checked == 1
        states = store.trials.states()
        assert A in states and B not in states
        assert store.meta.get(DATA_TIMESTAMP) is None, "the others were not looked at"
        full = poll_trials(config, store, client, only=[A, B], write=lambda _: None)
        assert full.checked == 2
        assert store.meta.get(DATA_TIMESTAMP) == fake_api.data_timestamp
        # the gate is set now, yet a partial cycle does not trust it: B's edit is found
        fake_api.update(B, lambda study: None)
        again = poll_trials(config, store, client, only=[B], write=lambda _: None)
        assert again.checked == 1 and again.strategy != "skip"


# -- a real service process ----------------------------------------------------------------------


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket.open()
    try:
        yield sock
    finally:
        sock.close()


def _polled(fake_api: FakeCtGov, nct_id: str) -> bool:
    """The fake's request log holds (method, path, query parameters)."""
    return any(nct_id in path or nct_id in params.get("filter.ids", "") for _, path, params in list(fake_api.requests))


def _versions(fake_api: FakeCtGov) -> int:
    return len(fake_api.requests_to("/version"))


@pytest.mark.slow
def test_service_tells_systemd_ready_status_watchdog_and_stopping(
    workspace: Workspace,
    fake_api: FakeCtGov,
    notify: NotifySocket,
) -> None:
    workspace.write(trials=[A, B])
    fast_settings(workspace)
    service = Service(workspace, notify=notify, env={"WATCHDOG_USEC": "1000000"})
    try:
        ready = notify.wait_for("READY", "1")
        assert "2 trials watched" in ready["STATUS"]
        notify.wait_for("WATCHDOG", "1")
        after_cycle = wait_until(
            lambda: [m for m in notify.assignments() if "last cycle" in m.get("STATUS", "") and "ok" in m["STATUS"]]
        )
        assert "2 checked" in after_cycle[0]["STATUS"] and "notifications pending" in after_cycle[0]["STATUS"]
        wait_until(lambda: sum(1 for m in notify.assignments() if "WATCHDOG" in m) >= 5, timeout=10)
        running = workspace.cli("status", "--json").json()
        assert running["service"] == "running" and running["trials"] == 2
        assert running["last_cycle"]["result"] == "ok" and running["next_cycle"]
        code, took = service.stop()
    finally:
        service.kill()
    assert code == 0 and took < 5
    stopping = notify.wait_for("STOPPING", "1")
    assert "Stopping" in stopping["STATUS"]
    keys = [next(iter(m)) for m in notify.assignments()]
    assert keys[0] == "READY" and keys[-1] == "STOPPING"
    pings = [t for t, text in notify.messages if text == "WATCHDOG=1"]
    assert len(pings) >= 5 and max(b - a for a, b in itertools.pairwise(pings)) < 0.5 + 0.3, (
        "pinged at least every WATCHDOG_USEC/2 while healthy"
    )
    cycle = service.named("cycle.done")[0]
    assert {"checked", "changed", "failed", "requests", "duration_s"} <= set(cycle)
    stopped = workspace.cli("status", "--json").json()
    assert stopped["service"] == "stopped" and stopped["next_cycle"] is None
    (workspace.root / "notify-exchange.txt").write_text("\n".join(f"{t:.3f} {text!r}" for t, text in notify.messages))


@pytest.mark.slow
def test_abstract_notify_socket_names_work(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace)
    sock = NotifySocket.open(abstract=True)
    service = Service(workspace, notify=sock)
    try:
        assert sock.address.startswith("@")
        sock.wait_for("READY", "1")
        assert service.stop()[0] == 0
    finally:
        service.kill()
        sock.close()


@pytest.mark.slow
def test_a_good_watchlist_edit_is_picked_up_while_running(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace)
    service = Service(workspace)
    try:
        service.wait_event("cycle.done")
        assert not _polled(fake_api, B)
        added = workspace.cli("add", B, "--label", "added live")
        assert added.code == 0, added.err
        reloaded = service.wait_event("config.reloaded")[0]
        assert reloaded["added"] == [B] and reloaded["reason"] == "watchlist changed"
        wait_until(lambda: _polled(fake_api, B))
        wait_until(lambda: workspace.cli("history", B, "--json").json(), timeout=10)
        removed = workspace.cli("remove", A)
        assert removed.code == 0
        assert service.wait_event("config.reloaded", count=2)[1]["removed"] == [A]
        assert service.stop()[0] == 0
    finally:
        service.kill()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("trials:\n  - NCT04728893\n  - {id: NCT0342\n", "YAML syntax error"),
        (
            "trials:\n  - NCT04728893\n  - NCT123\n",
            "watchlist.yaml:3: trials[1]: 'NCT123' is not NCT followed by 8 digits",
        ),
        ("trials:\n  - NCT04728893\n  - nct04728893\n", "NCT04728893 is listed twice (first at line 2)"),
        ("trials:\n  - id: NCT04728893\n    channels: [pager]\n", "unknown channel 'pager'"),
    ],
)
def test_a_broken_edit_is_rejected_once_and_polling_goes_on(
    workspace: Workspace,
    fake_api: FakeCtGov,
    broken: str,
    expected: str,
) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace)
    service = Service(workspace)
    try:
        service.wait_event("cycle.done")
        workspace.watchlist.write_text(broken)
        rejected = service.wait_event("watchlist.rejected")[0]
        assert any(expected in problem and "watchlist.yaml:" in problem for problem in rejected["problems"])
        assert rejected["kept_trials"] == 1
        # no channel configured: the one clear error goes to stdout, naming file and line
        wait_until(lambda: expected in service.stdout)
        assert service.stdout.count("!! TrialWatch: configuration edit rejected") == 1
        status = workspace.cli("status", "--json")
        assert status.code == 0 and any(expected in p for p in status.json()["watchlist_error"])
        before = _versions(fake_api)
        wait_until(lambda: _versions(fake_api) >= before + 2, timeout=10)  # still polling, with the old list
        cycles = service.named("cycle.done")
        assert cycles[-1]["trials"] == 1 and cycles[-1]["result"] == "ok"
        workspace.watchlist.write_text(f"trials:\n  - {A}\n  - {B}\n")
        assert service.wait_event("config.reloaded")[0]["added"] == [B]
        assert service.stop()[0] == 0
        assert len(service.named("watchlist.rejected")) == 1
    finally:
        service.kill()


@pytest.mark.slow
def test_a_rejected_edit_is_notified_through_the_channels(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
) -> None:
    workspace.write(trials=[A], channels={"hook": {"url": webhook.url()}})
    fast_settings(workspace)
    service = Service(workspace)
    try:
        service.wait_event("cycle.done")
        workspace.watchlist.write_text(f"trials:\n  - {A}\n  - NCT0000\n")
        alert = wait_until(lambda: [r.json() for r in webhook.requests], timeout=15)[0]
        assert "rejected" in alert["title"]
        assert "watchlist.yaml:3: trials[1]: 'NCT0000' is not NCT followed by 8 digits" in alert["message"]
        assert "!!" not in service.stdout
        assert service.stop()[0] == 0
    finally:
        service.kill()


@pytest.mark.slow
def test_sighup_reloads_settings_and_watchlist(
    workspace: Workspace,
    fake_api: FakeCtGov,
    notify: NotifySocket,
) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace, FAST_NO_WATCH)
    service = Service(workspace, notify=notify)
    try:
        notify.wait_for("READY", "1")
        service.wait_event("cycle.done")
        workspace.watchlist.write_text(f"trials:\n  - {A}\n  - {C}\n")
        time.sleep(1.5)
        assert not service.named("config.reloaded"), "file watching is off: only SIGHUP reloads"
        service.signal(signal.SIGHUP)
        reloaded = service.wait_event("config.reloaded")[0]
        assert reloaded["reason"] == "SIGHUP" and reloaded["added"] == [C]
        notify.wait_for("RELOADING", "1")
        assert "MONOTONIC_USEC" in notify.wait_for("RELOADING", "1")
        wait_until(lambda: sum(1 for m in notify.assignments() if m.get("READY") == "1") >= 2)
        wait_until(lambda: _polled(fake_api, C))
        assert service.stop()[0] == 0
    finally:
        service.kill()


FAST_NO_WATCH = """\
  interval: 2s
  watch_interval: 0s
  notify_interval: 1s
  stop_timeout: 5s
"""


@pytest.mark.slow
def test_sigterm_lets_the_cycle_in_flight_finish(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[A, B])
    fast_settings(workspace)
    fake_api.fail("timeout", path_contains="/studies", delay=1.5)
    service = Service(workspace)
    try:
        wait_until(lambda: fake_api.requests_to("/studies"), timeout=15)
        code, took = service.stop()
    finally:
        service.kill()
    assert code == 0 and took < 5 + 2
    done = service.named("cycle.done")
    assert done and done[0]["checked"] == 2, "the cycle in flight was finished, not cut"
    assert service.named("service.stopped")[0]["clean"] is True


@pytest.mark.slow
def test_sigterm_lets_a_send_in_flight_finish_and_marks_it_sent(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    """A channel's worker outlives the notify tick that started it (the tick waits 5 s): at SIGTERM the
    service waits for it (within `stop_timeout`) instead of exiting mid-send, which left the message
    claimed but unmarked, for the next process to send again."""
    workspace.write(trials=[A], channels={"hook": {"url": webhook.url()}})
    fast_settings(workspace)
    service = Service(workspace)
    try:
        service.wait_event("cycle.done")
        webhook.delay = 8.0  # a slow receiver: the send outlasts the tick's 5 s wait
        workspace.watchlist.write_text(f"trials:\n  - {A}\n  - NCT0000\n")  # a rejected edit is alerted
        service.wait_event("watchlist.rejected")
        time.sleep(6.5)  # the tick has returned; the worker still sends
        assert not webhook.requests, "still in flight"
        code, took = service.stop()
    finally:
        service.kill()
    assert code == 0 and took < 5 + 2, took
    assert len(webhook.requests) == 1
    (sent,) = service.named("notify.sent")
    assert sent["channel"] == "hook"
    assert service.named("service.stopped")[0]["clean"] is True
    with sqlite_file(workspace.root / "state" / "trialwatch.sqlite") as db:
        assert db.execute("SELECT status FROM outbox").fetchall() == [("sent",)]


@pytest.mark.slow
def test_sigterm_abandons_a_stuck_cycle_within_the_bound_and_exits_0(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    workspace.write(trials=[A, B])
    fast_settings(workspace, FAST_SCHEDULE.replace("stop_timeout: 5s", "stop_timeout: 2s"))
    fake_api.fail("timeout", path_contains="/studies", delay=4, times=50)
    service = Service(workspace)
    try:
        wait_until(lambda: fake_api.requests_to("/studies"), timeout=15)
        code, took = service.stop()
    finally:
        service.kill()
    assert code == 0
    assert took < 2 + 2.5, f"stopped after {took:.1f}s; the bound is 2s"
    assert service.named("service.abandoned")
    assert not service.named("cycle.done")
    # nothing half-written: the database opens, the abandoned cycle is simply not finished
    with sqlite_file(workspace.root / "state" / "trialwatch.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM snapshots").fetchone() == (0,)
        cycles = db.execute("SELECT result, finished_at IS NOT NULL FROM cycles").fetchall()
    assert cycles == [("abandoned", 1)], "the abandoned cycle is closed in the log, not left running"
    after = workspace.cli("status", "--json").json()
    assert after["service"] == "stopped", "status tells the truth after an abandoned stop"


@pytest.mark.slow
def test_a_killed_cycle_is_closed_as_interrupted_when_the_service_starts_again(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    workspace.write(trials=[A, B])
    fast_settings(workspace)
    fake_api.fail("timeout", path_contains="/studies", delay=4, times=3)
    first = Service(workspace)
    try:
        wait_until(lambda: fake_api.requests_to("/studies"), timeout=15)
    finally:
        first.kill()  # kill -9 in the middle of a cycle
    with sqlite_file(workspace.root / "state" / "trialwatch.sqlite") as db:
        assert db.execute("SELECT result FROM cycles").fetchall() == [("running",)]
    second = Service(workspace)
    try:
        [event] = second.wait_event("service.interrupted_cycles")
        assert event["count"] == 1
    finally:
        second.stop()
    with sqlite_file(workspace.root / "state" / "trialwatch.sqlite") as db:
        results = [r for (r,) in db.execute("SELECT result FROM cycles ORDER BY id")]
    assert results[0] == "interrupted" and "running" not in results


@pytest.mark.slow
def test_a_second_service_of_one_sqlite_database_is_refused_naming_the_first(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace)
    first = Service(workspace)
    try:
        first.wait_event("service.started")
        second = workspace.cli("run")
        assert second.code == 1
        assert f"another `trialwatch run` (pid {first.proc.pid}, since " in second.err
        assert "is already the service of" in second.err
        assert workspace.cli("status", "--json").json()["service"] == "running"
    finally:
        code, _ = first.stop()
    assert code == 0
    assert workspace.cli("status", "--json").json()["service"] == "stopped"


@pytest.mark.slow
def test_never_two_cycles_at_once(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace, FAST_SCHEDULE.replace("interval: 2s", "interval: 1s"))
    fake_api.fail("timeout", path_contains="/version", delay=1.5, times=4)
    service = Service(workspace)
    try:
        service.wait_event("cycle.done", count=4, timeout=30)
        assert service.stop()[0] == 0
    finally:
        service.kill()
    with sqlite_file(workspace.root / "state" / "trialwatch.sqlite") as db:
        rows = db.execute("SELECT started_at, finished_at FROM cycles ORDER BY id").fetchall()
    spans = [(datetime.fromisoformat(s), datetime.fromisoformat(f)) for s, f in rows if f]
    assert len(spans) >= 4
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, "a cycle started before the previous one finished"


@pytest.mark.slow
def test_run_refuses_to_start_on_a_broken_watchlist(workspace: Workspace) -> None:
    workspace.write(trials=[A])
    workspace.watchlist.write_text("trials:\n  - NCT1\n")
    result = workspace.process("run", timeout=30)
    assert result.code == 2
    assert "watchlist.yaml:2: trials[0]: 'NCT1' is not NCT followed by 8 digits" in result.err


@pytest.mark.slow
def test_the_watchdog_is_withheld_while_a_cycle_is_stuck(
    workspace: Workspace,
    fake_api: FakeCtGov,
    notify: NotifySocket,
) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace, FAST_SCHEDULE.replace("stop_timeout: 5s", "stop_timeout: 5s\n  cycle_timeout: 1s"))
    fake_api.fail("timeout", path_contains="/studies", delay=4)
    service = Service(workspace, notify=notify, env={"WATCHDOG_USEC": "500000"})
    try:
        notify.wait_for("WATCHDOG", "1")
        unhealthy = service.wait_event("service.unhealthy")[0]
        assert "has run for more than" in unhealthy["reason"]
        stuck_at = time.monotonic()
        notify.wait_for("STATUS")
        assert wait_until(lambda: [m for m in notify.assignments() if m.get("STATUS", "").startswith("UNHEALTHY")])
        service.wait_event("service.healthy", timeout=15)
        healthy_at = time.monotonic()
        time.sleep(1)
        assert service.stop()[0] == 0
    finally:
        service.kill()
    pings = [t for t, text in notify.messages if text == "WATCHDOG=1"]
    assert not [t for t in pings if stuck_at < t < healthy_at - 0.3], "no ping while the cycle was stuck"
    assert [t for t in pings if t > healthy_at], "pings resume once cycles are healthy again"


def test_the_poll_job_coalesces_misfires_and_never_overlaps(workspace: Workspace) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from watcher.service.daemon import Service as Daemon

    workspace.write(trials=[A])
    workspace.settings.write_text(
        workspace.settings.read_text().replace("  interval: 1h\n", "  interval: 1h\n  jitter: 5m\n")
    )
    service = Daemon(load_config(workspace.settings), workspace.settings, environ={})
    service.clock.scheduler = BackgroundScheduler(timezone="UTC")
    service.clock.scheduler.start(paused=True)
    try:
        service._schedule(first=True)
        job = service.clock.scheduler.get_job("poll")
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time is None
        assert job.trigger.interval == H and job.trigger.jitter == 300
        assert {j.id for j in service.clock.scheduler.get_jobs()} == {"poll", "notify", "watch"}
    finally:
        service.clock.scheduler.shutdown(wait=False)
        service.client.close()
        service.store.close()


def test_a_rejected_settings_edit_says_to_reload_not_that_saving_is_enough(workspace: Workspace) -> None:
    from watcher.service.reload import rejection_alert

    workspace.write(trials=[A])
    config = load_config(workspace.settings)
    watchlist_text, _ = rejection_alert(config, [f"{config.watchlist.path}:2: trials[0]: 'NCT1' is not …"])
    assert "Fix the watchlist: it is picked up as soon as it is saved." in watchlist_text
    settings_text, _ = rejection_alert(config, [f"{workspace.settings}:3: schedule.interval: 'soon' is not …"])
    assert "reload the service (`systemctl reload trialwatch` or SIGHUP)" in settings_text
    assert "picked up as soon as it is saved" not in settings_text

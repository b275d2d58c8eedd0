"""`trialwatch status` and the STATUS= line, from what the service records in the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.service.status import read_status, status_lines, summary
from watcher.store import Store
from watcher.store.meta import (
    SERVICE_HEALTH,
    SERVICE_HEARTBEAT,
    SERVICE_NEXT_CYCLE,
    SERVICE_PID,
    SERVICE_STARTED,
    SERVICE_STATE,
)

A, B = "NCT04728893", "NCT03418623"


def test_status_before_any_service_run(workspace: Workspace) -> None:
    workspace.write(trials=[A, B])
    database = workspace.root / "state" / "trialwatch.sqlite"
    before = workspace.cli("status")
    assert before.code == 1, "status never creates a database (an empty one would answer wrongly)"
    assert f"no database at {database}; run `trialwatch check` first" in before.err
    assert not database.exists()
    workspace.store()  # as the service's first start makes it
    result = workspace.cli("status")
    assert result.code == 0
    assert result.out.splitlines() == [
        "service:        never started",
        "last cycle:     none yet",
        "next cycle:     - (the service is not running)",
        "trials watched: 2",
        "notifications:  0 pending, 0 parked, 0 sent",
    ]


def test_status_of_a_running_service_with_a_failing_trial(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=[A, {"id": B, "label": "quiet one"}])
    assert workspace.cli("check").code == 0
    config = load_config(workspace.settings)
    now = datetime.now(UTC)
    with Store(config.settings.storage_url) as store:
        store.trials.record_failure(B, "timeout after 3 retries")
        store.meta.update(
            SERVICE_STATE.to("running"),
            SERVICE_PID.to(4242),
            SERVICE_STARTED.to(now - timedelta(hours=2)),
            SERVICE_HEARTBEAT.to(now),
            SERVICE_NEXT_CYCLE.to(now + timedelta(hours=1)),
        )
        line = summary(2, store, next_cycle=now + timedelta(hours=1))
        status = read_status(config, store, now=now)
    assert line.startswith("2 trials watched; last cycle ") and " ok (2 checked, 0 changed, 0 failed)" in line
    assert line.endswith("; 0 notifications pending")
    text = "\n".join(status_lines(status, now=now))
    assert "service:        running (pid 4242" in text
    assert "ok  (2 checked, 0 changed, 0 failed" in text
    assert "trials watched: 2 (1 failing)" in text
    assert f"failing  {B}  1 cycles: timeout after 3 retries" in text
    data = workspace.cli("status", "--json").json()
    assert data["service"] == "running" and data["pid"] == 4242
    assert data["last_cycle"]["result"] == "ok" and data["last_cycle"]["checked"] == 2
    assert data["next_cycle"] and data["trials"] == 2
    assert data["notifications"] == {"pending": 0, "parked": 0, "sent": 0}
    assert data["failing"] == [
        {
            "nct_id": B,
            "label": "quiet one",
            "consecutive_failures": 1,
            "error": "timeout after 3 retries",
            "not_found": False,
        }
    ]


def test_a_service_that_stopped_beating_is_not_responding(workspace: Workspace) -> None:
    workspace.write(trials=[A])
    config = load_config(workspace.settings)
    with Store(config.settings.storage_url) as store:
        store.meta.set(SERVICE_STATE, "running")
        store.meta.set(SERVICE_HEARTBEAT, datetime.now(UTC) - timedelta(hours=1))
        assert read_status(config, store, now=datetime.now(UTC)).service == "not responding"


def test_status_still_works_when_the_watchlist_on_disk_is_broken(workspace: Workspace) -> None:
    workspace.write(trials=[A])
    workspace.watchlist.write_text("trials:\n  - NCT1\n")
    workspace.store()  # the database the service made before the watchlist broke
    result = workspace.cli("status")
    assert result.code == 0, result.err
    assert "watchlist:      INVALID" in result.out
    assert "watchlist.yaml:2: trials[0]: 'NCT1' is not NCT followed by 8 digits" in result.out


def test_status_check_fails_unless_the_service_runs_healthy(workspace: Workspace) -> None:
    """`status --check` is the container's health check: 0 only for a running, beating, healthy service."""
    workspace.write(trials=[A])
    assert workspace.cli("status", "--check").code == 1  # never started
    config = load_config(workspace.settings)
    with Store(config.settings.storage_url) as store:
        store.meta.update(SERVICE_STATE.to("running"), SERVICE_HEARTBEAT.to(datetime.now(UTC)), SERVICE_HEALTH.to("ok"))
    healthy = workspace.cli("status", "--check")
    assert healthy.code == 0, healthy.err
    assert healthy.out.startswith("service:        running")
    with Store(config.settings.storage_url) as store:
        store.meta.set(SERVICE_HEALTH, "cycle stuck for 2h")
    assert workspace.cli("status", "--check").code == 1
    with Store(config.settings.storage_url) as store:
        store.meta.update(SERVICE_HEALTH.to("ok"), SERVICE_HEARTBEAT.to(datetime.now(UTC) - timedelta(hours=1)))
    assert workspace.cli("status", "--check").code == 1  # not responding
    assert workspace.cli("status").code == 0  # without --check, status only reports

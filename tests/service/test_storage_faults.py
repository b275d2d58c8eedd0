"""Storage faults under a real `trialwatch run`: a full disk (SQLite under a file-size limit set on the
running process) and PostgreSQL refusing connections to the service's own database. The service must
outlive both: the cycles the fault hits fail and are logged, the next tick tries again, and the edit
made during the fault reaches the channel once it ends.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.databases import refuse_connections
from tests.support.edits import CHANGED, edit_trial
from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.servicerun import Service, fast_settings
from tests.support.workspace import REPO, Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def service_with_hook(workspace: Workspace, webhook: WebhookReceiver) -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.kill()


def _start(workspace: Workspace, webhook: WebhookReceiver, started: list[Service], storage_url: str | None) -> Service:
    workspace.write(trials=[CHANGED], channels={"hook": {"url": webhook.url()}}, storage_url=storage_url)
    fast_settings(workspace)
    service = Service(workspace, piped=True)
    started.append(service)
    service.wait_event("cycle.done", timeout=60)
    return service


def _suspended(webhook: WebhookReceiver) -> list[dict[str, Any]]:
    return [r.json() for r in list(webhook.requests) if "SUSPENDED" in r.body.decode()]


def _every_log_line_is_json(service: Service) -> None:
    for line in service.stderr_path.read_text().splitlines():
        assert line.startswith("{"), f"a log line that is not JSON: {line[:200]}"
        json.loads(line)


def _survived(service: Service, webhook: WebhookReceiver, fault_started: float) -> None:
    """After the fault: the edit arrives, cycles go on, and the process never stopped."""
    wait_until(lambda: _suspended(webhook), timeout=90)
    done = len(service.named("cycle.done"))
    wait_until(lambda: len(service.named("cycle.done")) >= done + 2, timeout=60)
    assert service.proc.poll() is None
    assert not [e for e in service.named("service.unhealthy") if "thread" in e.get("reason", "")]
    assert len(_suspended(webhook)) == 1, "delivered once"
    _every_log_line_is_json(service)
    code, _ = service.stop()
    assert code == 0


def test_a_full_disk_fails_cycles_and_the_service_goes_on_when_space_returns(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver, service_with_hook: list[Service]
) -> None:
    service = _start(workspace, webhook, service_with_hook, None)
    pid = service.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    started = time.monotonic()
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))  # no file may grow: a full disk
    try:
        fake_api.update(CHANGED, edit_trial)
        wait_until(lambda: service.named("cycle.failed") or service.named("cycle.crashed"), timeout=30)
        time.sleep(6)  # three more ticks into the full disk
        assert service.proc.poll() is None
        assert not _suspended(webhook)
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
    _survived(service, webhook, started)


@pytest.mark.postgres
def test_postgresql_refusing_connections_fails_cycles_and_the_service_goes_on_after(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
    service_with_hook: list[Service],
    pg_url: str,
) -> None:
    service = _start(workspace, webhook, service_with_hook, pg_url)
    started = time.monotonic()
    with refuse_connections(pg_url):
        fake_api.update(CHANGED, edit_trial)
        wait_until(lambda: service.named("cycle.failed") or service.named("cycle.crashed"), timeout=30)
        time.sleep(6)
        assert service.proc.poll() is None
        assert not _suspended(webhook)
    _survived(service, webhook, started)


def test_a_worker_thread_that_dies_is_logged_alerted_and_ends_the_process_non_zero(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    workspace.write(trials=[CHANGED], channels={"hook": {"url": webhook.url()}})
    fast_settings(workspace)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.faults",
            "cycle_thread_dies",
            "--",
            "--config",
            str(workspace.settings),
            "--log-format",
            "json",
            "run",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stderr.splitlines()]  # every line JSON: no raw traceback
    (died,) = [e for e in events if e["event"] == "service.thread_died"]
    assert died["thread"] == "cycle-runner" and died["level"] == "error"
    assert "RuntimeError: injected" in died["error"] and died["exception"].startswith("Traceback")
    assert [e["exit_code"] for e in events if e["event"] == "service.exiting"] == [1]
    alerts = [r.json() for r in webhook.requests if "worker thread died" in r.json()["title"]]
    assert len(alerts) == 1, proc.stderr[-3000:]
    (alert,) = alerts
    assert "cycle-runner" in alert["message"] and "RuntimeError: injected" in alert["message"]
    assert "Traceback" not in alert["message"]

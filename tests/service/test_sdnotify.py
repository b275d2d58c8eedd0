"""sd_notify over a real AF_UNIX datagram socket, path and abstract names."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest

import watcher.store
from tests.support.peers import wait_until
from tests.support.servicerun import NotifySocket
from tests.support.workspace import Workspace
from watcher.config import load_config
from watcher.service import daemon, sdnotify
from watcher.service.sdnotify import Notifier, socket_address, watchdog_period


def test_socket_addresses() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abstract/name") == "\0abstract/name"
    assert socket_address(None) is None
    assert socket_address("") is None
    assert socket_address("vsock:2:1234") is None


def test_watchdog_period_is_half_of_watchdog_usec_and_only_for_its_pid() -> None:
    assert watchdog_period({"WATCHDOG_USEC": "10000000"}) == timedelta(seconds=5)
    assert watchdog_period({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) == timedelta(seconds=5)
    assert watchdog_period({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_period({}) is None
    assert watchdog_period({"WATCHDOG_USEC": "0"}) is None


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready("x") is False
    notifier.close()


@pytest.mark.parametrize("abstract", [False, True])
def test_messages_arrive_as_systemd_reads_them(abstract: bool) -> None:
    sock = NotifySocket.open(abstract=abstract)
    notifier = Notifier({"NOTIFY_SOCKET": sock.address})
    try:
        assert notifier.ready("2 trials watched\nsecond line")
        assert notifier.watchdog()
        assert notifier.reloading()
        assert notifier.stopping("Stopping", extend=timedelta(seconds=40))
        wait_until(lambda: len(sock.messages) == 4)
        ready, ping, reloading, stopping = sock.assignments()
        assert ready == {"READY": "1", "STATUS": "2 trials watched second line"}
        assert ping == {"WATCHDOG": "1"}
        assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
        assert stopping == {"STOPPING": "1", "STATUS": "Stopping", "EXTEND_TIMEOUT_USEC": "40000000"}
    finally:
        notifier.close()
        sock.close()


def test_a_vanished_socket_does_not_crash_the_service() -> None:
    sock = NotifySocket.open()
    notifier = Notifier({"NOTIFY_SOCKET": sock.address})
    sock.close()
    assert notifier.status("still here") is False
    notifier.close()


def test_a_slow_start_up_step_keeps_extending_the_start_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdnotify, "EXTEND_EVERY", timedelta(seconds=0.05))
    sock = NotifySocket.open()
    notifier = Notifier({"NOTIFY_SOCKET": sock.address})
    try:
        with notifier.starting_slowly("Opening the database"):
            wait_until(lambda: len(sock.messages) >= 2)
        sent = len(sock.messages)
        assert sock.assignments()[0] == {"STATUS": "Opening the database", "EXTEND_TIMEOUT_USEC": "100000"}
        time.sleep(0.2)
        assert len(sock.messages) == sent, "nothing once the step is over"
        with notifier.starting_slowly("quick"):
            pass
        time.sleep(0.1)
        assert len(sock.messages) == sent, "a step shorter than the period sends nothing"
    finally:
        notifier.close()
        sock.close()


def test_the_service_extends_its_start_while_the_database_upgrades(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TimeoutStartSec would kill a long schema upgrade midway, and each restart would begin it again."""
    monkeypatch.setattr(sdnotify, "EXTEND_EVERY", timedelta(seconds=0.05))

    class SlowUpgrade(watcher.store.Store):
        def upgrade(self) -> list[str]:
            time.sleep(0.3)
            return super().upgrade()

    monkeypatch.setattr(watcher.store, "Store", SlowUpgrade)
    sock = NotifySocket.open()
    service = daemon.Service(
        load_config(workspace.settings), workspace.settings, environ={"NOTIFY_SOCKET": sock.address}
    )
    try:
        extended = [m for m in sock.assignments() if "EXTEND_TIMEOUT_USEC" in m]
        assert len(extended) >= 3 and all("schema upgrade" in m["STATUS"] for m in extended)
    finally:
        service.client.close()
        service.store.close()
        service.sd.close()
        sock.close()

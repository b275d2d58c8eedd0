"""sd_notify over a real AF_UNIX datagram socket, path and abstract names."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from tests.support.peers import wait_until
from tests.support.servicerun import NotifySocket
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

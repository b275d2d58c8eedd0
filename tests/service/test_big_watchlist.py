"""Reading a huge watchlist edit takes its time off the loop that feeds systemd's watchdog: the pings
go on while it is read (a million entries take minutes; here 50,000, several seconds)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.servicerun import NotifySocket, Service, fast_settings
from tests.support.workspace import Workspace

A = "NCT04728893"
ENTRIES = 50_000
WATCHDOG_S = 1.0


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket.open()
    try:
        yield sock
    finally:
        sock.close()


@pytest.mark.slow
def test_the_watchdog_is_fed_while_a_huge_watchlist_is_read(
    workspace: Workspace, fake_api: FakeCtGov, notify: NotifySocket
) -> None:
    workspace.write(trials=[A])
    fast_settings(workspace)
    # many valid entries and one broken at the end: read whole, then rejected (nothing to poll)
    huge = "trials:\n" + "".join(f"  - NCT{n:08d}\n" for n in range(10_000_000, 10_000_000 + ENTRIES)) + "  - NCT1\n"
    service = Service(workspace, notify=notify, env={"WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))})
    try:
        service.wait_event("cycle.done", timeout=90)
        saved = time.monotonic()
        workspace.watchlist.write_text(huge)
        rejected = service.wait_event("watchlist.rejected", timeout=300)[0]
        done = time.monotonic()
        assert any("NCT1" in p for p in rejected["problems"]) and rejected["kept_trials"] == 1
        pings = [t for t, text in notify.messages if text == "WATCHDOG=1" and saved <= t <= done]
        gaps = [b - a for a, b in itertools.pairwise([saved, *pings, done])]
        assert done - saved > 2 * WATCHDOG_S, "the read was too quick to show anything"
        assert max(gaps) < WATCHDOG_S, f"the watchdog went unfed for {max(gaps):.1f} s while the file was read"
        assert service.stop()[0] == 0
    finally:
        service.kill()

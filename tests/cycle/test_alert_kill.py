"""kill -9 between a failure count and its alert, then restart: the alert arrives, once.

The in-process cases (`test_alert_transactions`) cover every kind of alert; this one kills a real
`trialwatch check` process inside the transaction, so SQLite itself rolls the half-written state back.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.workspace import REPO, Workspace

pytestmark = pytest.mark.slow

GOOD, BAD = "NCT04728893", "NCT03418623"


def killed_at(workspace: Workspace, point: str) -> None:
    """Run `check` as a real process (`tests.support.crashpoint`) and kill -9 it where it stops at `point`."""
    marker = workspace.root / f"{point}.pid"
    command = [
        sys.executable,
        "-m",
        "tests.support.crashpoint",
        point,
        str(marker),
        "--",
        "--config",
        str(workspace.settings),
    ]
    proc = subprocess.Popen(
        [*command, "check"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(marker.exists, timeout=60)
        assert int(marker.read_text()) == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def stored(workspace: Workspace) -> tuple[int | None, list[str]]:
    """BAD's failure count and the kinds of the messages queued, straight from the database file."""
    with sqlite3.connect(workspace.root / "state" / "trialwatch.sqlite") as db:
        row = db.execute("SELECT consecutive_failures FROM trials WHERE nct_id = ?", (BAD,)).fetchone()
        kinds = [kind for (kind,) in db.execute("SELECT kind FROM outbox ORDER BY id")]
    db.close()
    return (row[0] if row else None), kinds


def test_killed_before_the_alert_was_queued_the_failure_count_is_not_kept_without_it(
    workspace: Workspace, fake_api: FakeCtGov, webhook: WebhookReceiver
) -> None:
    workspace.write(
        trials=[GOOD, BAD],
        channels={"hook": {"url": webhook.url()}},
        api={"max_retries": 0, "backoff_base": 0.01, "backoff_max": 0.01},
        extra="notify:\n  failure_alert_after: 2\n",
    )
    fake_api.fail("wrong_id", ids=[BAD], times=1000)
    assert workspace.process("check").code == 1
    assert stored(workspace) == (1, []), "one failure: counted, not alerted"

    killed_at(workspace, "before_alert")  # the cycle that counts BAD's second failure
    assert stored(workspace) == (1, []), "neither the second failure nor its alert survived the kill"

    assert workspace.process("check").code == 1
    assert [r.json()["title"] for r in webhook.requests] == [f"{BAD}: failing for 2 cycles"]
    assert stored(workspace) == (2, ["alert"])
    assert workspace.process("check").code == 1
    assert len(webhook.requests) == 1, "alerted once"

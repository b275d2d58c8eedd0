"""Processes sharing one database: CLI commands beside the service on SQLite, and two services on
PostgreSQL that never poll a trial twice in one cycle nor notify a change twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.fakeapi import FakeCtGov
from tests.support.peers import WebhookReceiver, wait_until
from tests.support.workspace import REPO, Workspace
from watcher.store import Store

TRIALS = ("NCT04728893", "NCT03418623", "NCT06171568")

pytestmark = pytest.mark.slow


@contextmanager
def service(workspace: Workspace, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """`trialwatch run` as a real process; stopped with SIGTERM (its logs are in <root>/<name>.log)."""
    log = (workspace.root / f"{name}.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "--config", str(workspace.settings), "--log-format", "json", "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


def suspend(study: dict[str, Any]) -> None:
    study["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"


def enroll(count: int) -> Any:
    def edit(study: dict[str, Any]) -> None:
        study["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = count

    return edit


def checked(url: str) -> int:
    with Store(url) as store:
        return sum(1 for s in store.trials.states().values() if s.last_checked_at is not None)


def test_cli_commands_work_while_the_service_writes_sqlite(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=list(TRIALS), interval="1s")
    with service(workspace, "run") as proc:
        wait_until(
            lambda: (
                Path(workspace.db_url.removeprefix("sqlite:///")).exists() and checked(workspace.db_url) == len(TRIALS)
            ),
            timeout=60,
        )
        deadline = time.monotonic() + 8
        rounds = 0
        while time.monotonic() < deadline:
            fake_api.update(TRIALS[0], enroll(500 + rounds))  # the service stores a version every cycle or so
            for args in (
                ("history", TRIALS[0], "--json"),
                ("changes", "--json"),
                ("list", "--json"),
                ("diff", TRIALS[0], "--from", "1", "--to", "2099-01-01"),
                ("db", "stats"),
            ):
                result = workspace.cli(*args)
                assert result.code == 0, (args, result.err)
            rounds += 1
        assert proc.poll() is None, "the service is still running"
        from_process = workspace.process("changes", "--json", "--field", "design.enrollmentCount")
        assert from_process.code == 0, from_process.err
        assert from_process.json(), "changes the service stored are visible to another process"
    assert rounds >= 3


@pytest.mark.postgres
def test_two_services_on_one_postgresql_notify_each_change_once(
    workspace: Workspace,
    fake_api: FakeCtGov,
    webhook: WebhookReceiver,
    pg_url: str,
) -> None:
    workspace.write(trials=list(TRIALS), channels={"hook": {"url": webhook.url()}}, storage_url=pg_url, interval="1s")
    Store(pg_url).close()  # schema first, so both services start on a current database
    with service(workspace, "a") as first, service(workspace, "b") as second:
        wait_until(lambda: checked(pg_url) == len(TRIALS), timeout=60)
        edits = [(TRIALS[0], suspend), (TRIALS[1], enroll(777)), (TRIALS[2], suspend), (TRIALS[0], enroll(901))]
        for number, (nct_id, edit) in enumerate(edits, start=1):
            fake_api.update(nct_id, edit)
            wait_until(lambda n=number: len(webhook.requests) >= n, timeout=60)
        time.sleep(4)  # several more cycles of both services: nothing is sent again
        assert first.poll() is None and second.poll() is None
    bodies = [r.json() for r in webhook.requests]
    assert len(bodies) == len(edits), [b.get("title") for b in bodies]
    assert [TRIALS[0], TRIALS[1], TRIALS[2], TRIALS[0]] == [
        next(t for t in TRIALS if t in b.get("title", "") + b.get("message", "")) for b in bodies
    ]

    engine = create_engine(pg_url)
    with engine.connect() as conn:
        cycles = conn.execute(
            text("SELECT started_at, finished_at FROM cycles WHERE finished_at IS NOT NULL ORDER BY started_at")
        ).all()
        versions = conn.execute(text("SELECT nct_id, count(*) FROM snapshots GROUP BY nct_id ORDER BY 1")).all()
    engine.dispose()
    assert len(cycles) > len(edits), "a baseline cycle and at least one cycle per edit"
    for (_, end), (start, _) in pairwise(cycles):
        assert end <= start, f"cycles of the two services never overlap: {cycles}"
    assert dict(versions) == {TRIALS[0]: 3, TRIALS[1]: 2, TRIALS[2]: 2}, "each version stored once"
    logs = (workspace.root / "a.log").read_text() + (workspace.root / "b.log").read_text()
    per_service = {name: (workspace.root / f"{name}.log").read_text().count('"cycle.done"') for name in "ab"}
    skipped = logs.count('"cycle.locked"')
    print(
        f"\ntwo services on one PostgreSQL: {len(edits)} edits → {len(bodies)} webhook POSTs; "
        f"{len(cycles)} cycles (a: {per_service['a']}, b: {per_service['b']}), none overlapping; "
        f"{skipped} cycle starts skipped while the other held the lock; versions {dict(versions)}"
    )


WRITER = """
import sys
from datetime import UTC, datetime
from watcher.detect.record import content_hash
from watcher.store import Store

url, tag = sys.argv[1], sys.argv[2]
store = Store(url, create=False)
for n in range(40):
    record = {"protocolSection": {"identificationModule": {"nctId": "NCT04728893", "briefTitle": f"{tag} {n}"}}}
    store.versions.save("NCT04728893", record, fetched_at=datetime.now(UTC), digest=content_hash(record),
                       changes=(), baseline=False)
store.close()
"""


def test_two_processes_saving_versions_of_one_trial_never_collide(db_url: str) -> None:
    """A hand-run `check` or `backfill` beside the service: both allocate version numbers of the
    same trial. Each save must succeed and the numbers stay unique and gap-free."""
    Store(db_url).close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, db_url, tag], env=env, stderr=subprocess.PIPE)
        for tag in ("service", "cli")
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    with Store(db_url) as store:
        versions = [info.version for info in store.versions.infos("NCT04728893")]
    assert versions == list(range(1, 81))

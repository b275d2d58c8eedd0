"""A SQLite database that was there: deleted, the service refuses to start rather than re-baseline every
trial in silence; damaged, the start's quick check refuses it, `doctor` runs the full integrity check,
and `db stats` says so in one line."""

from __future__ import annotations

import random

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.servicerun import Service, fast_settings
from tests.support.workspace import Workspace

pytestmark = pytest.mark.slow

A, B, C = "NCT04728893", "NCT03418623", "NCT06171568"


def _ran_once(workspace: Workspace) -> None:
    workspace.write(trials=[A, B, C])
    fast_settings(workspace)
    service = Service(workspace)
    try:
        service.wait_event("cycle.done", timeout=60)
        assert service.stop()[0] == 0
    finally:
        service.kill()


def test_a_deleted_database_is_refused_at_start_until_the_marker_is_removed(
    workspace: Workspace, fake_api: FakeCtGov
) -> None:
    _ran_once(workspace)
    state = workspace.root / "state"
    marker = state / "trialwatch.installed"
    assert marker.is_file() and oct(marker.stat().st_mode & 0o777) == "0o600"
    for path in state.glob("trialwatch.sqlite*"):
        path.unlink()

    refused = workspace.process("run", timeout=60)
    assert refused.code == 1
    assert "trialwatch.sqlite is gone" in refused.err and "Restore it from a backup" in refused.err
    assert str(marker) in refused.err and "Traceback" not in refused.err
    assert not (state / "trialwatch.sqlite").exists(), "no empty database was made"

    marker.unlink()  # starting afresh, on purpose
    _ran_once(workspace)
    assert marker.is_file()


def test_a_damaged_database_is_refused_at_start_and_found_by_doctor_and_db_stats(
    workspace: Workspace, fake_api: FakeCtGov
) -> None:
    _ran_once(workspace)
    database = workspace.root / "state" / "trialwatch.sqlite"
    pages = database.stat().st_size // 4096
    assert pages > 20
    with database.open("r+b") as f:  # four pages of the data overwritten: a torn write, a bad disk
        f.seek(pages // 2 * 4096)
        f.write(random.Random(1).randbytes(4 * 4096))

    started = workspace.process("run", timeout=60)
    assert started.code == 1, started.err
    assert "is damaged (PRAGMA quick_check:" in started.err and "Traceback" not in started.err

    doctor = workspace.process("doctor", timeout=120)
    assert doctor.code == 1
    (line,) = [x for x in doctor.out.splitlines() if x.split()[1:2] == ["database"]]
    assert line.startswith("FAILED") and "trialwatch.sqlite" in line

    stats = workspace.process("db", "stats", timeout=60)
    assert stats.code == 1 and len(stats.err.strip().splitlines()) == 1, stats.err
    assert ("is damaged (PRAGMA quick_check:" in stats.err or "malformed" in stats.err) and "Traceback" not in stats.err

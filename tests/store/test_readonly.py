"""A state directory the user cannot write: reading commands work, writing ones say why they cannot.

Permission bits do not stop root, and the suite usually runs as root, so the commands run as a real
process of an unprivileged user (`setpriv` to `nobody`); run by anyone else, the bits alone do it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import sqlite_file
from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import REPO, Result, Workspace

pytestmark = pytest.mark.slow  # real processes

NCT = "NCT04728893"


def _reader_prefix() -> list[str]:
    """The argv prefix that runs a command as a user who cannot write the state directory."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root, and setpriv (util-linux) is missing: no way to drop to a user that permission bits stop"
        )
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root, and there is no user 'nobody' to run the commands as")
    prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import sqlalchemy"],
        capture_output=True,
        check=False,
        cwd="/",
        env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "")},
    )
    if probe.returncode != 0:
        pytest.skip(f"'nobody' cannot run {sys.executable} here: {probe.stderr.decode()[-200:]}")
    return prefix


class ReadOnlyState:
    """A workspace whose state directory and database were written, then made read-only."""

    def __init__(self, workspace: Workspace, prefix: list[str]) -> None:
        self.workspace = workspace
        self.prefix = prefix
        self.state = workspace.root / "state"
        self.database = self.state / "trialwatch.sqlite"
        self.user = "nobody" if prefix else pwd.getpwuid(os.geteuid()).pw_name

    def lock(self) -> None:
        for path in self.state.iterdir():
            path.chmod(0o444)
        self.state.chmod(0o555)

    def unlock(self) -> None:
        self.state.chmod(0o755)
        for path in self.state.iterdir():
            path.chmod(0o644)

    def run(self, *args: str) -> Result:
        env = {"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"}
        proc = subprocess.run(
            [*self.prefix, sys.executable, "-m", "watcher", "--config", str(self.workspace.settings), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            timeout=120,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def read_only_state(fake_api: FakeCtGov) -> Iterator[ReadOnlyState]:
    prefix = _reader_prefix()
    root = Path(tempfile.mkdtemp(prefix="tw-ro-"))  # not pytest's tmp_path: its parents are private to root
    root.chmod(0o755)
    workspace = Workspace(root, fake_api.base_url)
    workspace.write(trials=[{"id": NCT, "label": "Nemtabrutinib CLL"}])
    ro = ReadOnlyState(workspace, prefix)
    try:
        assert workspace.process("check").code == 0
        fake_api.update(NCT, lambda s: s["protocolSection"]["statusModule"].__setitem__("overallStatus", "SUSPENDED"))
        assert workspace.process("check").code == 0
        for path in root.iterdir():
            path.chmod(0o755 if path.is_dir() else 0o644)
        ro.lock()
        yield ro
    finally:
        ro.unlock()
        shutil.rmtree(root, ignore_errors=True)


def test_reading_commands_work_on_a_state_directory_the_user_cannot_write(read_only_state: ReadOnlyState) -> None:
    ro = read_only_state
    assert not (ro.state / "trialwatch.sqlite-wal").exists()  # the hard case: SQLite cannot make its WAL files

    expected = {
        ("status",): "trials watched: 1",
        ("list",): NCT,
        ("history", NCT): "RECRUITING → SUSPENDED",
        ("diff", NCT): "RECRUITING → SUSPENDED",
        ("show", NCT): "Nemtabrutinib",
        ("changes", "--since", "7d"): "SUSPENDED",
        ("feed",): "<feed",
        ("db", "stats"): "versions:          2",
    }
    for args, text in expected.items():
        result = ro.run(*args)
        assert result.code == 0, (args, result)
        assert text in result.out, (args, result.out)
    assert sorted(p.name for p in ro.state.iterdir()) == sorted(
        ["trialwatch.sqlite", "trialwatch.sqlite.migrate-lock", "trialwatch.sqlite.writer.lock"]
    )


def test_writing_commands_say_the_directory_is_not_writable_naming_path_and_user(
    read_only_state: ReadOnlyState,
) -> None:
    ro = read_only_state
    for args in (("check",), ("db", "upgrade"), ("db", "prune"), ("backfill", NCT), ("notify-retry",), ("run",)):
        result = ro.run(*args)
        assert result.code == 1, (args, result)
        assert f"the state directory {ro.state} is not writable by user {ro.user} (uid " in result.err, (args, result)
        assert "unable to open database file" not in result.err and "Traceback" not in result.err


def test_a_read_only_database_file_in_a_writable_directory_is_named(read_only_state: ReadOnlyState) -> None:
    ro = read_only_state
    ro.state.chmod(0o777)  # the directory is writable by anyone; the file still is not

    assert ro.run("history", NCT).code == 0
    result = ro.run("check")
    assert result.code == 1
    assert f"the database file {ro.database} is not writable by user {ro.user}" in result.err


def test_a_database_that_needs_an_upgrade_is_not_upgraded_by_a_reader(read_only_state: ReadOnlyState) -> None:
    from watcher.store.migrate import FIRST, head_revision

    ro = read_only_state
    ro.unlock()
    with sqlite_file(ro.database) as conn:  # as if written by an older TrialWatch
        conn.execute("UPDATE alembic_version SET version_num = ?", (FIRST,))
    ro.lock()

    result = ro.run("status")

    assert result.code == 1
    assert (
        f"needs a schema upgrade ({FIRST} → {head_revision()}), but the state directory {ro.state} "
        f"is not writable by user {ro.user}" in result.err
    )
    assert "trialwatch db upgrade" in result.err


def test_a_reader_sees_the_newest_commit_while_the_writer_holds_the_database(
    read_only_state: ReadOnlyState, fake_api: FakeCtGov
) -> None:
    ro = read_only_state
    ro.unlock()
    writer = sqlite3.connect(ro.database)  # the service: its WAL and shared-memory files exist meanwhile
    try:
        writer.execute("SELECT count(*) FROM snapshots").fetchone()
        fake_api.update(NCT, lambda s: s["protocolSection"]["statusModule"].__setitem__("overallStatus", "COMPLETED"))
        assert ro.workspace.process("check").code == 0
        assert (ro.state / "trialwatch.sqlite-wal").exists()
        ro.lock()

        result = ro.run("history", NCT)
    finally:
        writer.close()

    assert result.code == 0, result
    assert "SUSPENDED → COMPLETED" in result.out

"""The SQLite database and its WAL and shared-memory files are created 0600 whatever the umask (the
last-good watchlist copy already is); the writer lock refuses a symlink planted in its place."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from watcher.errors import StorageError
from watcher.store import Store
from watcher.store.locks import file_lock


def test_the_database_and_its_wal_and_shm_are_0600_under_a_permissive_umask(tmp_path: Path) -> None:
    database = tmp_path / "state" / "trialwatch.sqlite"
    old = os.umask(0o022)
    try:
        with Store(f"sqlite:///{database}"):
            files = sorted(database.parent.glob("trialwatch.sqlite*"))
            names = {p.name for p in files}
            assert {"trialwatch.sqlite", "trialwatch.sqlite-wal", "trialwatch.sqlite-shm"} <= names, names
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files if not p.name.endswith(".lock")}
    finally:
        os.umask(old)
    assert set(modes.values()) == {0o600}, modes


def test_the_writer_lock_refuses_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    lock = tmp_path / "trialwatch.sqlite.writer.lock"
    lock.symlink_to(victim)
    with pytest.raises(StorageError, match="lock file"), file_lock(lock):
        pass
    assert victim.read_text() == "keep\n" and lock.is_symlink()

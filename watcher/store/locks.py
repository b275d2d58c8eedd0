"""Locks between processes: a cycle or backfill at a time (PostgreSQL advisory locks), one writer
of version numbers at a time (a file lock beside a SQLite database), one service per SQLite file."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import StorageError
from watcher.store.connection import sqlite_path, unwritable
from watcher.store.failures import database_error

LOCK_KEYS: Mapping[str, int] = {"cycle": 0x7457_0002, "backfill": 0x7457_0003}


@contextmanager
def advisory_lock(engine: Engine, name: str, *, wait: bool = False) -> Iterator[bool]:
    """Hold a named PostgreSQL advisory lock for the block; yields whether it was got.

    On PostgreSQL, processes sharing a database take turns (a cycle, a backfill); the lock
    lives on its own connection, so it goes away with a crashed process. On SQLite this
    is a no-op that always yields True: one machine, one service.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = LOCK_KEYS[name]
    url = engine.url.render_as_string(hide_password=False)
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise database_error(url, exc) from exc
    try:
        try:
            if wait:
                conn.execute(select(func.pg_advisory_lock(key)))
                got = True
            else:
                got = bool(conn.execute(select(func.pg_try_advisory_lock(key))).scalar())
            conn.commit()
        except SQLAlchemyError as exc:
            raise database_error(url, exc) from exc
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(select(func.pg_advisory_unlock(key)))
                    conn.commit()
                except SQLAlchemyError:
                    conn.invalidate()  # a connection closed for good holds no lock; a pooled one would
    finally:
        conn.close()


def _open_lock_file(path: Path) -> int:
    try:
        # O_NOFOLLOW: a symlink planted where the lock file goes is refused, not followed to its target
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        problem = unwritable(path, what="lock file") or f"the state directory {path.parent} must be writable"
        raise StorageError(f"{problem}; cannot open the lock file {path}: {exc.strerror}") from exc


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created if needed) for the block: processes take turns."""
    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


class WriterLock:
    """One writer of version numbers at a time on a SQLite file, across processes and threads.

    SQLite has no row locks; two processes (the service and a hand-run `check`, `backfill` or
    `db prune`) that both read a trial's newest version and insert the next would collide. The
    writer lock is a `file_lock` on `<database>.writer.lock` held for the whole transaction,
    re-entrant within a thread. PostgreSQL needs none of this: it locks per trial inside the transaction.
    """

    def __init__(self, database: Path | None) -> None:
        self._path = database.with_name(database.name + ".writer.lock") if database else None
        self._lock = threading.RLock()
        self._depth = 0
        self._held = ExitStack()

    @contextmanager
    def held(self) -> Iterator[None]:
        if self._path is None:
            yield
            return
        with self._lock:
            if self._depth == 0:
                self._held.enter_context(file_lock(self._path))
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._held.close()


@contextmanager
def service_lock(url: str) -> Iterator[None]:
    """Hold the right to run *the* service of a SQLite database; StorageError names the holder.

    Two `trialwatch run` on one SQLite file would each believe they are the service (and `status`
    would say "stopped" when either stops). PostgreSQL deployments may run several services on
    purpose (they take turns per cycle), so this applies to SQLite only.
    """
    database = sqlite_path(url)
    if database is None:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    path = database.with_name(database.name + ".service.lock")
    fd = _open_lock_file(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            raise StorageError(
                f"another `trialwatch run` ({holder}) is already the service of {database}; stop it first "
                "(e.g. `systemctl stop trialwatch`) or give this one another storage.url"
            ) from None
        with contextlib.suppress(OSError):  # who holds it is a courtesy: a full disk must not stop the start
            os.ftruncate(fd, 0)
            os.write(
                fd, json.dumps({"pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}).encode()
            )
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {found['pid']}, since {found['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"


def trial_lock_key(nct_id: str) -> int:
    """A PostgreSQL advisory-lock key of one trial: 'tW' in the high bits, the NCT number below."""
    digits = "".join(ch for ch in nct_id if ch.isdigit())[:8] or "0"
    return (0x7457 << 32) | int(digits)

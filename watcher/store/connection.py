"""The database engine: opening it, SQLite's settings, its URL fit for logs, locks between processes."""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from watcher.errors import StorageError

LOCK_KEYS: Mapping[str, int] = {"cycle": 0x7457_0002, "backfill": 0x7457_0003}


def redact_db_url(url: str) -> str:
    """A database URL fit for logs: the password replaced by ***, host, port and path kept.

    Not `watcher.config.secrets.redact_url`, which hides everything after the host of an
    apprise URL: here the database's host and file path are what an operator needs to see.
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<invalid database URL>"


def open_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; a SQLite file's folder is created, and WAL and a busy timeout set.

    `read_only` (SQLite only) opens an existing file with `mode=ro`, for reading a state
    directory the user cannot write (see `read_only_creator`).
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    database = sqlite_path(url)
    if read_only and database is not None:
        kwargs["creator"] = read_only_creator(database)
    elif parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except ImportError as exc:
        hint = (
            " (PostgreSQL needs the driver: pip install 'trialwatch[postgres]')"
            if parsed.get_backend_name() == "postgresql"
            else ""
        )
        raise StorageError(f"cannot open database {redact_db_url(url)}: {exc}{hint}") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot open database {redact_db_url(url)}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_read_only_pragmas if read_only else _sqlite_pragmas)
    return engine


def read_only_creator(database: Path) -> Any:
    """Connections to a SQLite file this process may only read.

    A WAL database is read through its `-wal` and `-shm` files. While a writer (the service) has
    them open they exist and `mode=ro` reads the newest commit. When none exists (no writer since
    the last clean close) and the folder is not writable, SQLite cannot create them and refuses
    `mode=ro`; then the file holds every commit, and `immutable=1` reads it without them.
    """
    if not database.is_file():
        problem = unwritable(database) or "this command only reads"
        raise StorageError(
            f"there is no database at {database} yet, and {problem}; "
            "run `trialwatch check` (or the service) once as a user who can write there"
        )
    uri = f"file:{quote(str(database.resolve()))}?mode=ro"
    wal = database.with_name(database.name + "-wal")
    if not wal.exists() and not os.access(database.parent, os.W_OK | os.X_OK):
        uri += "&immutable=1"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)

    return connect


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def current_user() -> str:
    """`name (uid N)` of the user this process runs as, for errors about permissions."""
    uid = os.geteuid()
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            name = "?"
    return f"{name} (uid {uid})"


def unwritable(database: Path, *, what: str = "database file") -> str | None:
    """What stops this process writing the SQLite file `database` (its folder, or the file), or None.

    SQLite writes beside the file too (`-wal`, `-shm`, our lock files), so the folder must be
    writable as well. `os.access` asks the kernel, so read-only mounts and immutable files count
    even for root.
    """
    folder = database.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != folder:
        if not os.access(existing, os.W_OK | os.X_OK):
            return (
                f"the state directory {folder} cannot be created: {existing} is not writable by user {current_user()}"
            )
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the state directory {folder} is not writable by user {current_user()}"
    if database.exists() and not os.access(database, os.W_OK):
        return f"the {what} {database} is not writable by user {current_user()}"
    return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


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
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise StorageError(f"database error on {engine.url.render_as_string(hide_password=True)}: {exc}") from exc
    try:
        if wait:
            conn.execute(select(func.pg_advisory_lock(key)))
            got = True
        else:
            got = bool(conn.execute(select(func.pg_try_advisory_lock(key))).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(select(func.pg_advisory_unlock(key)))
                conn.commit()
    finally:
        conn.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


def _open_lock_file(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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
        os.ftruncate(fd, 0)
        os.write(
            fd, json.dumps({"pid": os.getpid(), "since": datetime.now(UTC).isoformat(timespec="seconds")}).encode()
        )
        try:
            yield
        finally:
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

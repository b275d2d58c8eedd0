"""The database engine: opening it, SQLite's settings, its URL fit for logs, what stops writing it,
and `probe_database` (`check-config`: is `storage.url` usable?).

Locks between processes are `watcher.store.locks`; what a database failure means to a user,
`watcher.store.failures`.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from watcher.errors import StorageError


def redact_db_url(url: str) -> str:
    """A database URL fit for logs: the password replaced by ***, host, port and path kept.

    Not `watcher.config.secrets.redact_url`, which hides everything after the host of an
    apprise URL: here the database's host and file path are what an operator needs to see.
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<invalid database URL>"


def create_private(database: Path) -> None:
    """Create a missing SQLite file as 0600 before SQLite does (it would use the umask, 0644 by
    default). SQLite gives its `-wal`, `-shm` and `-journal` files the mode of the database file, so
    they are 0600 too: the database holds watched trials, channel names and message bodies."""
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # SQLite's own open reports why, with the database's name
    os.close(fd)


def open_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; a SQLite file's folder is created, and WAL and a busy timeout set.

    `read_only` opens an existing SQLite file with `mode=ro` (see `read_only_creator`), and a
    PostgreSQL session with `default_transaction_read_only` (the web view reads beside the service).
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True, "json_serializer": json_without_nul}
    database = sqlite_path(url)
    if read_only and database is not None:
        kwargs["creator"] = read_only_creator(database)
    elif parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            create_private(Path(parsed.database).expanduser())
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        if read_only and parsed.get_backend_name() == "postgresql":  # every transaction refuses writes
            kwargs["connect_args"] = {"options": "-c default_transaction_read_only=on"}
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


def without_nul(value: Any) -> Any:
    """`value` with NUL characters dropped from every string in it (keys too)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


def json_without_nul(value: Any) -> str:
    """JSON columns' serializer: PostgreSQL refuses `\\u0000` in a JSON string (SQLite keeps it), and a
    record may carry one; it is dropped on every backend alike, so both store the same."""
    text = json.dumps(value)
    return json.dumps(without_nul(value)) if "\\u0000" in text else text


def read_only_creator(database: Path) -> Any:
    """Connections to a SQLite file this process may only read.

    A WAL database is read through its `-wal` and `-shm` files. While a writer (the service) has
    them open they exist and `mode=ro` reads the newest commit. When none exists (no writer since
    the last clean close) and the folder is not writable, SQLite cannot create them and refuses
    `mode=ro`; then the file holds every commit, and `immutable=1` reads it without them.
    """
    if database.is_dir():
        raise StorageError(
            f"cannot read the database sqlite:///{database}: {database} is a folder: set storage.url to a file, "
            "or move the folder away"
        )
    if not database.exists():
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


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


# -- `check-config`'s look at storage.url: scheme, driver, reachable; nothing created or changed --

CONNECT_TIMEOUT_S = 5


def probe_database(url: str) -> tuple[str | None, str]:
    """(problem, note): `problem` says what is wrong with the URL or the database (None when nothing
    is), `note` what was found (`reachable`, `not created yet: the first check creates it`). Nothing
    is created or changed."""
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        return f"unknown database scheme {url.split('://', 1)[0]!r} (sqlite:///path or postgresql+psycopg://…)", ""
    except (ArgumentError, ValueError):
        return f"{redact_db_url(url)} is not a database URL such as sqlite:///path or postgresql+psycopg://…", ""
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        extra = " (pip install 'trialwatch[postgres]')" if parsed.get_backend_name() == "postgresql" else ""
        return f"the driver for {parsed.drivername!r} is not installed: {exc}{extra}", ""
    database = sqlite_path(url)
    if database is not None and not database.is_file():
        problem = unwritable(database)
        return problem, "" if problem else f"no database at {database} yet: the first `check` creates it"
    return _connect(url, database is not None)


def _connect(url: str, sqlite: bool) -> tuple[str | None, str]:
    database = sqlite_path(url)
    if database is not None:
        engine = create_engine(url, creator=read_only_creator(database))
    else:
        args = {"connect_timeout": CONNECT_TIMEOUT_S} if make_url(url).get_backend_name() == "postgresql" else {}
        engine = create_engine(url, connect_args=args)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        from watcher.store.failures import reason

        return f"cannot reach {redact_db_url(url)}: {reason(exc, url)}", ""
    finally:
        engine.dispose()
    return None, "reachable" if not sqlite else "exists, readable"

"""The database engine: opening it, SQLite's settings, its URL fit for logs, locks between processes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def open_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is created, and WAL and a busy timeout set."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except ImportError as exc:
        hint = (" (PostgreSQL needs the driver: pip install 'trialwatch[postgres]')"
                if parsed.get_backend_name() == "postgresql" else "")
        raise StorageError(f"cannot open database {redact_db_url(url)}: {exc}{hint}") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot open database {redact_db_url(url)}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


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

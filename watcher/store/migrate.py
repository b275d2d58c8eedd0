"""Schema migrations: Alembic, driven in-process from `Store` and `trialwatch db upgrade`.

The revisions live in `watcher/store/migrations/versions/`; 0001 is the first schema exactly as
`create_all` made it, so databases created before Alembic upgrade like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import Engine

from watcher.store.connection import sqlite_path
from watcher.store.locks import file_lock

log = structlog.get_logger("watcher.store.migrate")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST = "0001"
_LOCK_KEY = 0x7457_0001  # pg advisory lock id for migrations ("tW", 1)


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions in {MIGRATIONS}")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_behind(engine: Engine) -> str | None:
    """None when the schema is the newest; else what an upgrade would do, e.g. `0004 → 0006`.

    For a database that may only be read: it is read as it is, never upgraded in passing.
    """
    head = head_revision()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None and not inspect(conn).get_table_names():
            return f"empty → {head}"
    if current == head:
        return None
    return f"{current or 'the first schema'} → {head}"


def upgrade_schema(engine: Engine, target: str = "head") -> list[str]:
    """Upgrade to `target` (default: the newest revision); returns the revisions applied."""
    head = head_revision() if target == "head" else target
    if current_revision(engine) == head:
        return []
    with _sqlite_file_lock(engine):
        return _upgrade(engine, head, target)


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Processes opening a new SQLite database at once (the service and a CLI command) take turns;
    the one that comes second finds the schema current. PostgreSQL uses an advisory lock instead."""
    database = sqlite_path(engine.url.render_as_string(hide_password=False))
    if database is None:
        yield
        return
    with file_lock(database.with_name(database.name + ".migrate-lock")):
        yield


def _upgrade(engine: Engine, head: str, target: str) -> list[str]:
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        sqlite = conn.dialect.name == "sqlite"
        if postgres:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            conn.commit()
        if sqlite:  # batch migrations copy tables; SQLite checks foreign keys on the drop otherwise
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            before = MigrationContext.configure(conn).get_current_revision()
            if before == head:
                return []
            cfg = alembic_config(conn)
            if before is None and "snapshots" in inspect(conn).get_table_names():
                command.stamp(cfg, FIRST)
                before = FIRST
                log.info("db.stamped", revision=FIRST, reason="a database made by the first schema")
            command.upgrade(cfg, target)
            conn.commit()
            after = MigrationContext.configure(conn).get_current_revision()
            applied = _between(before, after)
            log.info("db.upgraded", before=before, after=after, applied=applied)
            return applied
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            if postgres:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()


def _between(before: str | None, after: str | None) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    if after is None:
        return []
    revisions = [r.revision for r in script.iterate_revisions(after, before or "base")]
    return list(reversed([r for r in revisions if r != before]))

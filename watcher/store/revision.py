"""The schema revision a database holds, read without Alembic.

Every command opening the store asks whether its schema is the newest; Alembic answers by parsing
every migration script, ~0.2 s of imports and reading before a command can start. The newest
revision is written here once (a test compares it with Alembic's head), and the stored one is a
one-row table, so the usual answer, "current", costs one query; `migrate.py` is imported only when
there is something to upgrade or to explain.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

HEAD = "0009"
"""The newest revision in `migrations/versions/`; a new migration changes it (a test says so)."""

VERSION_TABLE = "alembic_version"


def stored_revision(conn: Connection) -> str | None:
    """The revision Alembic stamped in the database; None when none is (a new or a first-schema
    database: `migrate.py` tells them apart), or when several are (branches: not ours)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    found = [str(row[0]) for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
    return found[0] if len(found) == 1 else None

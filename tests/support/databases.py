"""Database fixtures: every storage test runs on SQLite and on the real PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (user postgres, trust auth; `.ci/run` starts it).
Each test gets a database of its own, dropped afterwards. When the server cannot be reached
the PostgreSQL half of each test is skipped, saying so.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("TRIALWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def sqlite_file(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to a test's database file: committed, then closed, after the block.

    `with sqlite3.connect(path) as conn:` only commits; the connection stays open until collected,
    and Python 3.13 warns about it then (a ResourceWarning: an error in this suite).
    """
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def _admin_engine() -> object:
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database URL; the database is dropped when the generator closes."""
    from sqlalchemy import text
    from sqlalchemy.engine import Engine, make_url
    from sqlalchemy.exc import OperationalError

    engine = _admin_engine()
    assert isinstance(engine, Engine)
    name = f"tw_{uuid.uuid4().hex[:12]}"
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        engine.dispose()
        pytest.skip(
            f"PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)} "
            f"cannot be reached ({type(exc.orig).__name__}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'tw.sqlite'}"
        return
    yield from postgres_database()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database only (for tests of what only PostgreSQL does)."""
    yield from postgres_database()


@contextmanager
def refuse_connections(url: str) -> Iterator[None]:
    """PostgreSQL refuses every connection to `url`'s database (and drops the open ones) inside the
    block, as it does while a server restarts or an operator locks the database; then allows them again."""
    from sqlalchemy import text
    from sqlalchemy.engine import Engine, make_url

    name = make_url(url).database
    engine = _admin_engine()
    assert isinstance(engine, Engine)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        yield
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        engine.dispose()

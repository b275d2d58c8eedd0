"""A database's own words, turned into one line that says what to do (`watcher.store.failures`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError, StatementError

from watcher.errors import StorageError
from watcher.store.failures import advice, database_error, wrapped_bug

SQLITE = "sqlite:////var/lib/trialwatch/trialwatch.sqlite"
PG = "postgresql+psycopg://tw:hunter2@db.internal:5432/trialwatch"


@pytest.mark.parametrize(
    ("url", "said", "advised"),
    [
        (SQLITE, "file is not a database", "restore it from a backup"),
        (SQLITE, "database disk image is malformed", "restore it from a backup"),
        (SQLITE, "database or disk is full", "free space on the disk that holds /var/lib/trialwatch/trialwatch.sqlite"),
        (SQLITE, "disk I/O error", "it may be full, read-only or gone"),
        (SQLITE, "attempt to write a readonly database", "make the database writable by user"),
        (SQLITE, "database is locked", "another process holds the database"),
        (SQLITE, "no such table: trials", "run `trialwatch db upgrade`"),
        (SQLITE, "unable to open database file", "check that /var/lib/trialwatch/trialwatch.sqlite and its folder"),
        (PG, 'connection failed: connection to server at "10.0.0.7", port 5432 failed: Connection refused', "running"),
        (PG, 'connection failed: FATAL:  password authentication failed for user "tw"', "user name and password"),
        (PG, 'connection failed: FATAL:  database "trialwatch" does not exist', "create that database"),
        (PG, "PostgreSQL text fields cannot contain NUL (0x00) bytes", "the database refused the data written"),
        (PG, 'relation "trials" does not exist', "run `trialwatch db upgrade`"),
        (PG, "something nobody foresaw", "reachable and intact"),
    ],
)
def test_each_failure_says_what_to_do(url: str, said: str, advised: str) -> None:
    assert advised in advice(said, url)


def test_a_folder_where_the_file_should_be_is_named(tmp_path: Path) -> None:
    (tmp_path / "tw.sqlite").mkdir()
    url = f"sqlite:///{tmp_path / 'tw.sqlite'}"
    assert advice("unable to open database file", url) == (
        f"{tmp_path / 'tw.sqlite'} is a folder: set storage.url to a file, or move the folder away"
    )


def test_the_line_names_the_database_without_its_password_nor_sqlalchemys_extras() -> None:
    driver = sqlite3.OperationalError("database is locked\nsecond line")
    wrapped = OperationalError("SELECT 1 FROM meta WHERE key = ?", ("hunter2",), driver)
    error = database_error(PG, wrapped, doing="cannot read")
    assert isinstance(error, StorageError)
    assert str(error) == (
        "cannot read postgresql+psycopg://tw:***@db.internal:5432/trialwatch: database is locked; "
        "another process holds the database: try again when it is done"
    )


def test_a_python_error_sqlalchemy_wrapped_is_a_bug_not_the_database() -> None:
    bug = TypeError("Object of type object is not JSON serializable")
    assert wrapped_bug(StatementError("encoding a bind value", "INSERT …", {}, bug)) is bug
    driver = sqlite3.OperationalError("database is locked")
    assert wrapped_bug(OperationalError("INSERT …", {}, driver)) is None

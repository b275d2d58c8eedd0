"""A database that fails after TrialWatch made it is one line on stderr, never a traceback.

Every command reaches the database through the store; whatever it meets there (a file replaced by
garbage or by a folder, tables gone, a PostgreSQL server that is not there) is said in one line:
what failed, which database (its URL without the password), what to do; and the exit code is 1.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Result, Workspace

NCT = "NCT04728893"
COMMANDS = [("status",), ("list",), ("check",), ("history", NCT), ("db", "stats"), ("changes",), ("show", NCT)]
"""The first five are the reading and polling commands people run most; all are checked on SQLite."""
CLOSED_PORT = "postgresql+psycopg://tw:hunter2@127.0.0.1:1/trialwatch"


def _said(result: Result) -> list[str]:
    """What the command told the user on stderr (its JSON log lines aside)."""
    return [line for line in result.err.splitlines() if line.strip() and not line.startswith("{")]


def _garbage(database: Path) -> None:
    database.write_bytes(b"these are not the bytes of a SQLite database\n" * 200)


def _folder(database: Path) -> None:
    database.unlink()
    database.mkdir()


def _tables_dropped(database: Path) -> None:
    """Readable, the schema current, the data gone: the store opens, and the first query fails."""
    with closing(sqlite3.connect(database)) as conn:
        conn.executescript(
            "DROP TABLE trials; DROP TABLE meta; DROP TABLE cycles; DROP TABLE changes; DROP TABLE snapshots;"
        )


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (_garbage, "restore it from a backup"),
    "folder": (_folder, "is a folder: set storage.url to a file"),
    "tables dropped": (_tables_dropped, "run `trialwatch db upgrade`, or restore it from a backup"),
}


@pytest.fixture
def damaged_sqlite(workspace: Workspace, fake_api: FakeCtGov, request: pytest.FixtureRequest) -> tuple[Workspace, str]:
    damage, advice = DAMAGE[request.param]
    workspace.write(trials=[NCT])
    assert workspace.cli("check").code == 0, "a working database first"
    database = workspace.root / "state" / "trialwatch.sqlite"
    for beside in database.parent.glob("trialwatch.sqlite-*"):  # the WAL is checkpointed on close
        beside.unlink()
    damage(database)
    return workspace, advice


@pytest.mark.parametrize("damaged_sqlite", list(DAMAGE), indirect=True)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_damaged_sqlite_database_is_one_line_naming_it_and_what_to_do(
    damaged_sqlite: tuple[Workspace, str], command: tuple[str, ...]
) -> None:
    workspace, advice = damaged_sqlite
    result = workspace.cli(*command)  # in-process, exceptions not caught: a traceback would fail the test
    assert result.code == 1, result
    (line,) = _said(result)
    assert line.startswith("trialwatch: ")
    assert f"sqlite:///{workspace.root / 'state' / 'trialwatch.sqlite'}" in line
    assert advice in line
    assert "Traceback" not in result.err and "[SQL:" not in line and "sqlalche.me" not in line


@pytest.mark.parametrize(
    "command", [("status",), ("list",), ("check",), ("history", NCT), ("db", "stats")], ids=" ".join
)
def test_an_unreachable_postgresql_server_is_one_line_without_its_password(
    workspace: Workspace, command: tuple[str, ...]
) -> None:
    workspace.write(trials=[NCT], storage_url=CLOSED_PORT)
    result = workspace.cli(*command)
    assert result.code == 1, result
    (line,) = _said(result)
    assert "postgresql+psycopg://tw:***@127.0.0.1:1/trialwatch" in line
    assert "Connection refused" in line
    assert "check that the database server is running and reachable" in line
    assert "hunter2" not in result.err


@pytest.mark.slow
def test_a_real_process_prints_only_that_line(workspace: Workspace, fake_api: FakeCtGov) -> None:
    """The user's run: `python -m trialwatch`, logs at their default, nothing else on stderr."""
    workspace.write(trials=[NCT])
    assert workspace.cli("check").code == 0
    database = workspace.root / "state" / "trialwatch.sqlite"
    shutil.rmtree(database.parent)
    database.parent.mkdir()
    database.mkdir()
    result = workspace.process("status")
    assert result.code == 1
    assert result.err.splitlines() == [  # `status` only reads: it opens the database read-only
        f"trialwatch: cannot read the database sqlite:///{database}: "
        f"{database} is a folder: set storage.url to a file, or move the folder away"
    ]

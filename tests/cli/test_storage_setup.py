"""Where the database is, and who may create it.

A relative `sqlite:///` path is relative to the settings file's folder (as the watchlist is), not to
wherever a command runs; reading commands never create nor upgrade a database (a new empty one
answered `status` and `show` wrongly); `check-config` tries `storage.url` and says what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace

NCT = "NCT04728893"
READING = [("status",), ("list",), ("show", NCT), ("history", NCT), ("changes",), ("diff", NCT), ("db", "stats")]
READING += [("feed",), ("search", "list")]
CLOSED_PORT = "postgresql+psycopg://tw:hunter2@127.0.0.1:1/trialwatch"


def relative(workspace: Workspace, url: str = "sqlite:///db/tw.sqlite") -> None:
    workspace.write(trials=[NCT], storage_url=url)


def test_a_relative_sqlite_path_is_relative_to_the_settings_file(
    workspace: Workspace, fake_api: FakeCtGov, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    relative(workspace)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert workspace.cli("check").code == 0
    assert (workspace.root / "db" / "tw.sqlite").is_file()
    assert not (elsewhere / "db").exists()
    shown = workspace.cli("show", NCT)
    assert shown.code == 0, shown.err
    assert NCT in shown.out
    config = workspace.cli("check-config")
    assert f"storage:   sqlite:///{workspace.root / 'db' / 'tw.sqlite'} (exists, readable)" in config.out


@pytest.mark.parametrize("command", READING)
def test_reading_commands_never_create_a_database(workspace: Workspace, command: tuple[str, ...]) -> None:
    workspace.write(trials=[NCT])
    database = workspace.root / "state" / "trialwatch.sqlite"

    result = workspace.cli(*command)

    assert result.code == 1, result.out
    assert f"trialwatch: no database at {database}; run `trialwatch check` first" in result.err
    assert not database.exists()
    assert not database.parent.exists(), "not even its folder"


@pytest.mark.postgres
def test_reading_commands_never_create_tables_on_postgresql(workspace: Workspace, pg_url: str) -> None:
    from sqlalchemy import create_engine, inspect

    workspace.write(trials=[NCT], storage_url=pg_url)
    result = workspace.cli("status")
    assert result.code == 1
    assert "it holds no tables; run `trialwatch check` first" in result.err
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()


def storage_line(workspace: Workspace) -> int:
    lines = workspace.settings.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip().startswith("url:"))


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("nosuchdb://x/y", "unknown database scheme 'nosuchdb'"),
        ("mysql+nosuchdriver://u@h/db", "unknown database scheme 'mysql+nosuchdriver'"),
        ("mysql+pymysql://u:secret@127.0.0.1/db", "the driver for 'mysql+pymysql' is not installed"),
        (CLOSED_PORT, "cannot reach postgresql+psycopg://tw:***@127.0.0.1:1/trialwatch"),
    ],
)
def test_check_config_tries_the_storage_url(workspace: Workspace, url: str, said: str) -> None:
    workspace.write(trials=[NCT], storage_url=url)
    result = workspace.cli("check-config")
    assert result.code == 2, result.out
    assert f"{workspace.settings}:{storage_line(workspace)}: storage.url: {said}" in result.err
    assert "OK" not in result.out
    assert "secret" not in result.err and "hunter2" not in result.err


def test_check_config_says_a_new_database_is_made_by_the_first_check(workspace: Workspace) -> None:
    workspace.write(trials=[NCT])
    result = workspace.cli("check-config")
    assert result.code == 0, result.err
    assert "yet: the first `check` creates it" in result.out
    assert not (workspace.root / "state").exists()


@pytest.mark.postgres
def test_check_config_reaches_postgresql(workspace: Workspace, pg_url: str) -> None:
    workspace.write(trials=[NCT], storage_url=pg_url)
    result = workspace.cli("check-config")
    assert result.code == 0, result.err
    assert "(reachable)" in result.out

"""A watchlist file that does not exist is a configuration error, named at the setting's line.

It used to read as an empty watchlist: `check-config` said OK, `check` exited 0 and `run` watched
nothing, with no word about it.
"""

from __future__ import annotations

import pytest

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace


def settings_line(workspace: Workspace, key: str) -> int:
    lines = workspace.settings.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(f"{key}:"))


@pytest.mark.parametrize("command", [("check-config",), ("check",), ("list",)])
def test_a_missing_watchlist_is_refused_with_the_settings_line(workspace: Workspace, command: tuple[str, ...]) -> None:
    workspace.write(trials=["NCT04728893"])
    workspace.watchlist.unlink()

    result = workspace.cli(*command)

    assert result.code == 2, result.out
    line = settings_line(workspace, "watchlist")
    expected = f"{workspace.settings}:{line}: watchlist: the watchlist file {workspace.watchlist} does not exist"
    assert expected in result.err
    assert "OK" not in result.out


def test_the_default_watchlist_missing_says_it_is_the_default(workspace: Workspace) -> None:
    workspace.write(trials=["NCT04728893"])
    workspace.settings.write_text(workspace.settings.read_text().replace("watchlist: watchlist.yaml\n", ""))
    workspace.watchlist.unlink()
    result = workspace.cli("check-config")
    assert result.code == 2
    assert f"{workspace.settings}: watchlist: the watchlist file {workspace.watchlist} does not exist" in result.err
    assert "`watchlist:` is not set" in result.err


def test_add_creates_the_missing_watchlist(workspace: Workspace) -> None:
    workspace.write(trials=[])
    workspace.watchlist.unlink()
    result = workspace.cli("add", "NCT04728893")
    assert result.code == 0, result.err
    assert "NCT04728893" in workspace.watchlist.read_text()
    assert workspace.cli("check-config").code == 0


@pytest.mark.slow
def test_run_refuses_a_missing_watchlist(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(trials=["NCT04728893"])
    workspace.watchlist.unlink()
    result = workspace.process("run", timeout=60)
    assert result.code == 2, result.err
    assert "does not exist" in result.err
    assert fake_api.requests == [], "nothing was polled"

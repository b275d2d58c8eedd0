"""A channel's name is stored with each of its messages: `check-config` refuses one the database
cannot hold (over 64 characters) or that would not read on one line, naming file, line and why."""

from __future__ import annotations

import pytest

from tests.support.workspace import Workspace


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("n" * 101, "a channel name has at most 64 characters (this one has 101)"),
        ('"team slack"', "'team slack' is not a channel name"),
        ('"-x"', "'-x' is not a channel name"),
    ],
)
def test_check_config_refuses_a_channel_name_the_database_cannot_hold(
    workspace: Workspace, name: str, expected: str
) -> None:
    workspace.write(trials=["NCT04728893"])
    text = workspace.settings.read_text() + f"channels:\n  {name}:\n    url: json://127.0.0.1:9/hook\n"
    workspace.settings.write_text(text)
    result = workspace.cli("check-config")
    assert result.code == 2
    assert expected in result.err and "trialwatch.yaml:" in result.err


def test_ordinary_channel_names_pass(workspace: Workspace) -> None:
    workspace.write(trials=["NCT04728893"], channels={"team-slack_2.ops": {"url": "json://127.0.0.1:9/hook"}})
    assert workspace.cli("check-config").code == 0

"""`trialwatch add/remove/list`: edits that keep the user's comments, order and layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shared import seed_text
from tests.support.workspace import REPO, Workspace
from watcher.config import parse_watchlist
from watcher.config.edit import NewTrial, add_trials, remove_trials
from watcher.errors import ConfigError
from watcher.ids import find_nct_ids

SEED_IDS = ["NCT07142161", "NCT06732492", "NCT06622694", "NCT05716113"]

COMMENTED = """\
# Trials we follow for the autoimmune board.
trials:
    # mRNA CD19/CD3 T cell engager (Ruijin Hospital)
    -   id: NCT06747156
        label: ABO2203 autoimmune   # short name
        tags: [autoimmune]

    # A bare ID works too:
    -   NCT07198867   # A-CAR028

# end of list
"""


def test_free_text_yields_every_nct_id_once_in_order() -> None:
    assert find_nct_ids(seed_text("001")) == SEED_IDS
    text = (
        "see https://clinicaltrials.gov/study/nct04728893?tab=history, NCT04728893 again,"
        " (NCT03418623); not NCT123456789 nor XNCT06171568 nor NCT0617156"
    )
    assert find_nct_ids(text) == ["NCT04728893", "NCT03418623"]


def test_add_appends_in_the_files_own_layout_and_keeps_every_comment() -> None:
    path = Path("watchlist.yaml")
    result = add_trials(
        COMMENTED, path, [NewTrial("NCT04728893"), NewTrial("NCT03418623", label="Mayo: phase #2", tags=("cll",))], []
    )
    assert result.done == ("NCT04728893", "NCT03418623")
    assert result.text == COMMENTED.replace(
        "    -   NCT07198867   # A-CAR028\n",
        """\
    -   NCT07198867   # A-CAR028
    -   NCT04728893
    -   id: NCT03418623
        label: "Mayo: phase #2"
        tags: [cll]
""",
    )
    assert [t.label for t in result.watchlist.trials] == ["ABO2203 autoimmune", None, None, "Mayo: phase #2"]


def test_add_skips_what_is_already_watched() -> None:
    result = add_trials(COMMENTED, Path("w.yaml"), [NewTrial("NCT07198867")], [])
    assert result.done == () and result.skipped == ("NCT07198867",)
    assert result.text == COMMENTED


def test_remove_takes_the_item_and_the_comment_lines_right_above_it() -> None:
    result = remove_trials(COMMENTED, Path("w.yaml"), ["NCT06747156", "NCT00000001"], [])
    assert result.done == ("NCT06747156",) and result.skipped == ("NCT00000001",)
    assert (
        result.text
        == """\
# Trials we follow for the autoimmune board.
trials:

    # A bare ID works too:
    -   NCT07198867   # A-CAR028

# end of list
"""
    )


@pytest.mark.parametrize("text", ["", "trials:\n", "trials: []\n", "# only a comment\n"])
def test_add_to_an_empty_watchlist(text: str) -> None:
    result = add_trials(text, Path("w.yaml"), [NewTrial("NCT04728893", channels=("ops",))], ["ops"])
    assert [(t.nct_id, t.channels) for t in result.watchlist.trials] == [("NCT04728893", ("ops",))]
    if text.startswith("#"):
        assert result.text.startswith("# only a comment")


def test_flow_lists_are_edited_through_the_yaml_round_trip() -> None:
    text = "# mine\ntrials: [NCT04728893, NCT03418623]\n"
    added = add_trials(text, Path("w.yaml"), [NewTrial("NCT06171568")], [])
    assert added.text.startswith("# mine\n")
    assert [t.nct_id for t in added.watchlist.trials] == ["NCT04728893", "NCT03418623", "NCT06171568"]
    removed = remove_trials(added.text, Path("w.yaml"), ["NCT03418623"], [])
    assert [t.nct_id for t in removed.watchlist.trials] == ["NCT04728893", "NCT06171568"]


def test_an_edit_of_a_broken_watchlist_is_refused() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        add_trials("trials:\n  - NCT04728893\n  - NCT04728893\n", Path("w.yaml"), [NewTrial("NCT03418623")], [])


def test_the_example_watchlist_round_trips() -> None:
    path = REPO / "config" / "watchlist.yaml"
    text = path.read_text()
    added = add_trials(text, path, [NewTrial("NCT04728893")], [])
    back = remove_trials(added.text, path, ["NCT04728893"], [])
    assert back.text == text
    assert parse_watchlist(back.text, path).trials == parse_watchlist(text, path).trials


# -- through the CLI -----------------------------------------------------------------------------


def test_cli_add_from_free_text_says_what_was_new(workspace: Workspace) -> None:
    workspace.write(trials=["NCT06622694"])
    article = workspace.root / "article.txt"  # the product's seed 001: a news article naming four trials
    article.write_text(seed_text("001"), encoding="utf-8")
    result = workspace.cli("add", "--from", str(article), "--tag", "t1d")
    assert result.code == 0, result.err
    assert "found 4 NCT IDs" in result.out
    for nct_id in ["NCT07142161", "NCT06732492", "NCT05716113"]:
        assert f"added            {nct_id}" in result.out
    assert "already watched  NCT06622694" in result.out
    assert "3 added, 1 already watched, 4 trials in all" in result.out
    workspace.store()  # the database a first `check` makes: reading commands never create it
    listed = workspace.cli("list", "--json").json()
    assert [r["nct_id"] for r in listed] == ["NCT06622694", *[i for i in SEED_IDS if i != "NCT06622694"]]
    assert listed[1]["tags"] == ["t1d"]


def test_cli_add_from_stdin(workspace: Workspace) -> None:
    from click.testing import CliRunner

    from watcher.cli.main import cli

    result = CliRunner().invoke(
        cli,
        ["--config", str(workspace.settings), "--log-format", "json", "add", "--from", "-"],
        input="Two trials: NCT04728893 and NCT03418623.",
    )
    assert result.exit_code == 0, result.output
    workspace.store()  # the database a first `check` makes: reading commands never create it
    assert [t["nct_id"] for t in workspace.cli("list", "--json").json()] == ["NCT04728893", "NCT03418623"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["NCT04728893", "NCT123"], "not an NCT ID (NCT followed by 8 digits): 'NCT123'; nothing changed"),
        (["NCT04728893", "--channel", "pager"], "unknown channel 'pager' (known: ops); nothing changed"),
        (["--from", str(REPO / "pyproject.toml")], "no NCT ID found in"),
        ([], "give at least one NCT ID"),
    ],
)
def test_cli_add_refuses_and_changes_nothing(workspace: Workspace, args: list[str], message: str) -> None:
    workspace.write(trials=["NCT06622694"], channels={"ops": {"url": "json://127.0.0.1:9/x"}})
    before = workspace.watchlist.read_bytes()
    result = workspace.cli("add", *args)
    assert result.code == 2
    assert message in result.err
    assert workspace.watchlist.read_bytes() == before


def test_cli_add_with_label_and_channel_then_remove(workspace: Workspace) -> None:
    workspace.write(trials=["NCT06622694"], channels={"ops": {"url": "json://127.0.0.1:9/x"}})
    workspace.watchlist.write_text("# my trials\n" + workspace.watchlist.read_text())
    workspace.watchlist.chmod(0o640)
    added = workspace.cli("add", "nct04728893", "--label", "Keytruda combo", "--channel", "ops")
    assert added.code == 0, added.err
    assert workspace.watchlist.read_text() == (
        "# my trials\ntrials:\n  - NCT06622694\n  - id: NCT04728893\n    label: Keytruda combo\n    channels: [ops]\n"
    )
    assert workspace.watchlist.stat().st_mode & 0o777 == 0o640
    removed = workspace.cli("remove", "NCT06622694", "NCT00000001")
    assert removed.code == 0
    assert "removed          NCT06622694" in removed.out and "not watched      NCT00000001" in removed.out
    assert workspace.watchlist.read_text().startswith("# my trials\ntrials:\n  - id: NCT04728893\n")
    bad = workspace.cli("remove", "12345678")
    assert bad.code == 2 and "nothing changed" in bad.err


def test_list_shows_label_status_and_check_times(workspace: Workspace) -> None:
    workspace.write(trials=[{"id": "NCT04728893", "label": "Keytruda combo"}, "NCT03418623"])
    assert workspace.cli("check").code == 0
    table = workspace.cli("list")
    assert table.code == 0
    header, first, second = table.out.splitlines()
    assert header.split() == ["NCT", "ID", "LABEL", "SOURCE", "STATUS", "LAST", "CHANGE", "LAST", "CHECKED"]
    assert first.startswith("NCT04728893  Keytruda combo") and "watchlist" in first and "RECRUITING" in first
    assert second.startswith("NCT03418623")
    rows = workspace.cli("list", "--json").json()
    assert rows[0]["status"] == "RECRUITING" and rows[0]["last_checked"] and rows[0]["last_change"] is None


def test_add_says_which_file_it_edited_and_warns_when_it_created_one(workspace: Workspace) -> None:
    """Run from the wrong folder without --config, `add` would quietly start a watchlist no service reads."""
    workspace.write(trials=["NCT06622694"])
    result = workspace.cli("add", "NCT04728893")
    assert f"{workspace.watchlist.resolve()}: 1 added" in result.out
    assert "created a new watchlist" not in result.err
    workspace.watchlist.unlink()
    fresh = workspace.cli("add", "NCT04728893")
    assert fresh.code == 0
    assert f"trialwatch: created a new watchlist {workspace.watchlist.resolve()} (settings file: " in fresh.err
    assert "pass --config or set TRIALWATCH_CONFIG" in fresh.err

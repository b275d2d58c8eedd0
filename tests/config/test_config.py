"""Settings and watchlist loading: the documented keys, defaults, and errors with file/line/key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.workspace import Workspace
from watcher.config import load_config, load_settings, load_watchlist, parse_duration, resolve_config_path
from watcher.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_example_config_validates_and_watches_the_seed_trials() -> None:
    config = load_config(REPO / "config" / "trialwatch.yaml", environ={})
    assert [t.nct_id for t in config.watchlist.trials] == ["NCT06747156", "NCT07198867"]
    assert config.watchlist.trials[0].label == "ABO2203 autoimmune"
    assert config.settings.api.base_url == "https://clinicaltrials.gov/api/v2"
    assert config.settings.interval == timedelta(hours=6)
    assert config.settings.channels == {}


def test_defaults_without_a_settings_file(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"XDG_STATE_HOME": str(tmp_path)})
    assert settings.storage_url == f"sqlite:///{tmp_path / 'trialwatch' / 'trialwatch.sqlite'}"
    assert settings.api.base_url == "https://clinicaltrials.gov/api/v2"
    assert settings.channels == {}


def test_state_directory_from_systemd(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"STATE_DIRECTORY": str(tmp_path / "tw")})
    assert settings.storage_url.endswith(f"{tmp_path / 'tw' / 'trialwatch.sqlite'}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", timedelta(seconds=10)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "6", "6x", "h", "1.5h", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_channel_url_takes_environment_variables(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "channels:\n  ops:\n    url: json://${HOOK_HOST}/x?token=${TOKEN}\n")
    settings = load_settings(path, environ={"HOOK_HOST": "127.0.0.1:9", "TOKEN": "s3cret"})
    assert settings.channels["ops"].url == "json://127.0.0.1:9/x?token=s3cret"
    assert "s3cret" not in repr(settings.channels["ops"])


def test_missing_environment_variable_is_named_but_no_value_leaks(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "channels:\n  ops:\n    url: json://host/${TOKEN}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    expected = f"{path}:3: channels.ops.url: environment variable TOKEN is not set"
    assert str(info.value).splitlines()[1].strip() == expected


# -- the service's settings and systemd credentials ------------------------------------------------


def test_service_schedule_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        "schedule:\n  interval: 2s\n  notify_interval: 10s\n  watch_interval: 0s\n"
        "  stop_timeout: 1m\n  cycle_timeout: 2h\n",
    )
    settings = load_settings(path, environ={})
    assert settings.interval == timedelta(seconds=2)
    assert settings.notify_interval == timedelta(seconds=10)
    assert settings.watch_interval == timedelta(0)  # 0s: SIGHUP only
    assert settings.stop_timeout == timedelta(minutes=1)
    assert settings.cycle_timeout == timedelta(hours=2)
    defaults = load_settings(None, environ={})
    assert (defaults.notify_interval, defaults.watch_interval, defaults.stop_timeout) == (
        timedelta(seconds=30),
        timedelta(seconds=2),
        timedelta(seconds=30),
    )


def test_a_zero_poll_interval_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "schedule:\n  interval: 0s\n  stop_timeout: soon\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert [str(p) for p in info.value.problems] == [
        f"{path}:3: schedule.stop_timeout: 'soon' is not a duration such as 10s, 30m, 6h or 1d",
        f"{path}:2: schedule.interval: must be longer than 0s",
    ]


def test_channel_url_from_a_systemd_credential(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "slack-url").write_text("slack://TokenA/TokenB/TokenC/#trials\n")
    path = write(tmp_path / "s.yaml", "channels:\n  team:\n    url: ${credential:slack-url}\n")
    settings = load_settings(path, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert settings.channels["team"].url == "slack://TokenA/TokenB/TokenC/#trials"
    assert "TokenA" not in repr(settings)


def test_credential_problems_name_the_credential_never_a_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        "channels:\n  team:\n    url: ${credential:slack-url}\n"
        "  mail:\n    url: mailtos://u:${credential:smtp}@example.org\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert [str(p) for p in info.value.problems] == [
        f"{path}:3: channels.team.url: credential 'slack-url': $CREDENTIALS_DIRECTORY is not set "
        "(run under systemd with LoadCredential=slack-url:/path/to/file)",
        f"{path}:5: channels.mail.url: credential 'smtp': $CREDENTIALS_DIRECTORY is not set "
        "(run under systemd with LoadCredential=smtp:/path/to/file)",
    ]
    with pytest.raises(ConfigError, match="credential 'slack-url': cannot read it"):
        load_settings(path, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_check_config_lists_every_problem_of_both_files_and_exits_2(workspace: Workspace) -> None:
    workspace.write(trials=["NCT04728893"], channels={"ops": {"url": "json://127.0.0.1:9/x"}})
    workspace.settings.write_text(workspace.settings.read_text().replace("interval: 1h", "interval: soon"))
    workspace.watchlist.write_text("trials:\n  - NCT123\n  - id: NCT04728893\n    channels: [pager]\n  - NCT04728893\n")
    result = workspace.cli("check-config")
    assert result.code == 2
    assert "4 configuration problems:" in result.err
    for expected in [
        "trialwatch.yaml:10: schedule.interval: 'soon' is not a duration",
        "watchlist.yaml:2: trials[0]: 'NCT123' is not NCT followed by 8 digits",
        "watchlist.yaml:3: trials[1].channels: unknown channel 'pager' (known: ops)",
        "watchlist.yaml:5: trials[2]: NCT04728893 is listed twice (first at line 3)",
    ]:
        assert expected in result.err


def test_check_config_summarizes_a_good_configuration_without_secrets(workspace: Workspace, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hook").write_text("json://hooks.example.org/s3cr3t-token-path\n")
    workspace.write(
        trials=["NCT04728893", {"id": "NCT03418623", "interval": "1d"}], channels={"ops": {"url": "${credential:hook}"}}
    )
    result = workspace.cli("check-config", env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert result.code == 0, result.err
    assert "(2 trials)" in result.out
    assert "1 trial with their own interval: NCT03418623 every 1 day" in result.out
    assert "channel:   ops → json://hooks.example.org/***" in result.out
    assert "s3cr3t" not in result.out + result.err
    assert result.out.rstrip().endswith("OK")


def test_every_problem_is_listed_with_file_line_and_key(tmp_path: Path) -> None:
    settings = write(
        tmp_path / "trialwatch.yaml",
        (
            "api:\n"
            "  base_url: ftp://nope\n"
            "  requests_per_second: fast\n"
            "schedule:\n"
            "  interval: soon\n"
            "colour: blue\n"
            "channels:\n"
            "  ops:\n"
            "    min_severity: urgent\n"
        ),
    )
    write(
        tmp_path / "watchlist.yaml",
        (
            "trials:\n"
            "  - NCT06747156\n"
            "  - NCT123\n"
            "  - id: nct06747156\n"
            "  - label: no id here\n"
            "  - id: NCT07198867\n"
            "    channels: [pager]\n"
            "    colour: red\n"
        ),
    )
    with pytest.raises(ConfigError) as info:
        load_config(settings, environ={})
    problems = [str(p) for p in info.value.problems]
    s, w = str(settings), str(tmp_path / "watchlist.yaml")
    assert problems == [
        f"{s}:6: colour: unknown key (expected one of: api, storage, schedule, channels, notify, severity, "
        "watchlist, state_dir, registry, feeds, backfill, web, site)",
        f"{s}:2: api.base_url: 'ftp://nope' is not an http(s) URL",
        f"{s}:3: api.requests_per_second: expected a number, got str 'fast'",
        f"{s}:5: schedule.interval: 'soon' is not a duration such as 10s, 30m, 6h or 1d",
        f"{s}:8: channels.ops.url: missing: an apprise URL is required",
        f"{w}:3: trials[1]: 'NCT123' is not NCT followed by 8 digits",
        f"{w}:4: trials[2].id: NCT06747156 is listed twice (first at line 2)",
        f"{w}:5: trials[3].id: missing: each trial needs an NCT ID",
        f"{w}:8: trials[4].colour: unknown key (expected one of: id, label, channels, tags, ignore, only, "
        "min_severity, interval, near)",
        f"{w}:6: trials[4].channels: unknown channel 'pager' (known: none are configured)",
    ]
    assert str(info.value).startswith("10 configuration problems:")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "watchlist.yaml", "trials:\n  - NCT06747156\n  - [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_watchlist(path)
    (problem,) = info.value.problems
    assert problem.file == str(path)
    assert problem.line in (3, 4)
    assert "YAML syntax error" in problem.message


def test_watchlist_items_bare_and_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path / "w.yaml",
        (
            "trials:\n"
            "  - NCT06747156\n"
            "  - id: NCT07198867\n"
            "    label: Second\n"
            "    channels: [ops]\n"
            "    tags: [oncology, phase3]\n"
            "    min_severity: major\n"
            "    ignore: ['locations.*']\n"
        ),
    )
    wl = load_watchlist(path, ["ops"])
    first, second = wl.trials
    assert (first.nct_id, first.label, first.channels, first.tags) == ("NCT06747156", None, None, ())
    assert second.channels == ("ops",)
    assert second.tags == ("oncology", "phase3")
    assert second.min_severity == "major"
    assert second.ignore == ("locations.*",)
    assert second.line == 3


def test_watchlist_relative_to_settings_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    settings = write(tmp_path / "conf" / "tw.yaml", "watchlist: lists/mine.yaml\n")
    assert load_settings(settings, environ={}).watchlist_path == tmp_path / "conf" / "lists" / "mine.yaml"


def test_config_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path(None, {}) is None
    assert resolve_config_path(None, {"TRIALWATCH_CONFIG": "/etc/tw.yaml"}) == Path("/etc/tw.yaml")
    assert resolve_config_path("x.yaml", {"TRIALWATCH_CONFIG": "/etc/tw.yaml"}) == Path("x.yaml")
    (tmp_path / "trialwatch.yaml").write_text("{}\n")
    assert resolve_config_path(None, {}) == Path("trialwatch.yaml")


def test_storage_feed_and_backfill_settings(tmp_path: Path) -> None:

    settings_file = tmp_path / "trialwatch.yaml"
    settings_file.write_text(
        "storage:\n  keep_versions: 10\n  keep_days: 365\n"
        "feeds:\n  path: out/changes.atom\n  per_tag: false\n  days: 7\n"
        "backfill:\n  on_add: true\n  fill_gaps: always\n  max_gap_requests: 5\n  max_versions: 20\n"
    )
    settings = load_settings(settings_file)
    assert (settings.keep_versions, settings.keep_days) == (10, timedelta(days=365))
    assert settings.feeds.path == tmp_path / "out" / "changes.atom"
    assert (settings.feeds.per_tag, settings.feeds.days) == (False, timedelta(days=7))
    assert (settings.backfill.on_add, settings.backfill.fill_gaps) == (True, "always")
    assert (settings.backfill.max_gap_requests, settings.backfill.max_versions) == (5, 20)
    defaults = load_settings(None)
    assert (defaults.keep_versions, defaults.keep_days, defaults.feeds.path) == (None, None, None)
    assert (defaults.backfill.fill_gaps, defaults.backfill.on_add) == ("auto", False)
    settings_file.write_text("storage:\n  keep_versions: 0\nbackfill:\n  fill_gaps: sometimes\n  colour: red\n")
    with pytest.raises(ConfigError) as info:
        load_settings(settings_file)
    problems = [p.message for p in info.value.problems]
    assert "must be at least 1, got 0" in problems
    assert "'sometimes' is not one of auto, always, never" in problems
    assert any(p.startswith("unknown key") for p in problems)

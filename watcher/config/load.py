"""Loading the settings file and the watchlist together: every problem of both is reported at once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watcher.config.settings import Config, Settings, Watchlist, collect_settings
from watcher.config.watchlist import load_watchlist
from watcher.config.yamlcheck import Validator, read_yaml
from watcher.errors import ConfigError, Problem


def load_settings(path: Path | None, environ: Mapping[str, str] = os.environ, *, look_up: bool = True) -> Settings:
    """The settings alone; `look_up=False` skips the checks that load a library (see `Reading`)."""
    settings, problems = collect_settings(path, environ, look_up=look_up)
    if problems:
        raise ConfigError(problems)
    return settings


def setting_line(path: Path | None, *keys: str) -> int | None:
    """The line of a key path (`storage`, `url`) in the settings file; None when it is not there."""
    if path is None:
        return None
    node: Any = read_yaml(path, Validator(path))
    line = None
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        line, node = Validator.line_of(node, key), node[key]
    return line


def missing_watchlist(settings: Settings) -> Problem | None:
    """A watchlist file that does not exist, named at the line of the setting that names it.

    Read as empty, it made `check` succeed and `run` watch nothing, silently. Whole-registry mode
    needs no watchlist (every study is watched)."""
    path = settings.watchlist_path
    if settings.registry.all or path.exists():
        return None
    line = setting_line(settings.path, "watchlist")
    where = "" if line else " (`watchlist:` is not set: this is its default)"
    return Problem(
        str(settings.path or "<defaults>"),
        line,
        "watchlist",
        f"the watchlist file {path} does not exist{where}; fix the path, or create it (`trialwatch add NCT…` does)",
    )


def load_config(
    path: Path | None,
    environ: Mapping[str, str] = os.environ,
    *,
    missing_watchlist_ok: bool = False,
    look_up: bool = True,
) -> Config:
    """Settings and watchlist together; problems of both files are reported in one error.
    `missing_watchlist_ok`: for the commands that create the watchlist (`add`, `search add`);
    `look_up=False`: for those that only show what is stored (`status`, `list`): channel URLs are
    not looked up in apprise, whose plugins take longer to import than the command takes to run."""
    settings, problems = collect_settings(path, environ, look_up=look_up)
    missing = None if missing_watchlist_ok else missing_watchlist(settings)
    if missing is not None:
        problems.append(missing)
    try:
        watchlist = load_watchlist(settings.watchlist_path, list(settings.channels))
    except ConfigError as exc:
        problems.extend(exc.problems)
        watchlist = Watchlist(settings.watchlist_path, ())
    if problems:
        raise ConfigError(problems)
    return Config(settings=settings, watchlist=watchlist)

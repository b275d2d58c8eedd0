"""Loading the settings file and the watchlist together: every problem of both is reported at once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from watcher.config.settings import Config, Settings, Watchlist, collect_settings
from watcher.config.watchlist import load_watchlist
from watcher.errors import ConfigError


def load_settings(path: Path | None, environ: Mapping[str, str] = os.environ) -> Settings:
    settings, problems = collect_settings(path, environ)
    if problems:
        raise ConfigError(problems)
    return settings


def load_config(path: Path | None, environ: Mapping[str, str] = os.environ) -> Config:
    """Settings and watchlist together; problems of both files are reported in one error."""
    settings, problems = collect_settings(path, environ)
    try:
        watchlist = load_watchlist(settings.watchlist_path, list(settings.channels))
    except ConfigError as exc:
        problems.extend(exc.problems)
        watchlist = Watchlist(settings.watchlist_path, ())
    if problems:
        raise ConfigError(problems)
    return Config(settings=settings, watchlist=watchlist)

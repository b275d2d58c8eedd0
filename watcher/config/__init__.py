"""Configuration: the settings file and the watchlist, validated whole before anything runs.

Callers import from here; which module inside holds what is this package's own business.
"""

from watcher.config.channels import minor_schedule
from watcher.config.load import load_config, load_settings
from watcher.config.paths import resolve_config_path
from watcher.config.settings import (
    ApiSettings,
    BackfillSettings,
    ChannelSettings,
    Config,
    FeedSettings,
    Settings,
    Watchlist,
)
from watcher.config.watchlist import load_watchlist, parse_watchlist
from watcher.config.yamlcheck import parse_duration

__all__ = [
    "ApiSettings",
    "BackfillSettings",
    "ChannelSettings",
    "Config",
    "FeedSettings",
    "Settings",
    "Watchlist",
    "load_config",
    "load_settings",
    "load_watchlist",
    "minor_schedule",
    "parse_duration",
    "parse_watchlist",
    "resolve_config_path",
]

"""The last good watchlist: what a service (re)starting on a broken watchlist runs with.

A running service keeps its last good watchlist when an edit is broken; a restart (reboot, crash,
upgrade) must not lose that and stop monitoring in silence while nobody is looking. So each watchlist
the service accepts is copied, atomically, into the state directory, and a start on a broken watchlist
runs with the copy and raises the same alert as a rejected live edit. Only the watchlist: a broken
settings file (channels, storage) still refuses to start, since without it no alert could be routed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import structlog

from watcher.config import Config, load_config, load_settings
from watcher.config.settings import Settings
from watcher.config.watchlist import parse_watchlist
from watcher.config.yamlbounds import short_repr
from watcher.errors import ConfigError, Problem
from watcher.files import write_atomically

log = structlog.get_logger("watcher.service.lastgood")

LAST_GOOD_NAME = "watchlist.last-good.yaml"

T = TypeVar("T")


def guarded(load: Callable[[], T], file: Path | str | None) -> T:
    """`load()`, with any failure turned into a ConfigError naming `file`.

    Reading a file is reading hostile input: whatever escapes the validators (a MemoryError, a
    RecursionError, a parser's own bug) must leave a running service on its current configuration and
    a starting one on its last good watchlist, never kill the process."""
    try:
        return load()
    except ConfigError:
        raise
    except Exception as exc:
        detail = f"{type(exc).__name__}: {short_repr(str(exc), 200)}" if str(exc) else type(exc).__name__
        log.error("config.read_crashed", file=str(file), error=detail)  # noqa: TRY400 - the trace may quote a secret
        raise ConfigError([Problem(str(file or "configuration"), None, "", f"cannot be read ({detail})")]) from None


def last_good_path(settings: Settings) -> Path:
    return settings.state_dir / LAST_GOOD_NAME


def remember(config: Config) -> bool:
    """Copy the watchlist `config` was loaded from, if the file still holds a valid one (it may have been
    edited again since it was read: then the next accepted one is copied). True when copied."""
    path = config.watchlist.path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return False  # no file: an empty watchlist, nothing worth keeping
    try:
        guarded(lambda: parse_watchlist(text, path, list(config.settings.channels)), path)
    except ConfigError:
        return False
    write_atomically(last_good_path(config.settings), text, mode=0o600)
    return True


def startup_config(path: Path | None, environ: Mapping[str, str] = os.environ) -> tuple[Config, tuple[str, ...]]:
    """The configuration a starting service runs with, and the watchlist's problems when it runs with the
    last good copy instead of the broken file (empty when the files are good).

    Raises the ConfigError of `load_config` when the settings file is broken, or the watchlist is and no
    valid copy exists (a first start, or a copy that no longer fits the channels)."""
    try:
        return guarded(lambda: load_config(path, environ), path), ()
    except ConfigError as exc:
        try:
            settings = guarded(lambda: load_settings(path, environ), path)
        except ConfigError:
            raise exc from None
        copy = last_good_path(settings)
        try:
            text = copy.read_text(encoding="utf-8")
            watchlist = guarded(lambda: parse_watchlist(text, settings.watchlist_path, list(settings.channels)), copy)
        except (OSError, ConfigError):
            raise exc from None
        problems = tuple(str(p) for p in exc.problems)
        log.warning(
            "watchlist.started_on_last_good", problems=list(problems), copy=str(copy), trials=len(watchlist.trials)
        )
        return Config(settings=settings, watchlist=watchlist), problems

"""Where the settings file and the state directory are when nobody says."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_CONFIG_NAME = "trialwatch.yaml"


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """systemd's StateDirectory first, then the XDG state directory."""
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "trialwatch"


def default_database_url(state_dir: Path) -> str:
    """An SQLite file in the state directory: nothing to set up for one server."""
    return f"sqlite:///{state_dir / 'trialwatch.sqlite'}"


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """--config, then $TRIALWATCH_CONFIG, then ./trialwatch.yaml; None means built-in defaults."""
    if cli_path:
        return Path(cli_path)
    if environ.get("TRIALWATCH_CONFIG"):
        return Path(environ["TRIALWATCH_CONFIG"])
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.exists() else None

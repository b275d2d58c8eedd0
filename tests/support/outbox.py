"""A settable clock and a configured store for the notifier tests (outbox, digests, formats, templates)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.workspace import Workspace
from watcher.config import Config, load_config
from watcher.store import Store

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


def setup(workspace: Workspace, channels: dict[str, Any], extra: str = "") -> tuple[Config, Store]:
    workspace.write(trials=["NCT04728893"], channels=channels, extra=extra)
    config = load_config(workspace.settings)
    return config, workspace.store(config.settings.storage_url)

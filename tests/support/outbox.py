"""A settable clock, a configured store and typed messages for the notifier and store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.workspace import Workspace
from watcher.config import Config, load_config
from watcher.messages import ChangesPayload, NewMessage
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


def owed(nct_id: str, version: int = 1, channel: str = "ops") -> NewMessage:
    """A change set owed to a channel, with no changes: what the store reads of it is the trial and the version."""
    payload = ChangesPayload(
        nct_id=nct_id, label=None, title=None, version=version, detected_at=T0.isoformat(), changes=()
    )
    return NewMessage(channel, payload)

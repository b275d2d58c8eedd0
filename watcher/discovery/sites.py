"""Nearby-site events for one new version of a trial with `near:` (its own, its tag's or its search's)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog

from watcher.config import Config
from watcher.detect.nearby import nearby_events
from watcher.messages import NewMessage
from watcher.models import Snapshot, Trial
from watcher.notify.discovery import nearby_messages

log = structlog.get_logger("watcher.discovery")


def site_messages(
    config: Config,
    trial: Trial,
    title: str | None,
    old: Snapshot | None,
    new: Mapping[str, Any],
    *,
    notify: bool,
    at: datetime,
    write: Callable[[str], Any] = print,
) -> list[NewMessage]:
    """Messages for the sites within `trial.near` that are new or newly open in `new`.

    `old` is the stored version before `new`; for a first version (None) every open site in reach is
    news, so the cycle lets a baseline speak only with `notify.baseline`."""
    if trial.near is None or not notify:
        return []
    events = nearby_events(old.record if old else None, new, trial.near)
    if not events:
        return []
    log.info("trial.nearby_sites", nct_id=trial.nct_id, sites=[e.data["facility"] for e in events])
    if not config.settings.channels:
        for event in events:
            write(f"== {trial.display}: {event.summary}\n")
        return []
    return nearby_messages(trial, title, events, config.settings, detected_at=at)

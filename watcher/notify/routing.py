"""Which channel hears of which change: pure rules over the watchlist and channel settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from watcher.config import ChannelSettings, Settings, minor_schedule
from watcher.detect.filters import notifiable
from watcher.detect.studies import study_matches
from watcher.models import Change, Trial


def channels_for(trial: Trial, channels: Mapping[str, ChannelSettings]) -> list[str]:
    """The trial's own `channels:` list, plus every channel subscribed to one of its tags.

    A trial that names no channels goes to every channel that is not tag-restricted.
    """
    chosen: list[str] = []
    for name, channel in channels.items():
        by_tag = bool(channel.tags) and bool(set(channel.tags) & set(trial.tags))
        wanted = (by_tag or not channel.tags) if trial.channels is None else (name in trial.channels or by_tag)
        if wanted:
            chosen.append(name)
    return chosen


def route(trial: Trial, changes: Sequence[Change], settings: Settings) -> dict[str, list[Change]]:
    """Channel name → the changes it should receive; channels with nothing to say are left out."""
    wanted = [
        c
        for c in changes
        if notifiable(
            c,
            ignore=(*settings.ignore, *trial.ignore),
            only=trial.only or settings.only,
            min_severity=trial.min_severity or settings.min_severity,
            include_bookkeeping=settings.include_bookkeeping,
        )
    ]
    routed: dict[str, list[Change]] = {}
    for name in channels_for(trial, settings.channels):
        channel = settings.channels[name]
        picked = [
            c
            for c in wanted
            if notifiable(
                c,
                ignore=channel.ignore,
                only=channel.only,
                min_severity=channel.min_severity,
                include_bookkeeping=settings.include_bookkeeping,
            )
        ]
        if picked:
            routed[name] = picked
    return routed


def unlisted_trial(nct_id: str, record: Mapping[str, Any], settings: Settings, *, quiet: bool) -> Trial | None:
    """A study that is not on the watchlist, in whole-registry mode (None otherwise): it reaches only
    the channels whose `studies:` filter it matches, and none at all while `quiet` (the registry's
    first sync: nobody wants 560,000 baselines). `channels=()` also keeps it off stdout."""
    if not settings.registry.all:
        return None
    matched = (
        ()
        if quiet
        else tuple(
            name
            for name, channel in settings.channels.items()
            if channel.studies is not None and study_matches(channel.studies, record)
        )
    )
    return Trial(nct_id=nct_id, channels=matched)


def for_stdout(trial: Trial, changes: Sequence[Change], settings: Settings) -> list[Change]:
    """What a user without channels sees printed: the same filters as a channel without options.
    A study only the whole-registry mode watches (`channels=()`) is never printed."""
    if trial.channels == ():
        return []
    return [
        c
        for c in changes
        if notifiable(
            c,
            ignore=(*settings.ignore, *trial.ignore),
            only=trial.only or settings.only,
            min_severity=trial.min_severity or settings.min_severity,
            include_bookkeeping=settings.include_bookkeeping,
        )
    ]


def minor_only(changes: Sequence[Change]) -> bool:
    """A change set nobody need act on at once: every change minor (a geoPoint corrected, a first-post
    date turned ACTUAL, a derived citation linked)."""
    return bool(changes) and all(c.severity == "minor" for c in changes)


def held_for_digest(routed: Mapping[str, Sequence[Change]], settings: Settings) -> set[str]:
    """The channels whose change set waits for their digest of minor changes (`minor` setting): a
    set holding a major or critical change is always sent at once, in full."""
    return {
        name
        for name, changes in routed.items()
        if name in settings.channels and minor_only(changes) and minor_schedule(settings.channels[name]) is not None
    }

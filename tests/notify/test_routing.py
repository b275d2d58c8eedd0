"""Routing: which channel hears of which change (pure; no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.config import ApiSettings, ChannelSettings, Settings
from watcher.models import Change, Trial
from watcher.notify.routing import channels_for, route

STATUS = Change("status.overallStatus", "changed", "RECRUITING", "SUSPENDED", "critical")
ENROLLMENT = Change("design.enrollmentCount", "changed", 450, 520, "major")
SITE = Change("locations.mayo|rochester|mn|us", "added", None, {"facility": "Mayo"}, "major")
CONTACT = Change("locations.mayo|rochester|mn|us.contacts", "changed", "a", "b", "minor")
KEYWORD = Change("conditions.keywords", "changed", ["a"], ["b"], "minor")
UPDATED = Change("status.lastUpdatePostDate", "changed", "2026-01-01", "2026-02-01", "minor")
ALL = [STATUS, ENROLLMENT, SITE, CONTACT, KEYWORD, UPDATED]


def settings(**channels: ChannelSettings) -> Settings:
    return Settings(
        path=None,
        api=ApiSettings(),
        storage_url="sqlite://",
        state_dir=Path("."),
        interval=timedelta(hours=6),
        jitter=timedelta(),
        run_at_start=True,
        channels=channels,
        watchlist_path=Path("watchlist.yaml"),
    )


def ch(name: str, **kwargs: object) -> ChannelSettings:
    return ChannelSettings(name=name, url="json://localhost/x", **kwargs)  # type: ignore[arg-type]


def fields(routed: dict[str, list[Change]]) -> dict[str, list[str]]:
    return {name: [c.field for c in changes] for name, changes in routed.items()}


@pytest.mark.parametrize(
    ("trial", "channels", "expected"),
    [
        # no options: every untagged channel gets every non-bookkeeping change
        (
            Trial("NCT00000001"),
            {"a": ch("a"), "b": ch("b")},
            {
                "a": [STATUS.field, ENROLLMENT.field, SITE.field, CONTACT.field, KEYWORD.field],
                "b": [STATUS.field, ENROLLMENT.field, SITE.field, CONTACT.field, KEYWORD.field],
            },
        ),
        # per-channel min_severity
        (
            Trial("NCT00000001"),
            {"pager": ch("pager", min_severity="critical"), "team": ch("team", min_severity="major")},
            {"pager": [STATUS.field], "team": [STATUS.field, ENROLLMENT.field, SITE.field]},
        ),
        # per-channel only / ignore globs (a glob covers sub-fields)
        (
            Trial("NCT00000001"),
            {
                "sites": ch("sites", only=("locations.*",), ignore=("locations.*.contacts",)),
                "rest": ch("rest", ignore=("locations",)),
            },
            {"sites": [SITE.field], "rest": [STATUS.field, ENROLLMENT.field, KEYWORD.field]},
        ),
        # a trial naming its channels reaches only those
        (
            Trial("NCT00000001", channels=("b",)),
            {"a": ch("a"), "b": ch("b")},
            {"b": [STATUS.field, ENROLLMENT.field, SITE.field, CONTACT.field, KEYWORD.field]},
        ),
        # a tag channel takes the trials with its tag, and only those (plus trials naming it)
        (
            Trial("NCT00000001", tags=("oncology",)),
            {
                "onc": ch("onc", tags=("oncology",)),
                "neuro": ch("neuro", tags=("neurology",)),
                "all": ch("all", min_severity="critical"),
            },
            {"onc": [STATUS.field, ENROLLMENT.field, SITE.field, CONTACT.field, KEYWORD.field], "all": [STATUS.field]},
        ),
        (
            Trial("NCT00000001", channels=("all",), tags=("neurology",)),
            {"neuro": ch("neuro", tags=("neurology",), only=("status.*",)), "all": ch("all", min_severity="critical")},
            {"neuro": [STATUS.field], "all": [STATUS.field]},
        ),
        # the trial's own filters apply before the channel's
        (
            Trial("NCT00000001", min_severity="major", ignore=("design.*",)),
            {"a": ch("a")},
            {"a": [STATUS.field, SITE.field]},
        ),
        # a channel left with nothing to say gets no message at all
        (Trial("NCT00000001", only=("conditions.*",)), {"a": ch("a", min_severity="major")}, {}),
    ],
)
def test_route(trial: Trial, channels: dict[str, ChannelSettings], expected: dict[str, list[str]]) -> None:
    assert fields(route(trial, ALL, settings(**channels))) == expected


def test_bookkeeping_needs_include_bookkeeping() -> None:
    config = replace(settings(a=ch("a", only=("status.*",))), include_bookkeeping=True)
    assert fields(route(Trial("NCT00000001"), ALL, config)) == {"a": [STATUS.field, UPDATED.field]}


def test_global_filters_apply_to_every_channel() -> None:
    config = replace(settings(a=ch("a"), b=ch("b", only=("locations.*",))), min_severity="major", ignore=("design.*",))
    assert fields(route(Trial("NCT00000001"), ALL, config)) == {"a": [STATUS.field, SITE.field], "b": [SITE.field]}


@given(st.lists(st.sampled_from(["a", "b", "c"]), unique=True), st.lists(st.sampled_from(["x", "y"]), unique=True))
def test_routing_never_invents_channels_or_changes(named: list[str], tags: list[str]) -> None:
    channels = {"a": ch("a"), "b": ch("b", tags=("x",)), "c": ch("c", min_severity="critical")}
    trial = Trial("NCT00000001", channels=tuple(named) or None, tags=tuple(tags))
    routed = route(trial, ALL, settings(**channels))
    assert set(routed) <= set(channels_for(trial, channels)) <= set(channels)
    for changes in routed.values():
        assert changes and all(c in ALL for c in changes)
    if named:
        assert set(channels_for(trial, channels)) == set(named) | ({"b"} if "x" in tags else set())

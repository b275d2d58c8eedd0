"""Atom feeds: valid for feed readers (feedparser, no bozo), per tag, written after each cycle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import feedparser

from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace
from watcher.views.feeds import FeedEntry, entry_id, render_atom

TRIAL, OTHER = "NCT04728893", "NCT03418623"


def suspend(study: dict[str, Any]) -> None:
    study["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"
    study["protocolSection"]["statusModule"]["whyStopped"] = "Sponsor <decision> & review"


def test_render_is_valid_atom_even_with_markup_in_values() -> None:
    at = datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
    entry = FeedEntry(TRIAL, 2, at, "A&B <trial>", ("status.whyStopped: (none) → a <b> & c",), "critical")
    parsed = feedparser.parse(render_atom([entry], title="T & co", feed_id="tag:x,2026:f", updated=at))
    assert not parsed.bozo, parsed.get("bozo_exception")
    (item,) = parsed.entries
    assert item.title == f"{TRIAL} (A&B <trial>): 1 field change [critical]"
    assert item.id == entry_id(entry)
    assert item.link == f"https://clinicaltrials.gov/study/{TRIAL}"
    assert "a <b> & c" in item.content[0].value
    empty = feedparser.parse(render_atom([], title="none", feed_id="tag:x,2026:f", updated=at))
    assert not empty.bozo and empty.entries == []


def test_feed_command_and_files_written_by_the_cycle(workspace: Workspace, fake_api: FakeCtGov) -> None:
    workspace.write(
        trials=[{"id": TRIAL, "label": "CLL", "tags": ["oncology", "cll"]}, OTHER],
        extra="feeds:\n  path: feeds/trialwatch.atom\n",
    )
    assert workspace.cli("check").code == 0
    empty = feedparser.parse(workspace.cli("feed").out)
    assert not empty.bozo and empty.entries == [], "baselines are not news"
    fake_api.update(TRIAL, suspend)
    assert workspace.cli("check").code == 0

    parsed = feedparser.parse(workspace.cli("feed").out)
    assert not parsed.bozo, parsed.get("bozo_exception")
    (entry,) = parsed.entries
    assert entry.title.startswith(f"{TRIAL} (CLL): 2 field changes")
    body = entry.content[0].value
    assert "status.overallStatus: RECRUITING → SUSPENDED" in body
    assert "status.whyStopped: (none) → Sponsor <decision> & review" in body
    assert "lastUpdatePostDate" not in body, "bookkeeping is left out, as in notifications"

    files = workspace.root / "feeds"
    assert sorted(p.name for p in files.iterdir()) == [
        "trialwatch-cll.atom",
        "trialwatch-oncology.atom",
        "trialwatch.atom",
    ]
    on_disk = feedparser.parse((files / "trialwatch.atom").read_bytes())
    assert not on_disk.bozo and len(on_disk.entries) == 1
    tagged = feedparser.parse(workspace.cli("feed", "--tag", "oncology").out)
    assert not tagged.bozo and [e.id for e in tagged.entries] == [entry.id]
    assert workspace.cli("feed", "--tag", "nope").code == 2


def test_a_cycle_over_some_trials_keeps_the_other_trials_in_the_feeds(
    workspace: Workspace,
    fake_api: FakeCtGov,
) -> None:
    """The service polls trials on their own intervals; the feeds it rewrites after such a cycle
    still hold every watched trial's changes and every tag's file."""
    from watcher.config import load_config
    from watcher.registry.client import CtGovClient
    from watcher.service.workers import poll_trials
    from watcher.store import Store

    workspace.write(trials=[{"id": TRIAL, "tags": ["cll"]}, OTHER], extra="feeds:\n  path: feeds/trialwatch.atom\n")
    config = load_config(workspace.settings)
    with Store(config.settings.storage_url) as store, CtGovClient(config.settings.api) as client:
        poll_trials(config, store, client, only=None, write=lambda _: None)
        fake_api.update(TRIAL, suspend)
        poll_trials(config, store, client, only=[TRIAL], write=lambda _: None)
        poll_trials(config, store, client, only=[OTHER], write=lambda _: None)
    files = workspace.root / "feeds"
    assert sorted(p.name for p in files.iterdir()) == ["trialwatch-cll.atom", "trialwatch.atom"]
    for name in ("trialwatch.atom", "trialwatch-cll.atom"):
        entries = feedparser.parse((files / name).read_bytes()).entries
        assert [e.title.split(":")[0] for e in entries] == [TRIAL], name

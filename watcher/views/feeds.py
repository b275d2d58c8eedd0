"""Atom feeds of recent changes: one for the whole watchlist and one per tag.

Rendering is pure (entries in, XML text out); `write_feeds` is the thin I/O edge the cycle
calls, replacing each file atomically so a feed reader never sees half a file. One entry per
trial version, holding its changes one per line (`field: old → new`), newest first. Entry IDs
are tag URIs built from the NCT ID and the detection time, so they survive a backfill that
renumbers versions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from watcher import __version__
from watcher.config import Config
from watcher.detect.catalog import is_bookkeeping
from watcher.detect.describe import change_line
from watcher.files import write_atomically
from watcher.models import SEVERITY_RANK, StoredChange, change_to_dict, history_url, study_url
from watcher.store import Store
from watcher.store.discovery import Match, watched_trials

FEED_NS = "http://www.w3.org/2005/Atom"

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""What XML 1.0 cannot hold at all, escaped or not (its `Char` production): C0 controls but tab and
line breaks, lone surrogates, U+FFFE and U+FFFF. Record text may hold them; one makes a feed unreadable."""


def xml_text(value: object) -> str:
    """`value` as XML character data: illegal characters dropped, markup characters escaped."""
    return escape(_XML_ILLEGAL.sub("", str(value)))


@dataclass(frozen=True, slots=True)
class FeedEntry:
    nct_id: str
    version: int
    detected_at: datetime
    label: str | None
    lines: tuple[str, ...]
    severity: str
    title: str | None = None
    """Set for an entry that is no field change: a new study a search announced."""


def entries_from(
    changes: Iterable[StoredChange], labels: dict[str, str | None], *, include_bookkeeping: bool = False
) -> list[FeedEntry]:
    """Group changes by (trial, version) into entries, newest first; baselines are left out."""
    groups: dict[tuple[str, int], list[StoredChange]] = {}
    for item in changes:
        if item.baseline or (not include_bookkeeping and is_bookkeeping(item.change.field)):
            continue
        groups.setdefault((item.nct_id, item.version), []).append(item)
    entries = []
    for (nct_id, version), items in groups.items():
        worst = max((i.change.severity for i in items), key=lambda s: SEVERITY_RANK.get(s, 0))
        lines = tuple(change_line(change_to_dict(i.change)) for i in items)
        entries.append(FeedEntry(nct_id, version, items[0].detected_at, labels.get(nct_id), lines, worst))
    entries.sort(key=lambda e: (e.detected_at, e.nct_id), reverse=True)
    return entries


def announced_entries(matches: Iterable[Match], *, since: datetime) -> list[FeedEntry]:
    """The new studies searches announced since `since` (baselines left out): one entry per study (two
    searches finding one study name both), so a study a search without `watch: true` announced can be
    found again."""
    found: dict[str, list[Match]] = {}
    for m in matches:
        if not m.baseline and m.first_seen_at >= since:
            found.setdefault(m.nct_id, []).append(m)
    entries = []
    for nct_id, by in found.items():
        names = ", ".join(repr(m.search) for m in by)
        line = f"New study matching search {names}: {by[0].title or nct_id}"
        entries.append(FeedEntry(nct_id, 0, by[0].first_seen_at, None, (line,), "major", title=line))
    return entries


def _stamp(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def quoteattr_xml(value: str) -> str:
    return quoteattr(_XML_ILLEGAL.sub("", value))


def entry_id(entry: FeedEntry) -> str:
    announced = "/new" if entry.title else ""  # never the id of a change detected at the same moment
    return f"tag:trialwatch,2026:{entry.nct_id}/{entry.detected_at.strftime('%Y%m%dT%H%M%S%fZ')}{announced}"


def render_atom(
    entries: Sequence[FeedEntry], *, title: str, feed_id: str, updated: datetime, self_url: str | None = None
) -> str:
    """An Atom 1.0 document (RFC 4287) of `entries`."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="{FEED_NS}">',
        f"  <title>{xml_text(title)}</title>",
        f"  <id>{xml_text(feed_id)}</id>",
        f"  <updated>{_stamp(entries[0].detected_at if entries else updated)}</updated>",
        "  <author><name>TrialWatch</name></author>",
        f'  <generator version="{xml_text(__version__)}">TrialWatch</generator>',
    ]
    if self_url:
        out.append(f'  <link rel="self" type="application/atom+xml" href={quoteattr_xml(self_url)}/>')
    for entry in entries:
        head = f"{entry.nct_id} ({entry.label})" if entry.label else entry.nct_id
        count = len(entry.lines)
        title = entry.title or f"{head}: {count} field change" + ("s" if count != 1 else "")
        out += [
            "  <entry>",
            f"    <title>{xml_text(title)}{xml_text(f' [{entry.severity}]')}</title>",
            f"    <id>{xml_text(entry_id(entry))}</id>",
            f"    <updated>{_stamp(entry.detected_at)}</updated>",
            f'    <link rel="alternate" type="text/html" href={quoteattr_xml(study_url(entry.nct_id))}/>',
            f'    <link rel="related" type="text/html" href={quoteattr_xml(history_url(entry.nct_id))}/>',
            f"    <category term={quoteattr_xml(entry.severity)}/>",
            f"    <summary>{xml_text(entry.lines[0])}</summary>",
            f'    <content type="text">{xml_text(chr(10).join(entry.lines))}</content>',
            "  </entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"


def feed_for(config: Config, store: Store, *, now: datetime, tag: str | None = None) -> str:
    """The Atom document for the watchlist (or the trials with `tag`; or, watching the whole registry,
    every study) over `feeds.days`."""
    trials = [t for t in watched_trials(config, store.discovery) if tag is None or tag in t.tags]
    since = now - config.settings.feeds.days
    everything = tag is None and config.settings.registry.all  # whole-registry mode: every stored study
    changes = store.changes.across(since=since, nct_ids=None if everything else [t.nct_id for t in trials])
    entries = entries_from(
        changes, {t.nct_id: t.label for t in trials}, include_bookkeeping=config.settings.include_bookkeeping
    )
    searches = [s.name for s in config.watchlist.searches if tag is None or s.tag == tag]
    entries += announced_entries(store.discovery.matches(searches) if searches else [], since=since)
    entries.sort(key=lambda e: (e.detected_at, e.nct_id), reverse=True)
    entries = entries[: config.settings.feeds.max_entries]
    title = "TrialWatch: recent changes" + (f" tagged {tag}" if tag else "")
    feed_id = "tag:trialwatch,2026:feed/" + (f"tag/{tag}" if tag else "all")
    return render_atom(entries, title=title, feed_id=feed_id, updated=now)


def tag_path(path: Path, tag: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", tag).strip("-") or "tag"
    return path.with_name(f"{path.stem}-{safe}{path.suffix or '.atom'}")


def write_feeds(config: Config, store: Store, *, now: datetime) -> list[Path]:
    """Write `feeds.path` (and one file per tag beside it); returns the files written."""
    feeds = config.settings.feeds
    if feeds.path is None:
        return []
    written = [write_atomically(feeds.path, feed_for(config, store, now=now))]
    if feeds.per_tag:
        tags = sorted({tag for trial in watched_trials(config, store.discovery) for tag in trial.tags})
        written += [
            write_atomically(tag_path(feeds.path, tag), feed_for(config, store, now=now, tag=tag)) for tag in tags
        ]
    return written

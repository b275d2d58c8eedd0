"""`trialwatch site build DIR`: the static mirror, from the same templates as the web view.

Per stored trial `trials/NCT….md` (the model page with its YAML front matter) and
`trials/NCT….html` (the same page, styled); `index.html` (every trial, filtered in the page by a
small script of our own), `tags/<tag>.html`, the Atom feeds under `feeds/`, `changes.json` (the
newest 5,000 changes of the last 30 days, newest first).

Incremental: a manifest (`.trialwatch-site.json`) keeps each trial's newest version at the last
build; a rebuild writes the pages of the trials whose newest version differs, then every index.
Atomic: each file is written beside itself and renamed over the old one (`write_atomically`), so a
web server serving DIR never sends half a page; the manifest is written last, so a build that
stops midway is finished by the next one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from markupsafe import Markup

from watcher.config import Config
from watcher.files import write_atomically
from watcher.store import Store
from watcher.store.discovery import watched_trials
from watcher.views.changes import change_row
from watcher.views.feeds import feed_for
from watcher.views.html import SiteLinks, render, site_name, static_text
from watcher.views.trial_page import render_trial_page
from watcher.views.trial_view import load_trial, view_of
from watcher.views.watch import tag_map

MANIFEST = ".trialwatch-site.json"
MANIFEST_FORMAT = 1
RECENT_DAYS = 30
CHANGES_KEPT = 5000  # changes.json: the newest changes of the window, newest first


@dataclass(frozen=True, slots=True)
class BuildReport:
    trials_written: int
    trials_total: int
    files_written: int
    full: bool


def _write(path: Path, text: str) -> None:
    write_atomically(path, text, durable=False)


def read_manifest(root: Path) -> dict[str, int] | None:
    """The newest version of each trial at the last build; None when there is none (or it is unreadable)."""
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, Mapping) or data.get("format") != MANIFEST_FORMAT:
        return None
    trials = data.get("trials")
    return {str(k): int(v) for k, v in trials.items()} if isinstance(trials, Mapping) else None


def build_site(config: Config, store: Store, root: Path, *, now: datetime, full: bool = False) -> BuildReport:
    """Write the site under `root`; only the trials with a new version since the last build unless `full`."""
    latest = store.browse.latest_versions()
    before = None if full else read_manifest(root)
    changed = sorted(n for n, v in latest.items() if before is None or before.get(n) != v)
    for nct_id in changed:
        write_trial(config, store, root, nct_id, now=now)
    files = 2 * len(changed) + write_indexes(config, store, root, now=now)
    manifest = {"format": MANIFEST_FORMAT, "built_at": now.isoformat(), "trials": latest}
    write_atomically(root / MANIFEST, json.dumps(manifest, sort_keys=True))
    return BuildReport(len(changed), len(latest), files + 1, before is None)


def write_trial(config: Config, store: Store, root: Path, nct_id: str, *, now: datetime) -> None:
    data = load_trial(store, nct_id)
    if data is None:
        return
    view = view_of(config, data, now=now, days=RECENT_DAYS)
    latest = data.latest
    changes = [(c.detected_at, c.change) for c in data.changes]
    page = render_trial_page(
        latest.record, changes, days=RECENT_DAYS, today=now.date(), front_matter=True, last_seen=latest.fetched_at
    )
    _write(root / "trials" / f"{nct_id}.md", page)
    html = render("trial.html", links=SiteLinks(depth=1), t=view, chart=Markup(view.chart), markdown=f"{nct_id}.md")
    _write(root / "trials" / f"{nct_id}.html", html)


def write_indexes(config: Config, store: Store, root: Path, *, now: datetime) -> int:
    """index.html, one page and one feed per tag, the feed of everything, changes.json, the assets."""
    rows = store.browse.all_rows()
    trials = watched_trials(config, store.discovery)
    tags = sorted({tag for t in trials for tag in t.tags})
    trial_tags = tag_map(trials)
    page = {"rows": rows, "tags": tags, "trial_tags": trial_tags}
    _write(root / "index.html", render("site_index.html", links=SiteLinks(), heading="Watch list", tag=None, **page))
    for tag in tags:
        tagged = [r for r in rows if tag in trial_tags.get(r.nct_id, ())]
        html = render(
            "site_index.html", links=SiteLinks(depth=1), heading=f"Tagged {tag}", tag=tag, **{**page, "rows": tagged}
        )
        _write(root / "tags" / f"{site_name(tag)}.html", html)
        _write(root / "feeds" / f"{site_name(tag)}.atom", feed_for(config, store, now=now, tag=tag))
    _write(root / "feeds" / "all.atom", feed_for(config, store, now=now))
    since = now - max(config.settings.feeds.days, timedelta(days=RECENT_DAYS))
    changes = [change_row(c) for c in store.changes.across(since=since, newest=CHANGES_KEPT)][::-1]
    _write(root / "changes.json", json.dumps(changes, ensure_ascii=False, indent=1))
    for name in ("style.css", "filter.js"):
        _write(root / "static" / name, static_text(name))
    return 2 * len(tags) + 5

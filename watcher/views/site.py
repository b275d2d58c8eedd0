"""`trialwatch site build DIR`: the static mirror, from the same templates as the web view.

Per stored trial `trials/NCT….md` (the model page with its YAML front matter) and
`trials/NCT….html` (the same page, styled); `index.html` (the trials, filtered in the page by a
small script of our own), `tags/<tag>.html`, the Atom feeds under `feeds/`, `changes.json` (the
newest 5,000 changes of the last 30 days, newest first).

Bounded indexes: up to `INDEX_ROWS` trials, index.html lists them all; beyond (a whole-registry
site), index.html lists the `INDEX_ROWS` most recently changed and links one page per block of
10,000 NCT IDs (`all/NCT0451.html`: at most 10,000 rows, a few hundred at the registry's density),
and a tag of more trials than `INDEX_ROWS` gets several pages (`tags/<tag>-2.html`, …).

Incremental: a manifest (`.trialwatch-site.json`) keeps each trial's newest version and a digest of
what each index page showed at the last build; a rebuild writes the pages of the trials whose
newest version differs, and the index pages whose rows differ. Trials are read a page of
`BATCH` at a time (a few queries for the page, not several per trial), and `jobs` processes can
share the pages of a full build.
Atomic: each file is written beside itself and renamed over the old one (`write_atomically`,
without an fsync: a crash costs a rebuild, not a half page), so a web server serving DIR never
sends half a page; the manifest is written last, so a build that stops midway is finished by the
next one.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

from markupsafe import Markup

from watcher.config import Config
from watcher.files import write_atomically
from watcher.store import Store
from watcher.store.browse import TrialRowView
from watcher.store.discovery import watched_trials
from watcher.views.changes import change_row
from watcher.views.feeds import feed_for
from watcher.views.html import SiteLinks, render, site_name, static_text
from watcher.views.trial_page import render_trial_page
from watcher.views.trial_view import TrialData, load_trials, view_of
from watcher.views.watch import tag_map

MANIFEST = ".trialwatch-site.json"
MANIFEST_FORMAT = 2
RECENT_DAYS = 30
CHANGES_KEPT = 5000  # changes.json: the newest changes of the window, newest first
INDEX_ROWS = 2000  # rows of one index page
BATCH = 200  # trials read from the store at once
STALE = re.compile(r"(all|tags)/[A-Za-z0-9_.-]+\.html")


@dataclass(frozen=True, slots=True)
class BuildReport:
    trials_written: int
    trials_total: int
    files_written: int
    full: bool


def _write(path: Path, text: str) -> None:
    write_atomically(path, text, durable=False)


@dataclass(frozen=True, slots=True)
class Manifest:
    trials: dict[str, int]
    pages: dict[str, str]  # index page (relative path) → digest of its rows


def read_manifest(root: Path) -> Manifest | None:
    """What the last build wrote; None when there is none (or it is unreadable, or of another format)."""
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, Mapping) or data.get("format") != MANIFEST_FORMAT:
        return None
    trials, pages = data.get("trials"), data.get("pages")
    if not isinstance(trials, Mapping) or not isinstance(pages, Mapping):
        return None
    return Manifest({str(k): int(v) for k, v in trials.items()}, {str(k): str(v) for k, v in pages.items()})


def build_site(
    config: Config, store: Store, root: Path, *, now: datetime, full: bool = False, jobs: int = 1
) -> BuildReport:
    """Write the site under `root`; only the trials with a new version since the last build unless
    `full`. `jobs` > 1 shares the trial pages among that many processes (each its own connection)."""
    latest = store.browse.latest_versions()
    before = None if full else read_manifest(root)
    changed = sorted(n for n, v in latest.items() if before is None or before.trials.get(n) != v)
    if jobs > 1 and len(changed) > jobs * BATCH:
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited connection
        with ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
            slices = [changed[i::jobs] for i in range(jobs)]
            list(pool.map(_write_slice, [(config, store.url, root, part, now) for part in slices]))
    else:
        write_trials(config, store, root, changed, now=now)
    pages = write_indexes(config, store, root, now=now, stored=len(latest), before=before.pages if before else {})
    manifest = {"format": MANIFEST_FORMAT, "built_at": now.isoformat(), "trials": latest, "pages": pages.digests}
    write_atomically(root / MANIFEST, json.dumps(manifest, sort_keys=True))
    return BuildReport(len(changed), len(latest), 2 * len(changed) + pages.written + 1, before is None)


def _write_slice(job: tuple[Config, str, Path, list[str], datetime]) -> None:
    config, url, root, nct_ids, now = job
    with Store(url, read_only=True) as store:
        write_trials(config, store, root, nct_ids, now=now)


def write_trials(config: Config, store: Store, root: Path, nct_ids: Sequence[str], *, now: datetime) -> None:
    """The two pages of each of these trials, read from the store `BATCH` trials at a time."""
    for start in range(0, len(nct_ids), BATCH):
        for data in load_trials(store, nct_ids[start : start + BATCH]).values():
            write_trial(config, root, data, now=now)


def write_trial(config: Config, root: Path, data: TrialData, *, now: datetime) -> None:
    nct_id = data.latest.nct_id
    view = view_of(config, data, now=now, days=RECENT_DAYS)
    latest = data.latest
    changes = [(c.detected_at, c.change) for c in data.changes]
    page = render_trial_page(
        latest.record, changes, days=RECENT_DAYS, today=now.date(), front_matter=True, last_seen=latest.fetched_at
    )
    _write(root / "trials" / f"{nct_id}.md", page)
    html = render("trial.html", links=SiteLinks(depth=1), t=view, chart=Markup(view.chart), markdown=f"{nct_id}.md")
    _write(root / "trials" / f"{nct_id}.html", html)


@dataclass(frozen=True, slots=True)
class IndexPages:
    digests: dict[str, str]
    written: int


def _digest(rows: Sequence[TrialRowView], trial_tags: Mapping[str, tuple[str, ...]], *extra: Any) -> str:
    """What an index page shows, hashed: the page is rewritten only when this differs."""
    shown = [
        (r.nct_id, r.title, r.overall_status, r.sponsor, str(r.last_changed_at), trial_tags.get(r.nct_id, ()))
        for r in rows
    ]
    return hashlib.sha256(json.dumps([shown, extra], default=str).encode()).hexdigest()[:32]


def _split(rows: Sequence[TrialRowView], size: int) -> Iterator[Sequence[TrialRowView]]:
    for start in range(0, max(len(rows), 1), size):
        yield rows[start : start + size]


def _blocks(rows: Iterable[TrialRowView]) -> Iterator[tuple[str, list[TrialRowView]]]:
    """The trials by block of 10,000 NCT IDs (`NCT0451` holds NCT04510000 to NCT04519999), from rows
    in NCT ID order: one block in memory at a time."""
    for name, found in groupby(rows, key=lambda r: r.nct_id[:7]):
        yield name, list(found)


def write_indexes(
    config: Config, store: Store, root: Path, *, now: datetime, stored: int, before: Mapping[str, str] | None = None
) -> IndexPages:
    """index.html (and the block pages past `INDEX_ROWS` trials), the tag pages and feeds, the feed of
    everything, changes.json, the assets. An index page whose digest equals `before`'s is not rewritten.
    `stored`: how many trials have a stored version (`build_site` has counted them already)."""
    before = before or {}
    trials = watched_trials(config, store.discovery)
    tags = sorted({tag for t in trials for tag in t.tags})
    trial_tags = tag_map(trials)
    digests: dict[str, str] = {}
    written = 0

    def page(path: str, depth: int, shown: Sequence[TrialRowView], **context: Any) -> None:
        nonlocal written
        digest = _digest(shown, trial_tags, sorted(context.items()), tags)
        digests[path] = digest
        if before.get(path) == digest and (root / path).is_file():
            return
        links = SiteLinks(depth=depth)
        html = render("site_index.html", links=links, rows=shown, tags=tags, trial_tags=trial_tags, **context)
        _write(root / path, html)
        written += 1

    block_links = []
    if stored > INDEX_ROWS:  # past one page, every trial is on its block's page, streamed block by block
        for name, found in _blocks(store.browse.rows_by_id()):
            page(f"all/{name}.html", 1, found, heading=f"Trials {name}…", tag=None, blocks=[], parts=[])
            block_links.append((name, f"all/{name}.html", len(found)))
    heading = "Watch list" if not block_links else f"Watch list: the {INDEX_ROWS:,} most recently changed of {stored:,}"
    newest = store.browse.newest_changed(INDEX_ROWS)
    page("index.html", 0, newest, heading=heading, tag=None, blocks=block_links, parts=[])
    for tag in tags:
        tagged = store.browse.rows_of([n for n, own in trial_tags.items() if tag in own])
        parts = list(_split(tagged, INDEX_ROWS))
        names = [f"{site_name(tag)}{'' if i == 0 else f'-{i + 1}'}.html" for i in range(len(parts))]
        for i, part in enumerate(parts):
            others = [(f"{i + 1}", n) for i, n in enumerate(names)] if len(parts) > 1 else []
            page(f"tags/{names[i]}", 1, part, heading=f"Tagged {tag}", tag=tag, blocks=[], parts=others)
        _write(root / "feeds" / f"{site_name(tag)}.atom", feed_for(config, store, now=now, tag=tag))
    for stale in set(before) - set(digests):  # a block or tag page nothing lists any more
        if STALE.fullmatch(stale):  # never a path the manifest could point outside DIR with
            (root / stale).unlink(missing_ok=True)
    _write(root / "feeds" / "all.atom", feed_for(config, store, now=now))
    since = now - max(config.settings.feeds.days, timedelta(days=RECENT_DAYS))
    changes = [change_row(c) for c in store.changes.across(since=since, newest=CHANGES_KEPT)][::-1]
    _write(root / "changes.json", json.dumps(changes, ensure_ascii=False, indent=1))
    for name in ("style.css", "filter.js"):
        _write(root / "static" / name, static_text(name))
    return IndexPages(digests, written + len(tags) + 4)

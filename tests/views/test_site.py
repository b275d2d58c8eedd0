"""`trialwatch site build`: the static mirror's files, its escaping, its incremental and atomic rebuild,
and the service's rebuild after a cycle (`site.after_cycle`)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, text

from tests.support.shared import seed_text
from tests.support.web_store import HOSTILE_ID, TAGS, SeededSite, renamed, store_versions, trial_versions
from watcher.cycle import housekeeping
from watcher.store import Store
from watcher.views import site
from watcher.views.site import MANIFEST, build_site


def seed_front_matter_keys() -> list[str]:
    head = seed_text("000").removeprefix("---\n").split("\n---\n")[0]
    return [line.split(":", 1)[0] for line in head.splitlines() if ":" in line and not line.startswith(" ")]


def _newest(db_url: str, limit: int) -> list[str]:
    """The `limit` stored trials changed most recently, asked of the database in SQL of its own."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            query = (
                "SELECT nct_id FROM trials WHERE nct_id IN (SELECT nct_id FROM snapshots) "
                "ORDER BY last_changed_at DESC NULLS LAST, nct_id DESC LIMIT :limit"
            )
            return [r[0] for r in conn.execute(text(query), {"limit": limit})]
    finally:
        engine.dispose()


@pytest.fixture
def built(seeded_site: SeededSite, tmp_path: Path) -> Path:
    root = tmp_path / "site"
    with Store(seeded_site.db_url) as store:
        report = build_site(seeded_site.config(), store, root, now=seeded_site.now)
    assert report.full and report.trials_written == report.trials_total == len(seeded_site.trials)
    return root


def test_every_trial_has_its_markdown_and_html_page(built: Path, seeded_site: SeededSite) -> None:
    keys = seed_front_matter_keys()
    for nct_id in seeded_site.trials:
        markdown = (built / "trials" / f"{nct_id}.md").read_text(encoding="utf-8")
        front = markdown.removeprefix("---\n").split("\n---\n")[0]
        ours = [line.split(":", 1)[0] for line in front.splitlines()]
        assert ours[:3] == ["title", "nct_id", "overall_status"] and set(ours) <= set(keys), set(ours) - set(keys)
        assert f"\nnct_id: {nct_id}\n" in f"\n{front}\n"
        assert "## Recent Field Changes (last 30 days)" in markdown and "## Key Facts" in markdown
        html = (built / "trials" / f"{nct_id}.html").read_text(encoding="utf-8")
        assert "<svg" in html and 'href="../static/style.css"' in html and 'href="../feeds/all.atom"' in html
    assert (built / "index.html").is_file() and (built / "feeds" / "all.atom").is_file()
    for tag in TAGS:
        assert (built / "tags" / f"{tag}.html").is_file() and (built / "feeds" / f"{tag}.atom").is_file()
    changes = json.loads((built / "changes.json").read_text(encoding="utf-8"))
    assert changes and {"nct_id", "field", "old", "new"} <= set(changes[0])
    assert not list(built.rglob("*.tmp")), "a temporary file was left behind"


def test_the_hostile_title_is_text_in_every_html_file(built: Path) -> None:
    for page in [*built.rglob("*.html")]:
        text = page.read_text(encoding="utf-8")
        assert "<script>alert" not in text and "<img src=x" not in text, page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (built / "trials" / f"{HOSTILE_ID}.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (built / "index.html").read_text()
    front = (built / "trials" / f"{HOSTILE_ID}.md").read_text().split("\n---\n")[0]
    assert 'title: "<script>alert(1)</script>' in front  # a quoted YAML string: data, never markup


def test_the_index_filters_without_a_server(built: Path, seeded_site: SeededSite) -> None:
    index = (built / "index.html").read_text(encoding="utf-8")
    assert index.count("data-search=") == len(seeded_site.trials)
    assert '<script src="static/filter.js"></script>' in index and (built / "static" / "filter.js").is_file()
    assert "Content-Security-Policy" in index and "'unsafe-inline'" not in index


def test_a_rebuild_writes_only_the_trials_with_a_new_version(seeded_site: SeededSite, tmp_path: Path) -> None:
    root = tmp_path / "site"
    with Store(seeded_site.db_url) as store:
        config = seeded_site.config()
        build_site(config, store, root, now=seeded_site.now)
        pages = {p: p.stat().st_mtime_ns for p in (root / "trials").glob("*.html")}
        again = build_site(config, store, root, now=seeded_site.now)
        assert (again.full, again.trials_written) == (False, 0)
        nct_id, records = next(trial_versions())
        newer = renamed(records[-1], nct_id, title="A newer title")
        assert store_versions(store, nct_id, [newer], start=seeded_site.now, step=timedelta(hours=1), after=records[-1])
        after = build_site(config, store, root, now=seeded_site.now + timedelta(hours=2))
        newest = store.browse.latest_versions()[nct_id]
    assert after.trials_written == 1
    changed = [p.name for p, mtime in pages.items() if p.stat().st_mtime_ns != mtime]
    assert changed == [f"{nct_id}.html"]
    assert "A newer title" in (root / "trials" / f"{nct_id}.md").read_text(encoding="utf-8")
    assert json.loads((root / MANIFEST).read_text())["trials"][nct_id] == newest


def test_the_service_rebuilds_the_site_after_a_cycle(seeded_site: SeededSite, tmp_path: Path) -> None:
    config = seeded_site.config()
    on = replace(
        config,
        settings=replace(config.settings, site=replace(config.settings.site, dir=tmp_path / "s", after_cycle=True)),
    )
    with Store(seeded_site.db_url) as store, structlog.testing.capture_logs() as logs:
        housekeeping.site(config, store, now=seeded_site.now)  # off by default: nothing written
        assert not (tmp_path / "s").exists()
        housekeeping.site(on, store, now=seeded_site.now)
    assert (tmp_path / "s" / "index.html").is_file()
    assert [e["event"] for e in logs] == ["site.built"]


def _listed(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return re.findall(r'<a href="\.?\.?/?trials/(NCT\d{8})\.html"', text)


def test_past_the_index_limit_the_pages_stay_bounded_and_list_every_trial(
    seeded_site: SeededSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site, "INDEX_ROWS", 4)
    root = tmp_path / "site"
    with Store(seeded_site.db_url) as store:
        config = seeded_site.config()
        build_site(config, store, root, now=seeded_site.now)
        assert _listed(root / "index.html") == _newest(seeded_site.db_url, 4)  # the most recently changed
        blocks = sorted((root / "all").glob("NCT*.html"))
        assert blocks and all(p.stem == p.stem[:7] for p in blocks)
        every = [n for p in blocks for n in _listed(p)]
        assert sorted(every) == sorted(seeded_site.trials) and all(
            n.startswith(p.stem) for p in blocks for n in _listed(p)
        )
        tagged = sorted((root / "tags").glob(f"{TAGS[0]}*.html"))
        assert [p.name for p in tagged] == [f"{TAGS[0]}-2.html", f"{TAGS[0]}.html"]
        with_tag = [t.nct_id for t in config.watchlist.trials if TAGS[0] in t.tags]
        in_order = [n for n in _newest(seeded_site.db_url, len(seeded_site.trials)) if n in with_tag]
        assert _listed(tagged[1]) + _listed(tagged[0]) == in_order  # newest change first, across its pages
        assert all(len(_listed(p)) <= 4 for p in [root / "index.html", *tagged])  # a block: 10,000 IDs at most
        pages = {p: p.stat().st_mtime_ns for p in [root / "index.html", *blocks, *tagged]}
        again = build_site(config, store, root, now=seeded_site.now)
    assert again.trials_written == 0
    assert [p for p, mtime in pages.items() if p.stat().st_mtime_ns != mtime] == []  # nothing they show changed


@pytest.mark.slow
def test_a_full_build_in_two_processes_writes_what_one_does(
    seeded_site: SeededSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site, "BATCH", 2)  # few trials: still shared between the processes
    with Store(seeded_site.db_url) as store:
        one = build_site(seeded_site.config(), store, tmp_path / "one", now=seeded_site.now)
        two = build_site(seeded_site.config(), store, tmp_path / "two", now=seeded_site.now, jobs=2)
    assert one == two
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one" / "trials").iterdir())
    assert files and files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two" / "trials").iterdir())
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name

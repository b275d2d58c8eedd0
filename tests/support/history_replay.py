"""A real record's successive versions (`pairs/`) served as HTML record history, then backfilled over HTTP.

The fake ClinicalTrials.gov (`tests/support/fakeapi.py`) is loaded with every version of one study in `pairs/`,
oldest first, so its record history holds them as versions 0…n-1 and serves their markup fields as
HTML (`tests/support/fake_history.py`), while API v2 serves the newest one as markdown. `backfill` then runs
through the real client. A false edit is a change the backfill stored that is not a change between
the real (markdown) versions; a missed edit the reverse. Shared by `tests/registry/test_markup.py` and
`bench/bench_history_html.py`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import real_pairs
from tests.support.fake_history import markup_values, render_html
from tests.support.fakeapi import FakeCtGov
from watcher.backfill import backfill
from watcher.config import load_config
from watcher.detect import changes_between
from watcher.detect.meaning import SeverityRules
from watcher.models import change_to_dict
from watcher.registry.client import CtGovClient
from watcher.store import Store


@dataclass(frozen=True, slots=True)
class Replay:
    nct_id: str
    versions: int  # in the record history
    imported: int  # past versions the backfill stored
    requests: int
    html_texts: int  # markup texts served as HTML that differ from their markdown as strings
    expected: int  # changes between the real versions
    false_edits: tuple[str, ...]  # (version, field, kind) stored but not a change between the real versions
    missed: tuple[str, ...]  # the reverse
    inexact: tuple[str, ...]  # real changes stored with other old/new values than the real versions have
    posted_dates_right: bool  # every stored past version dated by its own lastUpdatePostDate


def versions_of(nct_id: str) -> list[dict[str, Any]]:
    """The study's versions in `pairs/`, oldest first (truth.json's order)."""
    names = real_pairs.truth()["studies"][nct_id]["versions"]
    folder = real_pairs.pairs_dir() / nct_id
    return [json.loads((folder / name).read_text(encoding="utf-8")) for name in names]


def _key(version: int, change: dict[str, Any], *, values: bool = True) -> str:
    values_ = [change["old"], change["new"]] if values else []
    return json.dumps([version, change["field"], change["change"], *values_], sort_keys=True)


def replay(nct_id: str, root: Path, *, line_breaks: bool = True) -> Replay:
    versions = versions_of(nct_id)
    (root / "watchlist.yaml").write_text(f"trials:\n  - {nct_id}\n")
    with FakeCtGov(versions) as fake:
        fake.history_line_breaks = line_breaks
        (root / "trialwatch.yaml").write_text(
            f"watchlist: watchlist.yaml\nstate_dir: state\napi:\n  base_url: {fake.base_url}\n"
            f"  requests_per_second: 0\n  timeout: 10\nstorage:\n  url: sqlite:///{root / 'state.sqlite'}\n"
        )
        config = load_config(root / "trialwatch.yaml")
        with Store(config.settings.storage_url) as store:
            with CtGovClient(config.settings.api) as client:
                report = backfill(config, store, client, nct_id)
            stored = [store.versions.get(nct_id, info.version) for info in store.versions.infos(nct_id)]
            stored_changes = [(c.version, change_to_dict(c.change)) for c in store.changes.of(nct_id) if not c.baseline]
    rules = SeverityRules.from_mapping(config.settings.severity_rules)
    real = [
        (number + 1, change_to_dict(change))
        for number in range(1, len(versions))
        for change in changes_between(versions[number - 1], versions[number], rules)
    ]
    reported, expected = (
        Counter(_key(*c, values=False) for c in stored_changes),
        Counter(_key(*c, values=False) for c in real),
    )
    exact_reported, exact_expected = Counter(_key(*c) for c in stored_changes), Counter(_key(*c) for c in real)
    posted = [s.fetched_at.date().isoformat() for s in stored[:-1] if s is not None]
    real_posted = [v["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] for v in versions[:-1]]
    html_texts = sum(
        1 for v in versions for _, text in markup_values(v) if render_html(text, line_breaks=line_breaks) != text
    )
    return Replay(
        nct_id,
        len(versions),
        report.imported,
        report.requests,
        html_texts,
        sum(expected.values()),
        tuple(sorted((reported - expected).elements())),
        tuple(sorted((expected - reported).elements())),
        tuple(sorted((exact_reported - exact_expected).elements())),
        posted == real_posted,
    )

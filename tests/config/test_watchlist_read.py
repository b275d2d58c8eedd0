"""Bare IDs in a watchlist: read once, copied per ID, and the copy is the trial a `- id:` mapping gives."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta
from pathlib import Path

from watcher.config import parse_watchlist
from watcher.config.watchlist import _bare_copy
from watcher.models import Near, Trial


def test_the_copy_of_a_bare_trial_keeps_every_field_but_its_id_and_line() -> None:
    # every field set to something other than its default, so a field the copy forgot would show
    full = Trial(
        nct_id="NCT00000001",
        label="label",
        channels=("team",),
        tags=("a",),
        ignore=("x.*",),
        only=("y.*",),
        min_severity="major",
        interval=timedelta(hours=6),
        line=3,
        near=Near(km=50, lat=1.0, lon=2.0),
        source="search:s",
    )
    defaults = Trial(nct_id="NCT00000009")
    assert all(getattr(full, f.name) != getattr(defaults, f.name) for f in fields(Trial))
    assert _bare_copy(full, "NCT00000002", 7) == replace(full, nct_id="NCT00000002", line=7)


def test_bare_ids_read_as_the_mapping_form_does(tmp_path: Path) -> None:
    text = "trials:\n  - NCT00000001\n  - id: NCT00000002\n  - nct00000003\n"
    trials = parse_watchlist(text, tmp_path / "watchlist.yaml").trials
    assert [(t.nct_id, t.line) for t in trials] == [("NCT00000001", 2), ("NCT00000002", 3), ("NCT00000003", 4)]
    assert replace(trials[0], nct_id="X", line=None) == replace(trials[1], nct_id="X", line=None)
    assert replace(trials[2], nct_id="X", line=None) == replace(trials[1], nct_id="X", line=None)

"""Backfill of real records whose record history is served as HTML, as the live site serves it.

For each study in `pairs/` (found by tests/support/shared.py), its real successive versions go into
the fake ClinicalTrials.gov as record history (markup fields rendered to HTML by tests/support/fake_history.py),
and `backfill` runs over HTTP through the real client (`tests/support/history_replay.py`). Printed per study:
versions, markup texts served as HTML that differ from their markdown as strings, the changes between
the real versions, and the false edits (changes stored that are not between the real versions), missed
edits and real edits stored with other values. Logs go to stderr.

    python -m bench.bench_history_html [NCT… ] [--no-line-breaks]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import real_pairs
from tests.support.history_replay import replay
from watcher.service.logs import configure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_history_html", description=__doc__.splitlines()[0])
    parser.add_argument("nct_ids", nargs="*", help="default: every study in pairs/")
    parser.add_argument("--no-line-breaks", action="store_true", help="the HTML of before 2025 (no line breaks)")
    args = parser.parse_args(argv)
    configure("warning", "console")
    studies = args.nct_ids or sorted(real_pairs.truth()["studies"])
    totals = [0, 0, 0, 0, 0, 0]
    for nct_id in studies:
        with tempfile.TemporaryDirectory() as root:
            r = replay(nct_id, Path(root), line_breaks=not args.no_line_breaks)
        print(
            f"backfill of {nct_id} rendered as HTML history: {r.versions} versions, {len(r.false_edits)} false edits "
            f"({r.html_texts} HTML texts, {r.expected} real changes, {len(r.missed)} missed, "
            f"{len(r.inexact)} with other values, {r.requests} requests, post dates "
            f"{'right' if r.posted_dates_right else 'WRONG'})",
            flush=True,
        )
        for i, value in enumerate(
            (r.versions, r.html_texts, r.expected, len(r.false_edits), len(r.missed), len(r.inexact))
        ):
            totals[i] += value
    print(
        f"{len(studies)} studies, {totals[0]} versions, {totals[1]} HTML texts, {totals[2]} real changes: "
        f"{totals[3]} false edits, {totals[4]} missed, {totals[5]} with other values"
    )


if __name__ == "__main__":
    main()

"""The web benchmark runs end to end at a tiny size, so it cannot rot (the figures come from running it)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("starlette", reason="the web view needs the [web] extra: pip install 'trialwatch[web]'")

from bench.bench_web import main

pytestmark = pytest.mark.slow  # a minute of seeding and building


def test_web_benchmark_prints_every_page_and_both_builds(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--trials", "40", "--real", "30", "--changed", "3", "--runs", "1"])  # 10 of them SQL copies
    out = capsys.readouterr().out
    pages = re.findall(r"^([A-Za-z][A-Za-z0-9 ,'→]+?) +(\d+\.\d) +(\d+\.\d\d)×$", out, re.M)
    assert [p[0] for p in pages] == [
        "list, first page",
        "list, page 100",
        "list, page 1",
        "list, tag filter",
        "list, status filter",
        "list, source registry",
        "list, search 'cancer'",
        "list, search an NCT ID",
        "list, sort by next date",
        "list, sort by date, 30 days",
        "dates, first page",
        "dates, page 20",
        "trial page",
        "trial of 100 versions",
        "compare v1 → v100",
        "API list",
    ], out
    assert re.search(r"^site build, full \(1 job\): +[\d.]+ s +41 trials \([\d.]+ ms a trial\)", out, re.M), out
    assert re.search(r"^site build, 3 changed: +[\d.]+ s +3 trials, \d+ files = [\d.]+% of full", out, re.M), out

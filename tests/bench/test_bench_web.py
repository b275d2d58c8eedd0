"""The web benchmark runs end to end at a tiny size, so it cannot rot (the figures come from running it)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("starlette", reason="the web view needs the [web] extra: pip install 'trialwatch[web]'")

from bench.bench_web import main

pytestmark = pytest.mark.slow  # a minute of seeding and building


def test_web_benchmark_prints_every_page_and_both_builds(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--trials", "30", "--changed", "3", "--runs", "1"])
    out = capsys.readouterr().out
    pages = re.findall(r"^([A-Za-z][A-Za-z0-9 ,'→]+?) +(\d+\.\d) +(\d+\.\d\d)×$", out, re.M)
    assert [p[0] for p in pages] == [
        "list, first page",
        "list, page 100",
        "list, search 'cancer'",
        "list, sort by date, 30 days",
        "trial page",
        "trial of 100 versions",
        "compare v1 → v100",
        "API list",
    ], out
    assert re.search(r"^site build, full: +[\d.]+ s +31 trials", out, re.M), out
    assert re.search(r"^site build, 3 changed: +[\d.]+ s +3 trials = [\d.]+% of full", out, re.M), out

"""The cycle benchmark runs end to end at a tiny size, so it cannot rot (the figures come from running it)."""

from __future__ import annotations

import re

import pytest

from bench.bench_cycle import main

pytestmark = pytest.mark.slow  # real processes


@pytest.mark.parametrize("mode", ["watchlist", "registry"])
def test_cycle_benchmark_runs_both_cycles_and_prints_every_figure(
    capsys: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    main(["--trials", "40", "--changed", "0.25", "--mode", mode])
    out = capsys.readouterr().out
    rows = {
        m.group(1): m.groups()[1:]
        for m in re.finditer(
            r"^(first sync|25% changed) +(\d+) +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+× +[\d.]+× +\d+ +[\d,]+ +(\w+)$",
            out,
            re.M,
        )
    }
    assert set(rows) == {"first sync", "25% changed"}, out
    assert rows["first sync"] == ("2", "ok")  # /version and one page of 40 full records
    # watchlist: /version, the updated-since probe, one page of the 10 changed records;
    # registry: /version and the updated-since query, which brings the full records itself
    assert rows["25% changed"] == ("3" if mode == "watchlist" else "2", "ok")
    assert "extrapolated to 560,000 studies" in out

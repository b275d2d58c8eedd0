"""The cycle benchmark runs end to end at a tiny size, so it cannot rot (the figures come from running it)."""

from __future__ import annotations

import re

import pytest

from bench.bench_cycle import main

pytestmark = pytest.mark.slow  # real processes


@pytest.mark.parametrize("mode", ["watchlist", "registry"])
def test_cycle_benchmark_runs_every_cycle_as_a_cli_process_and_prints_every_figure(
    capsys: pytest.CaptureFixture[str],
    mode: str,
) -> None:
    main(["--trials", "40", "--changed", "10", "--mode", mode])
    out = capsys.readouterr().out
    rows = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^(bare start|first sync|idle|10 changed) +(\d+) +[\d.]+ +[\d.]+ +\d+ ", out, re.M)
    }
    assert set(rows) == {"bare start", "first sync", "idle", "10 changed"}, out
    assert rows["bare start"] == 0
    assert rows["first sync"] == 2  # /version and one page of 40 full records
    assert rows["idle"] == 1  # /version: nothing new
    # watchlist: /version, the updated-since probe, one page of the 10 changed records;
    # registry: /version and the updated-since query, which brings the full records itself
    assert rows["10 changed"] == (3 if mode == "watchlist" else 2)
    assert re.search(r"marginal CPU per changed record: -?[\d.]+ ms", out), out
    assert re.search(r"first sync +2 .*× of all records", out), out

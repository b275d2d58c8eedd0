"""The storage benchmark runs and meets its target (≤ 15% of raw JSON per version)."""

from __future__ import annotations

import pytest

from bench.bench_storage import main


def test_storage_benchmark_meets_its_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--versions", "3"]) == 0
    out = capsys.readouterr().out
    assert "17 real records, 3 versions each" in out
    assert "target:          ≤ 15% of raw JSON per version: met" in out

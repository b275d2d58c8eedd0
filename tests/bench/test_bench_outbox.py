"""The outbox benchmark runs end to end (small numbers) and prints its figures."""

from __future__ import annotations

import pytest

from bench.bench_outbox import main


def test_outbox_benchmark_runs_and_prints_ms_per_tick(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--pending", "200", "--ticks", "2"]) == 0
    out = capsys.readouterr().out
    assert "outbox bench: 200 messages pending, sqlite" in out
    assert "idle tick (nothing due):" in out and "sending, per message:" in out

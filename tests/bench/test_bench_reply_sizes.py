"""The reply-size benchmark runs end to end and shows every hostile reply refused."""

from __future__ import annotations

import pytest
import structlog

from bench.bench_reply_sizes import main


def test_reply_size_benchmark_prints_real_sizes_and_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    # Another test of this worker may have pointed structlog at its own, since closed, captured stream.
    structlog.reset_defaults()
    main()
    out = capsys.readouterr().out
    assert "x the largest real page" in out and "lists" in out and "studies" in out
    rows = {line.split("  ")[0]: line for line in out.splitlines()[-3:]}
    assert len(rows) == 3 and "accepted" not in out
    assert out.count("InvalidResponse") == 2 and "_Retryable" in out

"""The payload benchmark runs end to end (one short round) and prints its figures."""

from __future__ import annotations

import pytest

from bench.bench_payloads import main


@pytest.mark.slow  # it times `import msgspec` in a fresh Python process
def test_payload_benchmark_runs_and_prints_each_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "median real change set" in out and "largest real change set (NCT" in out
    for option in ("json only (", "msgspec (watcher.messages, shipped)", "dataclasses (", "TypedDict ("):
        assert out.count(option) == 2, option
    assert "msgspec " in out.split("import time")[1] and "installed size" in out

"""The store benchmark runs and prints its figures (the figures themselves are read by people, not asserted)."""

from __future__ import annotations

import re

import pytest

from bench.bench_store import main, synthetic
from watcher.detect.record import content_hash
from watcher.store import blobs


def test_store_benchmark_prints_its_ratio_to_json_loads(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--trials", "12"]) == 0
    out = capsys.readouterr().out
    assert "first versions:  12 synthetic studies from 17 real records" in out
    assert re.search(r"store: +\d+\.\d+ ms per trial = +\d+\.\dx json\.loads", out)
    assert "stored:          12 versions" in out


def test_synthetic_studies_share_no_part() -> None:
    """Every copy of a real record is its own trial: no part deduplicates against another copy's."""
    studies = synthetic(20)
    assert len({content_hash(r) for _, r in studies}) == 20
    digests = [b.digest for _, r in studies for b in blobs.split_record(r)[1]]
    shared = len(digests) - len(set(digests))
    assert shared <= len(digests) // 5, "only empty or constant sections may repeat"

"""`python -m tests.support.fetch_fixtures` against the fake API: what it writes, the helper reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import fetch_fixtures, shared
from tests.support.fakeapi import FakeCtGov


def test_fetched_records_land_where_the_helper_reads_them(
    fake_api: FakeCtGov,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dest = tmp_path / "ctgov"
    argv = ["--dest", str(dest), "--base-url", fake_api.base_url, "--no-spec", "--delay", "0"]
    assert fetch_fixtures.main(argv) == 0
    assert f"17 records written to {dest}" in capsys.readouterr().out
    assert sorted(p.name for p in dest.rglob("*")) == sorted(
        ["studies", *(f"{n}.json" for n in shared.STUDY_IDS)]
    )  # no temporary file left
    assert {h.get("User-Agent") for h in fake_api.headers} == {fetch_fixtures.USER_AGENT}

    monkeypatch.setenv(shared.ENV, str(dest))
    for nct_id in shared.STUDY_IDS:
        assert shared.study_path(nct_id) == dest / "studies" / f"{nct_id}.json"
        assert shared.load_study(nct_id) == fake_api.get(nct_id)


def test_a_failed_download_is_named_and_nothing_half_written_stays(
    fake_api: FakeCtGov,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dest = tmp_path / "ctgov"
    spec_url = fake_api.base_url.replace("/api/v2", "/api/oas/v2")  # the fake does not serve the spec
    argv = ["--dest", str(dest), "--base-url", fake_api.base_url, "--spec-url", spec_url, "--delay", "0"]
    assert fetch_fixtures.main(argv) == 1
    assert f"GET {spec_url}: HTTP 404: Not Found" in capsys.readouterr().err
    assert not (dest / shared.SPEC).exists()
    assert len(list((dest / "studies").iterdir())) == 17

"""Big pages read a study at a time (registry/pages.py) and attributed as they come (registry/stream.py)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.support.fakeapi import FakeCtGov, load_fixture, load_fixtures
from watcher.config import ApiSettings
from watcher.errors import InvalidResponse
from watcher.registry import pages
from watcher.registry.client import CtGovClient
from watcher.registry.pages import PageReader
from watcher.registry.responses import BatchResult
from watcher.registry.stream import stream_studies, walk_registry

NCT = "NCT00973089"
OTHER = "NCT04280705"
SMALL = [load_fixture(NCT), load_fixture(OTHER)]  # 20 KB and 40 KB of JSON: fast enough for hypothesis


def read(body: bytes) -> tuple[list[Any], dict[str, Any]]:
    reader = PageReader(io.BytesIO(body), "/studies")
    studies = list(reader.studies())
    return studies, reader.meta


@hypothesis_settings(deadline=None, max_examples=60)
@given(
    chunk=st.integers(min_value=1, max_value=70_000),
    count=st.integers(min_value=0, max_value=4),
    token_first=st.booleans(),
    indent=st.sampled_from([None, 1]),
)
def test_a_page_read_in_any_chunks_is_what_json_loads_reads(
    chunk: int,
    count: int,
    token_first: bool,
    indent: int | None,
) -> None:
    studies = [SMALL[i % 2] for i in range(count)]
    page: dict[str, Any] = {"nextPageToken": "abc", "totalCount": 7} if token_first else {}
    page["studies"] = studies
    if not token_first:
        page.update({"nextPageToken": "abc", "totalCount": 7.5e3})
    body = json.dumps(page, ensure_ascii=False, indent=indent).encode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pages, "CHUNK", chunk)
        got, meta = read(body)
    expected = json.loads(body)
    assert got == expected["studies"]
    assert meta == {k: v for k, v in expected.items() if k != "studies"}


@pytest.mark.parametrize("cut", [1, 2, 15, 100, 5_000, 19_000, 30_000, -20, -2, -1])
def test_a_page_cut_short_is_invalid_and_only_whole_studies_come_before(cut: int) -> None:
    body = json.dumps({"studies": SMALL, "nextPageToken": "abc"}).encode()
    reader = PageReader(io.BytesIO(body[:cut]), "/studies")
    got: list[Any] = []
    with pytest.raises(InvalidResponse, match="truncated JSON"):
        got.extend(reader.studies())
    assert got == SMALL[: len(got)]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<!DOCTYPE html><html><body>Service unavailable</body></html>", "HTML page"),
        (b'{"studies": [{"a": 1} {"b": 2}]}', "not JSON"),
        (b'{"studies": [], "x": 1} trailing', "extra data"),
        (b'{"pages": []}', "not a page of studies"),
        (b"[1, 2]", "not JSON"),
        (b'{"studies": ["\xff"]}', "not JSON"),
    ],
)
def test_what_is_not_a_page_is_invalid(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidResponse, match=reason):
        read(body)


def test_the_window_is_bounded_by_the_largest_study_not_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """40 studies, read 8 KB at a time: the text held never exceeds a few times the largest study."""
    studies = [SMALL[i % 2] for i in range(40)]
    body = json.dumps({"studies": studies}).encode()
    largest = max(len(json.dumps(s)) for s in SMALL)
    monkeypatch.setattr(pages, "CHUNK", 8192)
    reader = PageReader(io.BytesIO(body), "/studies")
    held = 0
    for _ in reader.studies():
        held = max(held, len(reader._text))
    assert held <= 2 * (largest + 8192)
    assert len(body) > 10 * held


# stream_studies over HTTP ------------------------------------------------------------------------


@pytest.fixture
def client(fake_api: FakeCtGov) -> Any:
    settings = ApiSettings(
        base_url=fake_api.base_url,
        requests_per_second=0,
        max_retries=1,
        backoff_base=0.001,
        backoff_max=0.01,
        timeout=2,
    )
    with CtGovClient(settings, sleep=lambda _: None) as client:
        yield client


def collect(client: CtGovClient, ids: list[str]) -> tuple[list[BatchResult], dict[str, Any]]:
    calls: list[BatchResult] = []
    stream_studies(client, ids, calls.append)
    records = {k: v.record for c in calls for k, v in c.records.items()}
    return calls, records


def test_records_come_one_at_a_time_from_one_page_of_every_study(fake_api: FakeCtGov, client: CtGovClient) -> None:
    ids = fake_api.ids()
    calls, records = collect(client, ids)
    assert records == {i: load_fixture(i) for i in ids}
    assert all(len(c.records) == 1 for c in calls)
    [request] = fake_api.requests
    assert request[2]["pageSize"] == "1000"
    assert len(request[2]["filter.ids"].split(",")) == len(ids)


def test_a_page_cut_short_keeps_the_whole_records_and_fails_the_rest(
    fake_api: FakeCtGov,
    client: CtGovClient,
) -> None:
    ids = fake_api.ids()
    fake_api.fail("truncated", path_contains="filter.ids")
    with capture_logs() as logs:
        calls, records = collect(client, ids)
    errors = {k: e for c in calls for k, e in c.errors.items()}
    assert set(records) | set(errors) == set(ids)
    assert not set(records) & set(errors)
    assert 0 < len(records) < len(ids)
    assert all(records[i] == load_fixture(i) for i in records)
    assert all(isinstance(e, InvalidResponse) for e in errors.values())
    assert not any(c.missing for c in calls), "a cut page never makes a trial look removed"
    assert any(e["event"] == "api.batch_failed" for e in logs)


def test_an_own_record_wins_over_an_alias_and_a_second_claim_is_left_out(
    fake_api: FakeCtGov,
    client: CtGovClient,
) -> None:
    def claim(study: dict[str, Any]) -> None:
        study["protocolSection"]["identificationModule"]["nctIdAliases"] = [NCT]

    fake_api.update(OTHER, claim)
    _, records = collect(client, [NCT, OTHER])
    assert records[NCT] == load_fixture(NCT)
    assert records[OTHER]["protocolSection"]["identificationModule"]["nctId"] == OTHER
    fake_api.reset_requests()
    fake_api.fail("wrong_id", ids=[OTHER], wrong_id=NCT, path_contains="filter.ids")
    with capture_logs() as logs:
        calls, records = collect(client, [NCT, OTHER])
    assert set(records) == {NCT}
    assert records[NCT]["protocolSection"]["identificationModule"]["nctId"] == NCT
    assert {m for c in calls for m in c.missing} == {OTHER}  # confirmed alone by the poll
    assert [e["nct_id"] for e in logs if e["event"] == "api.duplicate_study"] == [NCT]


def test_walk_registry_pages_the_whole_registry(fake_api: FakeCtGov, client: CtGovClient) -> None:
    seen: list[str] = []
    count = walk_registry(client, lambda fetched: seen.append(fetched.nct_id))
    assert sorted(seen) == sorted(fake_api.ids())
    assert count == len(load_fixtures())
    assert len(fake_api.requests) == 1

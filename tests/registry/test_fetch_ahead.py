"""The next page fetched while this one is stored (`registry/ahead.py`), against the fake API over HTTP.

Overlap is shown by order, not by timing: the consumer holds the first page's first study until the
fake has *received* the next request, which only a fetch ahead can send.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.support.api_client import Sleeps, hits, quick_settings
from tests.support.fakeapi import FakeCtGov, synthetic_studies
from watcher.errors import ApiError
from watcher.ids import normalize_nct_id
from watcher.registry.ahead import peek_envelope
from watcher.registry.client import CtGovClient
from watcher.registry.responses import BatchResult
from watcher.registry.stream import stream_studies


@pytest.fixture
def fake() -> Iterator[FakeCtGov]:
    with FakeCtGov(synthetic_studies(23)) as fake:
        yield fake


@pytest.fixture
def client(fake: FakeCtGov) -> Iterator[CtGovClient]:
    # quick_settings' 0.5 s timeout would let a loaded machine time a page out and ask again, and these
    # tests count requests: the timeout here is far above any page's time
    with CtGovClient(replace(quick_settings(fake), timeout=30), sleep=Sleeps()) as client:
        yield client


def wait_for_requests(fake: FakeCtGov, count: int, timeout: float = 20.0) -> bool:
    """True once the fake has received `count` /studies requests (polled: no sleep decides the result)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hits(fake, "/studies") >= count:
            return True
        time.sleep(0.01)
    return False


def ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fetch-ahead")]


def test_the_next_page_is_asked_while_the_first_is_being_read(fake: FakeCtGov, client: CtGovClient) -> None:
    seen: list[str] = []
    asked_early: list[bool] = []

    def on_study(study: Any) -> None:
        if not seen:
            asked_early.append(wait_for_requests(fake, 2))
        seen.append(study["protocolSection"]["identificationModule"]["nctId"])

    got = client.walk({"pageSize": "5", "countTotal": "true"}, on_study)
    assert asked_early == [True], "page 2 was not requested while page 1's first study was held"
    assert got == 23
    assert seen == [normalize_nct_id(i) for i in fake.ids()], "every study once, in the registry's order"
    assert hits(fake, "/studies") == 5, "23 studies in pages of 5: 5 requests, none wasted"
    assert not ahead_threads()


def test_an_exactly_full_last_page_costs_no_request_ahead(client: CtGovClient) -> None:
    with FakeCtGov(synthetic_studies(20)) as fake:
        settings = replace(client.settings, base_url=fake.base_url)
        with CtGovClient(settings, sleep=Sleeps()) as twenty:
            assert fake.full_page_tokens
            assert twenty.walk({"pageSize": "5", "countTotal": "true"}, lambda study: None) == 20
        assert hits(fake, "/studies") == 4, "the trailing empty page is never fetched, even ahead"


def test_a_batch_is_asked_while_the_one_before_is_stored(fake: FakeCtGov, client: CtGovClient) -> None:
    ids = fake.ids()
    settings = replace(client.settings, batch_size=10, full_page_size=10)
    records: list[str] = []
    asked_early: list[bool] = []
    with CtGovClient(settings, sleep=Sleeps()) as batched:

        def take(batch: BatchResult) -> None:
            if batch.records and not records:
                asked_early.append(wait_for_requests(fake, 2))
            records.extend(batch.records)
            assert not batch.errors and not batch.missing

        stream_studies(batched, ids, take)
    assert asked_early == [True]
    assert sorted(records) == sorted(ids)
    assert hits(fake, "/studies") == 3, "23 IDs in batches of 10: one request each"


def test_a_failure_while_storing_leaves_no_request_or_thread_behind(fake: FakeCtGov, client: CtGovClient) -> None:
    class Full(Exception):
        pass

    def on_study(study: Any) -> None:
        wait_for_requests(fake, 2)
        raise Full

    with pytest.raises(Full):
        client.walk({"pageSize": "5", "countTotal": "true"}, on_study)
    assert hits(fake, "/studies") == 2
    assert not ahead_threads()


def test_a_page_fetched_ahead_fails_in_its_turn_after_the_pages_before(fake: FakeCtGov, client: CtGovClient) -> None:
    fake.fail(500, path_contains="pageToken", times=50)
    seen: list[Any] = []
    with pytest.raises(ApiError):
        client.walk({"pageSize": "5", "countTotal": "true"}, seen.append)
    assert len(seen) == 5, "the first page's studies came whole before the second page's error"
    assert not ahead_threads()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"studies": [{"a": 1}], "nextPageToken": "T1", "totalCount": 7}', {"nextPageToken": "T1", "totalCount": 7}),
        (
            b'{"totalCount": 37, "studies": [{"x": [1]}], "nextPageToken": "Z"}',
            {"nextPageToken": "Z", "totalCount": 37},
        ),
        (b'{"studies": [{"nextPageToken": "inside", "x": "]"}]}', {}),
        (b'{"studies": []}', {}),
        (b"<html>not json</html>", {}),
    ],
)
def test_the_envelope_is_read_outside_the_studies(body: bytes, expected: dict[str, Any]) -> None:
    spooled = io.BytesIO(body)
    assert peek_envelope(spooled) == expected
    assert spooled.tell() == 0, "the body is left at its start for the reader"


def test_the_envelope_of_a_large_page_is_read_from_its_ends() -> None:
    study = b'{"protocolSection": {"nextPageToken": "no"}, "pad": "' + b"x" * 10_000 + b'"}'
    body = b'{"totalCount": 9, "studies": [' + b", ".join([study] * 3) + b'], "nextPageToken": "yes"}'
    assert peek_envelope(io.BytesIO(body)) == {"totalCount": 9, "nextPageToken": "yes"}

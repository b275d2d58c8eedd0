"""CtGovClient against the fake API over real HTTP: the endpoints, batches and pages, and every answer checked."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.support.api_client import Sleeps, events, hits, quick_settings
from tests.support.fakeapi import FakeCtGov, load_fixture, synthetic_studies
from watcher.config import ApiSettings
from watcher.errors import ApiError, InvalidResponse
from watcher.ids import normalize_nct_id
from watcher.registry.client import PROBE_FIELDS, CtGovClient
from watcher.registry.responses import Fetched

NCT = "NCT00973089"
OTHER = "NCT04280705"


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def settings(fake_api: FakeCtGov) -> ApiSettings:
    return quick_settings(fake_api)


@pytest.fixture
def client(settings: ApiSettings, sleeps: Sleeps) -> Iterator[CtGovClient]:
    with CtGovClient(settings, sleep=sleeps) as client:
        yield client


# the happy paths ---------------------------------------------------------------------------


def test_version(client: CtGovClient) -> None:
    version = client.version()
    assert (version.api_version, version.data_timestamp) == ("2.0.5", "2026-09-04T09:00:06")


def test_fetch_study_returns_the_real_record(client: CtGovClient) -> None:
    fetched = client.fetch_study(NCT)
    assert fetched == Fetched(NCT, NCT, load_fixture(NCT))
    assert fetched.last_update == "2015-08-19"
    assert not fetched.moved
    assert client.requests_made == 1


def test_fetch_studies_batches_and_pages(fake_api: FakeCtGov, settings: ApiSettings, sleeps: Sleeps) -> None:
    # a long timeout: a retry under a loaded machine would add a request to the exact count below
    ids = fake_api.ids()
    with CtGovClient(replace(settings, batch_size=7, full_page_size=3, timeout=10), sleep=sleeps) as client:
        result = client.fetch_studies(ids)
    assert set(result.records) == set(ids)
    assert all(f.record == load_fixture(i) for i, f in result.records.items())
    assert not result.errors
    assert not result.missing
    # full records: a batch is one page of `full_page_size`, so memory per request stays bounded
    sizes = sorted(len(r[2]["filter.ids"].split(",")) for r in fake_api.requests)
    assert sizes == [2, 3, 3, 3, 3, 3]
    # pageSize 1000, never len(batch): an exactly full page would carry a token to an empty page
    assert all(r[2]["pageSize"] == "1000" for r in fake_api.requests)
    fake_api.reset_requests()
    with CtGovClient(replace(settings, batch_size=7), sleep=sleeps) as client:
        probe = client.fetch_studies(ids, fields=PROBE_FIELDS)
    assert set(probe.records) == set(ids)
    assert sorted(len(r[2]["filter.ids"].split(",")) for r in fake_api.requests) == [3, 7, 7]


def test_probe_asks_for_a_few_small_fields(fake_api: FakeCtGov, client: CtGovClient) -> None:
    result = client.fetch_studies([NCT, OTHER], fields=PROBE_FIELDS)
    assert result.records[NCT].record == {
        "protocolSection": {
            "identificationModule": {"nctId": NCT},
            "statusModule": {"overallStatus": "WITHDRAWN", "lastUpdatePostDateStruct": {"date": "2015-08-19"}},
        }
    }
    probe = client.fetch_studies([NCT, OTHER, "NCT00000002"], fields=PROBE_FIELDS)
    assert {i: f.last_update for i, f in probe.records.items()} == {NCT: "2015-08-19", OTHER: "2022-03-14"}
    assert probe.missing == {"NCT00000002"}
    assert fake_api.requests[-1][2]["fields"] == "NCTId,NCTIdAlias,LastUpdatePostDate,OverallStatus"


def test_batch_url_stays_well_under_8_kb(fake_api: FakeCtGov, client: CtGovClient) -> None:
    """The default batch of the longest IDs, as the client sends it (`,` unescaped): measured, see the README."""
    ids = [f"NCT{99_999_999 - i:08d}" for i in range(client.settings.batch_size)]
    sent: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url)
        return httpx.Response(200, json={"studies": []})

    settings = replace(client.settings, base_url="https://clinicaltrials.gov/api/v2")
    with CtGovClient(settings, http=httpx.Client(transport=httpx.MockTransport(answer))) as mocked:
        mocked.fetch_studies(ids, fields=PROBE_FIELDS)
    [url] = sent
    assert len(str(url)) < 6_000
    assert b"%2C" not in url.raw_path
    result = client.fetch_studies(ids, fields=PROBE_FIELDS)
    assert result.missing == set(ids)
    assert client.requests_made == 1


def test_invalid_ids_fail_alone_without_a_request(client: CtGovClient) -> None:
    result = client.fetch_studies(["banana", NCT])
    assert set(result.records) == {NCT}
    assert isinstance(result.errors["banana"], ApiError)
    with pytest.raises(ApiError):
        client.fetch_study("banana")
    assert client.requests_made == 1


def test_updated_since_returns_dates_and_aliases(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.alias(NCT, "NCT09000001")
    updates = client.updated_since(date(2025, 10, 1), max_pages=10)
    assert updates == {
        "NCT02856893": "2025-10-31",
        "NCT04764188": "2025-10-16",
        "NCT09000001": "2026-09-05",
        NCT: "2026-09-05",
    }
    params = fake_api.requests[-1][2]
    assert params["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2025-10-01,MAX]"
    assert params["pageSize"] == "1000"


def test_updated_since_gives_up_after_one_page_when_too_big(settings: ApiSettings, sleeps: Sleeps) -> None:
    with (
        FakeCtGov(synthetic_studies(2500)) as fake,
        CtGovClient(replace(settings, base_url=fake.base_url), sleep=sleeps) as client,
    ):
        assert client.updated_since(date(2000, 1, 1), max_pages=2) is None
        assert client.requests_made == 1
        assert len(client.updated_since(date(2000, 1, 1), max_pages=3) or {}) == 2500
        assert client.requests_made == 1 + 3


# answers that cannot be used: one trial fails, never a wrong record ---------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated", "truncated JSON"),
        ("html", "HTML page"),
        ("wrong_id", "asked for"),
        ("no_protocol", "no protocolSection"),
    ],
)
def test_unusable_body_is_invalid_for_that_trial_and_not_retried(
    fake_api: FakeCtGov, client: CtGovClient, kind: str, reason: str
) -> None:
    fake_api.fail(kind, path_contains=NCT)
    with capture_logs() as logs, pytest.raises(InvalidResponse, match=reason):
        client.fetch_study(NCT)
    assert hits(fake_api, f"/studies/{NCT}") == 1
    [event] = events(logs, "api.invalid_response")
    assert event["nct_id"] == NCT
    assert reason in event["reason"]
    assert client.fetch_study(NCT).record == load_fixture(NCT)  # next time it is fine


def test_301_alias_is_followed_and_reported(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.alias(NCT, "NCT09000001")
    with capture_logs() as logs:
        fetched = client.fetch_study(NCT)
    assert (fetched.requested_id, fetched.nct_id, fetched.moved) == (NCT, "NCT09000001", True)
    assert fetched.record["protocolSection"]["identificationModule"]["nctIdAliases"] == [NCT]
    assert [r[1] for r in fake_api.requests] == [f"/api/v2/studies/{NCT}", "/api/v2/studies/NCT09000001"]
    assert client.requests_made == 2
    assert events(logs, "api.moved")[0] == {
        "event": "api.moved",
        "nct_id": NCT,
        "canonical_id": "NCT09000001",
        "log_level": "info",
    }


def test_301_target_that_is_another_study_is_invalid(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.alias(NCT, "NCT09000001")
    fake_api.fail("wrong_id", path_contains="NCT09000001", wrong_id=OTHER)
    with pytest.raises(InvalidResponse, match="asked for NCT09000001"):
        client.fetch_study(NCT)


def test_batch_alias_maps_back_to_the_requested_id(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.alias(NCT, "NCT09000001")
    result = client.fetch_studies([NCT, OTHER], fields=PROBE_FIELDS)
    assert result.records[NCT].nct_id == "NCT09000001"
    assert result.records[NCT].moved
    assert not result.missing


def test_batch_ids_dropped_are_missing(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.fail("drop_ids", ids=[NCT])
    result = client.fetch_studies([NCT, OTHER])
    assert (set(result.records), result.missing) == ({OTHER}, {NCT})


def test_batch_study_with_a_wrong_id_is_never_attributed(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.fail("wrong_id", path_contains="filter.ids", wrong_id="NCT99999999")
    with capture_logs() as logs:
        result = client.fetch_studies([fake_api.ids()[0], OTHER])
    assert set(result.records) == {OTHER}
    assert result.missing == {fake_api.ids()[0]}
    assert events(logs, "api.unexpected_study")[0]["nct_id"] == "NCT99999999"


def test_batch_without_protocol_section_is_missing_not_a_record(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.fail("no_protocol", path_contains="filter.ids")
    result = client.fetch_studies([fake_api.ids()[0], OTHER])
    assert set(result.records) == {OTHER}
    assert result.missing == {fake_api.ids()[0]}


@pytest.mark.parametrize("kind", ["html", "truncated"])
def test_unusable_batch_fails_each_of_its_ids(fake_api: FakeCtGov, client: CtGovClient, kind: str) -> None:
    fake_api.fail(kind, path_contains="filter.ids")
    with capture_logs() as logs:
        result = client.fetch_studies([NCT, OTHER])
    assert not result.records
    assert set(result.errors) == {NCT, OTHER}
    assert all(isinstance(e, InvalidResponse) for e in result.errors.values())
    assert len(fake_api.requests) == 1
    assert events(logs, "api.batch_failed")[0]["error_type"] == "InvalidResponse"


def test_batch_retries_a_transient_fault(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.fail(503, path_contains="filter.ids", times=2)
    result = client.fetch_studies([NCT, OTHER])
    assert set(result.records) == {NCT, OTHER}
    assert len(fake_api.requests) == 3


def test_html_on_version_is_invalid(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.fail("html")
    with pytest.raises(InvalidResponse):
        client.version()


# identity ------------------------------------------------------------------------------------


def test_normalize_nct_id() -> None:
    assert normalize_nct_id("nct123") == normalize_nct_id("NCT00000123") == "NCT00000123"


def test_a_study_under_its_own_id_wins_over_one_listing_it_as_an_alias(
    fake_api: FakeCtGov, client: CtGovClient
) -> None:
    """Registries have duplicates: if both answer for an ID, the record that *is* that ID is the one."""

    def claim(study: dict[str, Any]) -> None:
        study["protocolSection"]["identificationModule"]["nctIdAliases"] = [NCT]

    fake_api.update(OTHER, claim)
    result = client.fetch_studies([NCT, OTHER])
    assert result.records[NCT].nct_id == NCT
    assert result.records[OTHER].nct_id == OTHER


# properties: whatever comes back, no record is ever attributed to the wrong trial ------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
ids = st.sampled_from(["NCT00973089", "nct973089", "NCT04280705", "NCT99999999", "banana", ""])


@st.composite
def studies(draw: st.DrawFn) -> Any:
    """Real-shaped studies with random IDs and aliases, and random JSON in their place."""
    if draw(st.booleans()):
        return draw(json_values)
    study = load_fixture(NCT)
    ident = study["protocolSection"]["identificationModule"]
    ident["nctId"] = draw(ids)
    if draw(st.booleans()):
        ident["nctIdAliases"] = draw(st.lists(ids, max_size=2))
    if draw(st.booleans()):
        del study["protocolSection"]
    return study


@hypothesis_settings(deadline=None)  # timing varies on a loaded machine; the property does not
@given(study=studies(), requested=ids)
def test_validate_never_attributes_a_record_to_another_trial(study: Any, requested: str) -> None:
    from watcher.registry.responses import aliases_of, validate_study

    try:
        fetched = validate_study(study, requested)
    except InvalidResponse:
        return
    wanted = normalize_nct_id(requested)
    assert fetched.nct_id == wanted or wanted in aliases_of(study)
    assert isinstance(fetched.record.get("protocolSection"), dict)


@hypothesis_settings(deadline=None)
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parse_fails_only_with_invalid_response(body: bytes) -> None:
    from watcher.registry.responses import parse_json

    with contextlib.suppress(InvalidResponse):
        parse_json(body, "/x")


def test_pagers_never_pay_for_the_trailing_empty_page(fake_api: FakeCtGov, client: CtGovClient) -> None:
    """The live service (and the fake) send a nextPageToken with every exactly full page."""
    assert fake_api.full_page_tokens
    ids = ",".join(fake_api.ids()[:10])
    # filter.ids: no more studies than IDs asked
    assert [len(p["studies"]) for p in client._pages({"filter.ids": ids, "pageSize": "5"}, expect=10)] == [5, 5]
    assert hits(fake_api, "/studies") == 2
    fake_api.reset_requests()
    # a registry-wide walk: the first page's totalCount
    pages = list(client._pages({"fields": "NCTId", "pageSize": "17", "countTotal": "true"}))
    assert [len(p["studies"]) for p in pages] == [17]
    assert "nextPageToken" in pages[0]
    assert hits(fake_api, "/studies") == 1
    fake_api.reset_requests()
    # nothing to tell: the empty page is paid for, and ends the walk
    pages = list(client._pages({"filter.ids": ids, "pageSize": "5"}))
    assert [len(p["studies"]) for p in pages] == [5, 5, 0]


def test_full_batches_cost_one_request_each_with_full_page_tokens(
    fake_api: FakeCtGov,
    settings: ApiSettings,
    sleeps: Sleeps,
) -> None:
    ids = fake_api.ids()
    # requests are counted: a timeout far above a page's time, so a loaded machine never asks twice
    with CtGovClient(replace(settings, batch_size=5, full_page_size=5, timeout=30), sleep=sleeps) as client:
        assert set(client.fetch_studies(ids).records) == set(ids)
        assert set(client.fetch_studies(ids, fields=PROBE_FIELDS).records) == set(ids)
    assert hits(fake_api, "/studies") == 2 * 4, "17 IDs in batches of 5: 4 requests each way, no empty page"

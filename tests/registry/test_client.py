"""CtGovClient against the fake API over real HTTP: the fault matrix, retries, limits, validation."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from tests.support.fakeapi import FakeCtGov, load_fixture, synthetic_studies
from watcher.config import ApiSettings
from watcher.errors import AccessDenied, ApiError, InvalidResponse, StudyNotFound, TransientApiError
from watcher.ids import normalize_nct_id
from watcher.registry.client import PROBE_FIELDS, CtGovClient
from watcher.registry.ratelimit import RateLimiter
from watcher.registry.responses import Fetched
from watcher.registry.transport import USER_AGENT

NCT = "NCT00973089"
OTHER = "NCT04280705"


class Sleeps(list[float]):
    """Stands in for time.sleep: records the waits instead of waiting them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def settings(fake_api: FakeCtGov) -> ApiSettings:
    return ApiSettings(
        base_url=fake_api.base_url,
        timeout=0.5,
        requests_per_second=0,
        max_retries=3,
        backoff_base=0.01,
        backoff_max=0.05,
    )


@pytest.fixture
def client(settings: ApiSettings, sleeps: Sleeps) -> Iterator[CtGovClient]:
    with CtGovClient(settings, sleep=sleeps) as client:
        yield client


def hits(fake: FakeCtGov, path: str) -> int:
    return len([r for r in fake.requests if r[1] == f"/api/v2{path}"])


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


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


def test_descriptive_user_agent_and_explicit_timeout(fake_api: FakeCtGov, client: CtGovClient) -> None:
    client.version()
    headers = {k.lower(): v for k, v in fake_api.headers[-1].items()}
    assert headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith(f"trialwatch/0.1.0 python-httpx/{httpx.__version__} (+https://")
    assert client.transport._http.timeout == httpx.Timeout(0.5, connect=0.5)


def test_fetch_studies_batches_and_pages(fake_api: FakeCtGov, settings: ApiSettings, sleeps: Sleeps) -> None:
    ids = fake_api.ids()
    with CtGovClient(replace(settings, batch_size=7, full_page_size=3), sleep=sleeps) as client:
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
    updates = client.updated_since(date(2025, 10, 1))
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
        assert client.updated_since_within(date(2000, 1, 1), max_pages=2) is None
        assert client.requests_made == 1
        assert len(client.updated_since_within(date(2000, 1, 1), max_pages=3) or {}) == 2500
        assert client.requests_made == 1 + 3


# the fault matrix ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [500, 503, "timeout", "reset"])
def test_transient_fault_is_retried_then_succeeds(
    fake_api: FakeCtGov, client: CtGovClient, sleeps: Sleeps, kind: str | int
) -> None:
    fake_api.fail(kind, path_contains=NCT, times=2, delay=2.0)
    with capture_logs() as logs:
        fetched = client.fetch_study(NCT)
    assert fetched.record == load_fixture(NCT)
    assert hits(fake_api, f"/studies/{NCT}") == 3
    retries = events(logs, "api.retry")
    assert [e["attempt"] for e in retries] == [1, 2]
    assert all(e["nct_id"] == NCT and e["log_level"] == "warning" for e in retries)
    assert len(sleeps) == 2
    assert all(0 <= s <= 0.05 for s in sleeps)  # exponential backoff with jitter, capped


@pytest.mark.parametrize("kind", [500, 503, "timeout", "reset"])
def test_transient_fault_that_persists_fails_after_bounded_attempts(
    fake_api: FakeCtGov, client: CtGovClient, kind: str | int
) -> None:
    fake_api.fail(kind, path_contains=NCT, times=99, delay=2.0)
    with capture_logs() as logs, pytest.raises(TransientApiError):
        client.fetch_study(NCT)
    assert hits(fake_api, f"/studies/{NCT}") == 4  # 1 + max_retries
    assert len(events(logs, "api.retry")) == 3
    assert events(logs, "api.failed")[0]["log_level"] == "error"


@pytest.mark.parametrize("kind", [429, 503])
def test_retry_after_is_honoured(fake_api: FakeCtGov, client: CtGovClient, sleeps: Sleeps, kind: int) -> None:
    fake_api.fail(kind, path_contains=NCT, times=1, retry_after=7)
    with capture_logs() as logs:
        assert client.fetch_study(NCT).nct_id == NCT
    assert sleeps == [pytest.approx(7.0, abs=0.1)]
    assert hits(fake_api, f"/studies/{NCT}") == 2
    assert events(logs, "api.retry")[0]["wait"] == 7.0


def test_retry_after_as_an_http_date_and_capped(fake_api: FakeCtGov, settings: ApiSettings, sleeps: Sleeps) -> None:
    fake_api.fail(429, times=1, retry_after="Fri, 31 Dec 2099 23:59:59 GMT")
    with CtGovClient(replace(settings, retry_after_max=42), sleep=sleeps) as client:
        client.version()
    assert sleeps == [pytest.approx(42, abs=0.1)]


def test_retry_after_holds_back_every_thread() -> None:
    """After a 429, the limiter makes the next request of any thread wait too."""
    now = [100.0]
    waits: list[float] = []
    limiter = RateLimiter(0, clock=lambda: now[0], sleep=waits.append)
    limiter.defer(5)
    limiter.acquire()
    assert waits == [5]


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


def test_404_is_permanent_and_not_retried(fake_api: FakeCtGov, client: CtGovClient) -> None:
    with capture_logs() as logs, pytest.raises(StudyNotFound) as caught:
        client.fetch_study("NCT00000002")
    assert caught.value.nct_id == "NCT00000002"
    assert hits(fake_api, "/studies/NCT00000002") == 1
    assert events(logs, "api.not_found")[0]["nct_id"] == "NCT00000002"


def test_400_is_not_retried(fake_api: FakeCtGov, client: CtGovClient) -> None:
    with pytest.raises(ApiError, match="HTTP 400") as caught:
        client.transport.get("/studies", params={"nonsense": "1"})
    assert not isinstance(caught.value, TransientApiError)
    assert len(fake_api.requests) == 1


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


# limits --------------------------------------------------------------------------------------


def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limiter.acquire()
    assert waits == [0.5, 1.0, 1.5]
    assert RateLimiter(0, clock=lambda: now[0], sleep=sleep).acquire() == 0


def test_rate_limit_holds_over_http_and_across_threads(fake_api: FakeCtGov, settings: ApiSettings) -> None:
    with CtGovClient(replace(settings, requests_per_second=20, max_concurrency=4)) as client:
        started = time.monotonic()
        threads = [threading.Thread(target=client.version) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
    assert len(fake_api.requests) == 8
    assert elapsed >= 7 / 20 - 0.01


def test_concurrency_is_bounded(fake_api: FakeCtGov, settings: ApiSettings) -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    original: Callable[..., Any] = fake_api.handle

    def counting(*args: Any) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        try:
            return original(*args)
        finally:
            with lock:
                in_flight -= 1

    fake_api.handle = counting  # type: ignore[method-assign]
    ids = [f"NCT{90_000_001 + i:08d}" for i in range(40)]
    with CtGovClient(replace(settings, batch_size=2, max_concurrency=3)) as client:
        client.fetch_studies(ids)
    assert peak == 3


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


def test_429_slows_the_limiter_down_to_a_quarter() -> None:
    limiter = RateLimiter(1.0, clock=lambda: 0.0, sleep=lambda s: None)
    assert [limiter.slow_down() for _ in range(3)] == [0.5, 0.25, 0.25]
    assert RateLimiter(0).slow_down() == 0


def test_429_without_retry_after_backs_off_and_slows_down(
    fake_api: FakeCtGov, settings: ApiSettings, sleeps: Sleeps
) -> None:
    fake_api.fail(429, times=1, retry_after="")
    fast = replace(settings, requests_per_second=1000)
    with capture_logs() as logs, CtGovClient(fast, sleep=sleeps) as client:
        client.version()
    assert events(logs, "api.slow_down")[0]["requests_per_second"] == 500
    assert len(fake_api.requests) == 2


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


def test_edge_that_checks_the_user_agent_accepts_ours_and_refuses_a_bare_one(
    fake_api: FakeCtGov,
    client: CtGovClient,
) -> None:
    fake_api.check_user_agent = True
    assert client.version().api_version == "2.0.5"
    assert client.fetch_study(NCT).record == load_fixture(NCT)
    bare = httpx.get(f"{fake_api.base_url}/version", headers={"User-Agent": "trialwatch/0.1.0 (+https://x)"})
    assert bare.status_code == 403


def test_403_is_access_denied_naming_the_cause_and_not_retried(
    fake_api: FakeCtGov,
    settings: ApiSettings,
    sleeps: Sleeps,
) -> None:
    fake_api.check_user_agent = True
    http = httpx.Client(headers={"User-Agent": "trialwatch/0.1.0 (+https://github.com/trialwatch/trialwatch)"})
    with CtGovClient(settings, http=http, sleep=sleeps) as client, pytest.raises(AccessDenied) as caught:
        client.version()
    http.close()
    assert "User-Agent" in str(caught.value)
    assert "TLS client" in str(caught.value)
    assert hits(fake_api, "/version") == 1, "a 403 is not hammered"


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
    with CtGovClient(replace(settings, batch_size=5, full_page_size=5), sleep=sleeps) as client:
        assert set(client.fetch_studies(ids).records) == set(ids)
        assert set(client.fetch_studies(ids, fields=PROBE_FIELDS).records) == set(ids)
    assert hits(fake_api, "/studies") == 2 * 4, "17 IDs in batches of 5: 4 requests each way, no empty page"


def test_default_rate_stays_under_the_reported_50_a_minute() -> None:
    """No documented limit; third parties report ~50 requests a minute per IP (data.clawrxiv.org; no NLM source)."""
    assert 0 < ApiSettings().requests_per_second * 60 <= 50

"""The transport under CtGovClient, against the fake API over real HTTP: retries and their limits,
`Retry-After`, what is never retried, the rate limit and the concurrency bound, the User-Agent.

The client's endpoints are the vehicle: each is one request through the transport."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.support.api_client import Sleeps, events, hits, quick_settings
from tests.support.fakeapi import FakeCtGov, load_fixture
from watcher import __version__
from watcher.config import ApiSettings
from watcher.errors import AccessDenied, ApiError, StudyNotFound, TransientApiError
from watcher.registry.client import CtGovClient
from watcher.registry.ratelimit import RateLimiter
from watcher.registry.transport import USER_AGENT

NCT = "NCT00973089"


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


# the edge: who we say we are -----------------------------------------------------------------


def test_descriptive_user_agent_and_explicit_timeout(fake_api: FakeCtGov, client: CtGovClient) -> None:
    client.version()
    headers = {k.lower(): v for k, v in fake_api.headers[-1].items()}
    assert headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith(f"trialwatch/{__version__} python-httpx/{httpx.__version__} (+https://")
    assert client.transport._http.timeout == httpx.Timeout(1.5, connect=1.5)


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


# the fault matrix: what is retried, how long, and what never is ------------------------------


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


def test_default_rate_stays_under_the_reported_50_a_minute() -> None:
    """No documented limit; third parties report ~50 requests a minute per IP (data.clawrxiv.org; no NLM source)."""
    assert 0 < ApiSettings().requests_per_second * 60 <= 50

"""poll(): the version gate, the two strategies, their request counts, and faults end to end."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.support.api_client import Sleeps
from tests.support.fakeapi import FakeCtGov, load_fixture, synthetic_studies
from watcher.config import ApiSettings
from watcher.errors import InvalidResponse, TransientApiError
from watcher.registry.client import CtGovClient
from watcher.registry.poll import PollResult, PollState, poll

NOW = datetime(2026, 9, 5, 12, 0, tzinfo=UTC)
NCT = "NCT00973089"


def last_update(record: dict[str, Any]) -> str:
    date: str = record["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
    return date


def known_of(fake: FakeCtGov, ids: list[str] | None = None) -> dict[str, str]:
    dates = fake.last_updates()
    return {i: dates[i] for i in (ids or fake.ids())}


def synced(fake: FakeCtGov, ids: list[str] | None = None, **changes: Any) -> PollState:
    """The state after a complete poll of `ids` an hour ago (the fake's current data)."""
    state = PollState(
        data_timestamp=fake.data_timestamp,
        last_success=NOW - timedelta(hours=1),
        last_full_refetch=NOW - timedelta(days=1),
        known=known_of(fake, ids),
    )
    return replace(state, **changes)


def set_status(status: str) -> Any:
    def change(study: dict[str, Any]) -> None:
        study["protocolSection"]["statusModule"]["overallStatus"] = status

    return change


@pytest.fixture
def settings(fake_api: FakeCtGov) -> ApiSettings:
    fake_api.check_user_agent = True  # the fault matrix runs against an edge that checks it, as the live one does
    # 1.5 s: below the "timeout" fault's 2 s, far above a healthy page's time on a loaded 2-core CI (at 0.5 s
    # CI once timed out a healthy /version and the request count saw one more)
    return ApiSettings(
        base_url=fake_api.base_url,
        timeout=1.5,
        requests_per_second=0,
        max_retries=2,
        backoff_base=0.001,
        backoff_max=0.01,
    )


@pytest.fixture
def client(settings: ApiSettings) -> Iterator[CtGovClient]:
    with CtGovClient(settings, sleep=Sleeps()) as client:
        yield client


def paths(fake: FakeCtGov) -> list[str]:
    return [r[1].removeprefix("/api/v2") for r in fake.requests]


# the cycle's shape ---------------------------------------------------------------------------


def test_first_poll_fetches_everything_in_batches(fake_api: FakeCtGov, client: CtGovClient) -> None:
    ids = fake_api.ids()
    result = poll(client, ids, PollState(), now=NOW)
    assert result.strategy == "full"
    assert result.full_refetch
    assert result.complete
    assert result.records == {i: load_fixture(i) for i in ids}
    assert result.data_timestamp == "2026-09-04T09:00:06"
    assert paths(fake_api) == ["/version"] + ["/studies"] * 1
    assert result.requests == 2


def test_unchanged_registry_costs_one_request(fake_api: FakeCtGov, client: CtGovClient) -> None:
    with capture_logs() as logs:
        result = poll(client, fake_api.ids(), synced(fake_api), now=NOW)
    assert result.skipped
    assert result.strategy == "skip"
    assert not result.records
    assert result.requests == 1
    assert [e["event"] for e in logs] == ["poll.done"]


def test_never_fetched_trials_are_fetched_even_when_the_registry_is_unchanged(
    fake_api: FakeCtGov, client: CtGovClient
) -> None:
    ids = fake_api.ids()
    result = poll(client, ids, synced(fake_api, ids[1:]), now=NOW)
    assert result.strategy == "new-only"
    assert set(result.records) == {ids[0]}
    assert result.requests == 2


def test_probe_strategy_fetches_only_the_changed(fake_api: FakeCtGov, client: CtGovClient) -> None:
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    result = poll(client, fake_api.ids(), state, now=NOW)
    assert result.strategy == "ids"
    assert list(result.records) == [NCT]
    assert result.records[NCT]["protocolSection"]["statusModule"]["overallStatus"] == "COMPLETED"
    assert result.data_timestamp == "2026-09-05T09:00:06"
    assert result.requests == 3  # version, one probe page, one full page
    probe = fake_api.requests[1][2]
    assert probe["fields"] == "NCTId,NCTIdAlias,LastUpdatePostDate,OverallStatus"


def test_registry_wide_strategy_when_the_probe_would_cost_more(fake_api: FakeCtGov, settings: ApiSettings) -> None:
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    with CtGovClient(replace(settings, batch_size=5), sleep=Sleeps()) as client:
        result = poll(client, fake_api.ids(), state, now=NOW)
    assert result.strategy == "updated-since"
    assert list(result.records) == [NCT]
    assert result.requests == 3  # version, one registry page, one full page (vs 4 probe pages)
    query = fake_api.requests[1][2]
    # the last complete poll was on 2026-09-04's data: one day of overlap
    assert query["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2026-09-03,MAX]"


def test_registry_wide_strategy_falls_back_when_the_registry_changed_a_lot(settings: ApiSettings) -> None:
    with FakeCtGov(synthetic_studies(2100)) as fake:
        watched = fake.ids()[:12]
        state = synced(fake, watched)
        fake.touch(fake.ids()[-2000:])  # churn elsewhere in the registry: 2 pages of 1000
        fake.update(watched[0], set_status("COMPLETED"))
        with CtGovClient(replace(settings, base_url=fake.base_url, batch_size=5), sleep=Sleeps()) as client:
            result = poll(client, watched, state, now=NOW)
    assert result.strategy == "ids"
    assert list(result.records) == [watched[0]]
    assert result.requests == 1 + 1 + 3 + 1  # version, abandoned registry page, 3 probes, 1 full


def test_weekly_full_refetch(fake_api: FakeCtGov, client: CtGovClient) -> None:
    state = synced(fake_api, last_full_refetch=NOW - timedelta(days=7))
    result = poll(client, fake_api.ids(), state, now=NOW)
    assert (result.strategy, result.full_refetch, len(result.records)) == ("full", True, 17)
    forced = poll(client, fake_api.ids(), synced(fake_api, force_full=True), now=NOW)
    assert (forced.strategy, forced.full_refetch) == ("full", True)


def test_progress_reaches_the_total(fake_api: FakeCtGov, client: CtGovClient) -> None:
    calls: list[tuple[int, int]] = []
    poll(
        client,
        [*fake_api.ids(), "NCT00000002"],
        PollState(),
        now=NOW,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (18, 18)
    assert all(done <= total for done, total in calls)


# missing IDs: 301 and 404 --------------------------------------------------------------------


def test_removed_trial_is_confirmed_once_as_not_found(fake_api: FakeCtGov, client: CtGovClient) -> None:
    state = synced(fake_api)
    fake_api.remove(NCT)
    with capture_logs() as logs:
        result = poll(client, [*fake_api.ids(), NCT], state, now=NOW)
    assert result.not_found == {NCT}
    assert NCT not in result.records
    assert NCT not in result.failures
    assert result.complete
    assert paths(fake_api)[-1] == f"/studies/{NCT}"
    assert [e["nct_id"] for e in logs if e["event"] == "poll.not_found"] == [NCT]
    # stored as not found: left alone, no request for it, until the weekly full re-fetch
    fake_api.new_refresh()
    fake_api.reset_requests()
    again = poll(
        client,
        [*fake_api.ids(), NCT],
        replace(state, not_found=frozenset({NCT}), data_timestamp=result.data_timestamp),
        now=NOW,
    )
    assert not any(NCT in p for p in paths(fake_api))
    assert not any(NCT in r[2].get("filter.ids", "") for r in fake_api.requests)
    assert again.not_found == set()


def test_never_fetched_unknown_id_is_not_found(fake_api: FakeCtGov, client: CtGovClient) -> None:
    result = poll(client, ["NCT00000002"], PollState(), now=NOW)
    assert result.not_found == {"NCT00000002"}
    assert result.requests == 3  # version, the batch, the confirming GET


def test_renumbered_trial_is_followed_through_the_301(fake_api: FakeCtGov, client: CtGovClient) -> None:
    """Missing from the probe (the fake drops it, as a stale index would): one GET, 301, the record."""
    state = synced(fake_api)
    fake_api.alias(NCT, "NCT09000001")
    fake_api.fail("drop_ids", ids=["NCT09000001"], path_contains="fields=")
    result = poll(client, [*fake_api.ids(), NCT], state, now=NOW)
    assert result.moved == {NCT: "NCT09000001"}
    assert result.records[NCT]["protocolSection"]["identificationModule"]["nctId"] == "NCT09000001"
    assert f"/studies/{NCT}" in paths(fake_api)
    assert "/studies/NCT09000001" in paths(fake_api)


def test_alias_found_by_the_probe_needs_no_extra_get(fake_api: FakeCtGov, client: CtGovClient) -> None:
    state = synced(fake_api)
    ids = fake_api.ids()
    fake_api.alias(NCT, "NCT09000001")
    result = poll(client, ids, state, now=NOW)
    assert result.moved == {NCT: "NCT09000001"}
    assert list(result.records) == [NCT]
    assert result.requests == 3


# faults end to end: no crash, no false record ------------------------------------------------


def test_api_down_fails_every_trial_and_keeps_the_old_timestamp(fake_api: FakeCtGov, client: CtGovClient) -> None:
    fake_api.fail(503, path_contains="/version", times=99)
    state = synced(fake_api)
    with capture_logs() as logs:
        result = poll(client, fake_api.ids(), state, now=NOW)
    assert result.strategy == "unavailable"
    assert isinstance(result.api_error, TransientApiError)
    assert set(result.failures) == set(fake_api.ids())
    assert not result.records
    assert result.data_timestamp == state.data_timestamp
    assert not result.complete
    assert result.requests == 3
    assert any(e["event"] == "poll.api_unavailable" for e in logs)


@pytest.mark.parametrize("kind", [500, 503, 429, "timeout", "reset"])
def test_transient_fault_on_the_probe_is_retried(fake_api: FakeCtGov, client: CtGovClient, kind: str) -> None:
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    fake_api.fail(kind, path_contains="fields=", retry_after=0 if kind in {429, 503} else None, delay=2.0)
    with capture_logs() as logs:
        result = poll(client, fake_api.ids(), state, now=NOW)
    assert list(result.records) == [NCT]
    assert result.complete
    assert len([r for r in fake_api.requests if "fields" in r[2]]) == 2
    assert len([e for e in logs if e["event"] == "api.retry"]) == 1


@pytest.mark.parametrize("kind", [500, "timeout", "reset"])
def test_persistent_fault_on_the_full_fetch_fails_those_trials_only(
    fake_api: FakeCtGov, client: CtGovClient, kind: str
) -> None:
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    fake_api.fail(kind, path_contains=f"filter.ids={NCT}&", times=99, delay=2.0)
    with capture_logs() as logs:
        result = poll(client, fake_api.ids(), state, now=NOW)
    assert not result.records
    assert isinstance(result.failures[NCT], TransientApiError)
    assert result.data_timestamp == state.data_timestamp  # the next cycle looks again
    assert len([r for r in fake_api.requests if r[2].get("filter.ids") == NCT]) == 3  # 1 + max_retries
    assert [e["nct_id"] for e in logs if e["event"] == "poll.trial_failed"] == [NCT]


@pytest.mark.parametrize("kind", ["truncated", "html"])
def test_unusable_full_page_fails_its_trials_without_a_retry(
    fake_api: FakeCtGov, client: CtGovClient, kind: str
) -> None:
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    fake_api.fail(kind, path_contains=f"filter.ids={NCT}&")
    result = poll(client, fake_api.ids(), state, now=NOW)
    assert not result.records
    assert isinstance(result.failures[NCT], InvalidResponse)
    assert len([r for r in fake_api.requests if r[2].get("filter.ids") == NCT]) == 1


def test_record_carrying_another_watched_id_fails_both_and_feeds_neither(
    fake_api: FakeCtGov, client: CtGovClient
) -> None:
    """NCT's record comes back labelled as OTHER, a watched trial: two claims to OTHER, none to NCT."""
    other = "NCT04280705"
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    fake_api.fail("wrong_id", ids=[NCT], wrong_id=other, times=99)
    with capture_logs() as logs:
        result = poll(client, fake_api.ids(), state, now=NOW)
    assert NCT not in result.records
    assert other not in result.records
    assert isinstance(result.failures[NCT], InvalidResponse)  # missing, then its own GET names OTHER
    assert isinstance(result.failures[other], InvalidResponse)  # claimed twice
    assert {e["nct_id"] for e in logs if e["event"] == "api.invalid_response"} == {NCT, other}
    assert not result.complete


@pytest.mark.parametrize("kind", ["wrong_id", "no_protocol"])
def test_bad_record_in_a_batch_is_never_a_false_record(fake_api: FakeCtGov, client: CtGovClient, kind: str) -> None:
    """The bad record is not attributed; its ID goes missing and the confirming GET (also bad) fails it."""
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    fake_api.fail(kind, ids=[NCT], times=99)
    with capture_logs() as logs:
        result = poll(client, fake_api.ids(), state, now=NOW)
    assert result.records == {}
    assert isinstance(result.failures[NCT], InvalidResponse)
    assert set(result.failures) == {NCT}
    assert any(e["event"] == "api.invalid_response" and e["nct_id"] == NCT for e in logs)
    assert fake_api.requests[-1][1] == f"/api/v2/studies/{NCT}"


def test_missing_ids_in_a_batch_are_confirmed(fake_api: FakeCtGov, client: CtGovClient) -> None:
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    fake_api.fail("drop_ids", ids=[NCT], times=2)
    result = poll(client, fake_api.ids(), state, now=NOW)
    assert list(result.records) == [NCT]
    assert result.records[NCT]["protocolSection"]["statusModule"]["overallStatus"] == "COMPLETED"
    assert paths(fake_api)[-1] == f"/studies/{NCT}"
    assert result.complete


# the cost target: 10,000 watched -------------------------------------------------------------


@pytest.fixture(scope="module")
def big_fake() -> Iterator[FakeCtGov]:
    with FakeCtGov(synthetic_studies(10_000)) as fake:
        yield fake


def test_cost_10000_watched_nothing_and_one_percent_changed(big_fake: FakeCtGov) -> None:
    ids = big_fake.ids()
    settings = ApiSettings(base_url=big_fake.base_url, requests_per_second=0)
    state = synced(big_fake)
    with CtGovClient(settings) as client:
        unchanged = poll(client, ids, state, now=NOW)
        assert unchanged.requests == 1
        big_fake.new_refresh()
        quiet = poll(client, ids, state, now=NOW)
        assert (quiet.strategy, len(quiet.records), quiet.requests) == ("updated-since", 0, 2)
        for nct in ids[::100]:
            big_fake.update(nct, set_status("COMPLETED"))
        changed = poll(client, ids, state, now=NOW)
    assert set(changed.records) == set(ids[::100])
    assert changed.strategy == "updated-since"
    assert changed.requests <= 12 + 100 // 100
    assert changed.requests == 3


def test_cost_10000_watched_probe_strategy(big_fake: FakeCtGov) -> None:
    """Without a last complete poll to date the registry query from, the probe does it: 1 + 21 + 1
    (480 IDs a batch, `,` sent unescaped; it was 1 + 25 + 1 with 400)."""
    ids = big_fake.ids()
    state = replace(synced(big_fake), last_success=None, data_timestamp="2026-01-01T09:00:00")
    for nct in ids[5::100]:
        big_fake.update(nct, set_status("WITHDRAWN"))
    with CtGovClient(ApiSettings(base_url=big_fake.base_url, requests_per_second=0)) as client:
        result = poll(client, ids, state, now=NOW)
    assert result.strategy == "ids"
    assert set(result.records) == set(ids[5::100])
    assert result.requests == 1 + -(-10_000 // ApiSettings().batch_size) + 1 == 1 + 21 + 1


def test_poll_result_is_plain_data() -> None:
    assert PollResult.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert PollState.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_sink_streams_records_instead_of_holding_them(fake_api: FakeCtGov, settings: ApiSettings) -> None:
    got: dict[str, dict[str, Any]] = {}
    with CtGovClient(replace(settings, full_page_size=4), sleep=Sleeps()) as client:
        result = poll(client, fake_api.ids(), PollState(), now=NOW, sink=got.__setitem__)
    assert result.records == {}
    assert got == {i: load_fixture(i) for i in fake_api.ids()}
    assert result.requests == 1 + 5


def test_naive_datetimes_from_the_store_are_utc(fake_api: FakeCtGov, client: CtGovClient) -> None:
    naive = NOW.replace(tzinfo=None)
    state = synced(fake_api, last_success=naive - timedelta(hours=1), last_full_refetch=naive - timedelta(days=1))
    assert poll(client, fake_api.ids(), state, now=NOW).skipped
    assert poll(
        client, fake_api.ids(), replace(state, last_full_refetch=naive - timedelta(days=8)), now=NOW
    ).full_refetch


# the fault matrix -----------------------------------------------------------------------------
#
# One watched trial (NCT) changed. Each row injects one fault and asserts: no crash, no false record
# (a failing trial is in `failures`, never in `records`), how many requests for that trial followed
# the probe (from the fake's log: batch attempts and single GETs), and the structured event.

FULL_FETCH = f"filter.ids={NCT}&"  # only NCT changed, so its full-record batch holds it alone


@dataclass(frozen=True)
class Row:
    kind: str
    times: int
    path: str | None  # where the fault strikes: the full fetch, or anywhere NCT is served
    outcome: str  # record | failure | not_found | moved
    attempts: int
    event: str
    error: type[Exception] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


MATRIX = [
    Row("500", 1, FULL_FETCH, "record", 2, "api.retry"),
    Row("500", 99, FULL_FETCH, "failure", 3, "api.failed", TransientApiError),
    Row("503", 1, FULL_FETCH, "record", 2, "api.retry", extra={"retry_after": 0}),
    Row("503", 99, FULL_FETCH, "failure", 3, "api.failed", TransientApiError, {"retry_after": 0}),
    Row("429", 1, FULL_FETCH, "record", 2, "api.retry", extra={"retry_after": 0}),
    Row("429", 99, FULL_FETCH, "failure", 3, "api.failed", TransientApiError, {"retry_after": 0}),
    Row("timeout", 1, FULL_FETCH, "record", 2, "api.retry", extra={"delay": 2.0}),
    Row("timeout", 99, FULL_FETCH, "failure", 3, "api.failed", TransientApiError, {"delay": 2.0}),
    Row("reset", 1, FULL_FETCH, "record", 2, "api.retry"),
    Row("reset", 99, FULL_FETCH, "failure", 3, "api.failed", TransientApiError),
    Row("truncated", 1, FULL_FETCH, "failure", 1, "api.batch_failed", InvalidResponse),
    Row("html", 1, FULL_FETCH, "failure", 1, "api.batch_failed", InvalidResponse),
    Row("no_protocol", 99, None, "failure", 1, "api.invalid_response", InvalidResponse, {"ids": [NCT]}),
    Row("wrong_id", 99, None, "failure", 1, "api.invalid_response", InvalidResponse, {"ids": [NCT]}),
    Row("drop_ids", 1, None, "record", 1, "poll.missing", extra={"ids": [NCT]}),
    Row("404", 0, None, "not_found", 1, "poll.not_found"),
    Row("301", 0, None, "moved", 2, "poll.moved"),
]


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.kind}x{r.times}-{r.outcome}")
def test_fault_matrix(fake_api: FakeCtGov, client: CtGovClient, row: Row) -> None:
    state = synced(fake_api)
    watched = fake_api.ids()
    fake_api.update(NCT, set_status("COMPLETED"))
    canonical = "NCT09000001"
    if row.kind == "404":  # removed: the probe leaves it out, its GET says 404
        fake_api.remove(NCT)
    elif row.kind == "301":  # renumbered, and the index does not show it yet: the GET is redirected
        fake_api.alias(NCT, canonical)
        fake_api.fail("drop_ids", ids=[canonical], times=99)
    else:
        fake_api.fail(row.kind, path_contains=row.path, times=row.times, **row.extra)

    with capture_logs() as logs:
        result = poll(client, watched, state, now=NOW)

    after_probe = [
        r for r in fake_api.requests[2:] if NCT in r[1] or canonical in r[1] or r[2].get("filter.ids") == NCT
    ]
    assert len(after_probe) == row.attempts
    assert row.event in [e["event"] for e in logs]
    assert set(result.records) <= {NCT}  # nothing else fetched, nothing false added
    if row.outcome == "record":
        assert result.records[NCT]["protocolSection"]["statusModule"]["overallStatus"] == "COMPLETED"
        assert result.complete
    elif row.outcome == "failure":
        assert NCT not in result.records
        assert row.error is not None
        assert isinstance(result.failures[NCT], row.error)
        assert set(result.failures) == {NCT}
        assert result.data_timestamp == state.data_timestamp  # the next cycle looks again
        assert [e["nct_id"] for e in logs if e["event"] == "poll.trial_failed"] == [NCT]
    elif row.outcome == "not_found":
        assert (result.records, result.failures, result.not_found) == ({}, {}, {NCT})
    else:
        assert result.moved == {NCT: canonical}
        assert result.records[NCT]["protocolSection"]["identificationModule"]["nctId"] == canonical


def test_failing_registry_query_falls_back_to_the_probe(fake_api: FakeCtGov, settings: ApiSettings) -> None:
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    fake_api.fail("html", path_contains="filter.advanced")
    with capture_logs() as logs, CtGovClient(replace(settings, batch_size=5), sleep=Sleeps()) as client:
        result = poll(client, fake_api.ids(), state, now=NOW)
    assert result.strategy == "ids"
    assert list(result.records) == [NCT]
    assert result.complete
    assert any(e["event"] == "poll.updated_since_failed" for e in logs)


def test_empty_watchlist_and_odd_id_spellings(fake_api: FakeCtGov, client: CtGovClient) -> None:
    empty = poll(client, [], PollState(), now=NOW)
    assert (empty.records, empty.failures, empty.requests) == ({}, {}, 1)
    result = poll(client, ["nct973089", "NCT00973089", "banana"], PollState(), now=NOW)
    assert set(result.records) == {"nct973089", "NCT00973089"}
    assert result.moved == {}
    assert set(result.failures) == {"banana"}
    assert result.requests == 2  # one batch answers both spellings; "banana" is never sent


def test_a_batch_answered_with_the_wrong_studies_fails_as_a_batch_without_confirming_each(
    fake_api: FakeCtGov,
    client: CtGovClient,
) -> None:
    """Every study under a wrong ID: a bad reply, retried next cycle, not 17 trials to confirm one by one."""
    state = synced(fake_api)
    fake_api.update(NCT, set_status("COMPLETED"))
    fake_api.fail("wrong_id", ids=fake_api.ids(), path_contains="filter.ids", times=99)
    with capture_logs() as logs:
        result = poll(client, fake_api.ids(), state, now=NOW)
    assert result.records == {}
    assert set(result.failures) == set(fake_api.ids())
    assert all(isinstance(e, InvalidResponse) for e in result.failures.values())
    assert paths(fake_api) == ["/version", "/studies"], "no confirming GET per trial"
    assert any(e["event"] == "api.batch_failed" and e.get("reason") == "wrong studies" for e in logs)
    assert result.data_timestamp == state.data_timestamp

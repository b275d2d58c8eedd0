"""The fake API's search parameters over HTTP, as the spec describes them (tests/support/fake_search.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.discovery_studies import MGH, new_study
from tests.support.fakeapi import FakeCtGov


@pytest.fixture
def http(fake_api: FakeCtGov) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_api.base_url, timeout=10) as client:
        yield client


def ids(http: httpx.Client, **params: str) -> list[str]:
    response = http.get("/studies", params={"fields": "NCTId", "pageSize": "1000", **params})
    assert response.status_code == 200, response.text
    return sorted(s["protocolSection"]["identificationModule"]["nctId"] for s in response.json()["studies"])


def test_query_areas_match_their_own_fields_case_insensitively(http: httpx.Client) -> None:
    assert ids(http, **{"query.cond": "covid-19"}) == ["NCT04280705", "NCT04431453"]
    assert ids(http, **{"query.intr": "NEMTABRUTINIB"}) == ["NCT04728893"]
    assert ids(http, **{"query.cond": "nemtabrutinib"}) == [], "an intervention is not a condition"
    assert ids(http, **{"query.term": "nemtabrutinib"}) == ["NCT04728893"]
    assert ids(http, **{"query.cond": "covid-19 OR lymphoma"}) == ["NCT04280705", "NCT04431453", "NCT04728893"]
    assert ids(http, **{"query.lead": "Merck Sharp"}) == ["NCT04728893"]
    assert ids(http, **{"query.id": "NCT04728893"}) == ["NCT04728893"]


def test_filters_combine_with_queries(http: httpx.Client) -> None:
    covid = ids(http, **{"query.cond": "covid-19", "filter.overallStatus": "COMPLETED"})
    assert covid == ["NCT04280705", "NCT04431453"]
    assert ids(http, **{"query.cond": "covid-19", "filter.overallStatus": "RECRUITING|SUSPENDED"}) == []
    boston = ids(http, **{"filter.geo": "distance(42.36,-71.06,5km)"})
    assert boston == ["NCT02513394", "NCT03318939", "NCT04267848", "NCT04280705", "NCT04431453"]
    assert ids(http, **{"filter.geo": "distance(42.36,-71.06,3mi)"}) == boston
    assert "NCT04207047" in ids(http, **{"filter.geo": "distance(42.36,-71.06,30km)"})


def test_advanced_date_ranges_on_first_posting_and_last_update(fake_api: FakeCtGov, http: httpx.Client) -> None:
    assert ids(http, **{"filter.advanced": "AREA[StudyFirstPostDate]RANGE[2025-01-01,MAX]"}) == ["NCT06863285"]
    new_study(fake_api, "NCT07200003", title="t", conditions=["NSCLC"], intervention="x", site=MGH)
    day = fake_api.data_timestamp[:10]
    assert ids(http, **{"filter.advanced": f"AREA[StudyFirstPostDate]RANGE[{day},MAX]"}) == ["NCT07200003"]
    both = f"(AREA[StudyFirstPostDate]RANGE[MIN,2020-12]) AND AREA[LastUpdatePostDate]RANGE[{day},MAX]"
    assert ids(http, **{"filter.advanced": both}) == []


def test_search_results_page_with_count_total(fake_api: FakeCtGov, http: httpx.Client) -> None:
    params: dict[str, Any] = {
        "filter.geo": "distance(42.36,-71.06,5km)",
        "pageSize": "2",
        "countTotal": "true",
        "fields": "NCTId",
    }
    first = http.get("/studies", params=params).json()
    assert first["totalCount"] == 5 and len(first["studies"]) == 2
    second = http.get("/studies", params={**params, "pageToken": first["nextPageToken"]}).json()
    assert "totalCount" not in second and len(second["studies"]) == 2
    wrong = http.get("/studies", params={**params, "query.cond": "x", "pageToken": first["nextPageToken"]})
    assert wrong.status_code == 400, "later pages must repeat the parameters"


@pytest.mark.parametrize(
    "params",
    [
        {"query.condition": "x"},
        {"filter.overallStatus": "OPEN"},
        {"filter.geo": "distance(42.36,-71.06)"},
        {"filter.advanced": "AREA[StartDate]2022"},
        {"filter.advanced": "AREA[StudyFirstPostDate]RANGE[yesterday,MAX]"},
        {"query.cond": "  "},
    ],
)
def test_bad_search_values_are_400_text(http: httpx.Client, params: dict[str, str]) -> None:
    response = http.get("/studies", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")

"""The fake API keeps to the OpenAPI spec, so what passes against it is worth something."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import shared
from tests.support.fakeapi import (
    PIECES,
    STUDIES_PARAMS,
    STUDY_PARAMS,
    UNIMPLEMENTED,
    FakeCtGov,
    load_fixture,
    load_fixtures,
    synthetic_studies,
)


def spec() -> Any:
    return shared.load_spec()


def test_the_fake_knows_the_specs_parameters_and_no_others() -> None:
    paths = spec()["paths"]
    listed = {p["name"] for p in paths["/studies"]["get"]["parameters"]}
    assert listed == STUDIES_PARAMS | UNIMPLEMENTED
    single = {p["name"] for p in paths["/studies/{nctId}"]["get"]["parameters"] if p["in"] == "query"}
    assert single == STUDY_PARAMS
    assert paths["/version"]["get"]["parameters"] == []


def test_every_piece_name_maps_to_a_path_in_the_spec_schema() -> None:
    schemas = spec()["components"]["schemas"]

    def walk(schema: Any, path: tuple[str, ...]) -> bool:
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
        if not path:
            return True
        if schema.get("type") == "array":
            return walk(schema["items"], path)
        props = schema.get("properties", {})
        return path[0] in props and walk(props[path[0]], path[1:])

    for piece, path in PIECES.items():
        assert walk(schemas["Study"], path), piece


@pytest.fixture
def http(fake_api: FakeCtGov) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_api.base_url, timeout=5) as client:
        yield client


def test_version_has_the_spec_shape(http: httpx.Client) -> None:
    body = http.get("/version").json()
    assert body == {"apiVersion": "2.0.5", "dataTimestamp": "2026-09-04T09:00:06"}
    assert time.strptime(body["dataTimestamp"], "%Y-%m-%dT%H:%M:%S")


def test_single_study_is_the_record_itself(http: httpx.Client) -> None:
    response = http.get("/studies/NCT04280705")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == load_fixture("NCT04280705")


def test_lower_case_and_unpadded_ids_follow_the_spec_pattern(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.put(next(synthetic_studies(1, first=123)))
    study = http.get("/studies/nct123").json()
    assert study["protocolSection"]["identificationModule"]["nctId"] == "NCT00000123"


def test_unknown_study_is_404_text(http: httpx.Client) -> None:
    response = http.get("/studies/NCT00000002")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "NCT number NCT00000002 not found"  # as the live service words it


@pytest.mark.parametrize("bad", ["NCT0", "XYZ00000001", "NCT123456789", "NCT0012345A"])
def test_malformed_id_is_400_text(http: httpx.Client, bad: str) -> None:
    response = http.get(f"/studies/{bad}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Parameter `nctId` has incorrect format"  # as the live service words it


def test_alias_answers_301_to_the_canonical_study(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.alias("NCT03318939", "NCT09000001")
    response = http.get("/studies/NCT03318939")
    assert response.status_code == 301
    assert response.headers["location"] == "/api/v2/studies/NCT09000001"
    moved = http.get(response.headers["location"].removeprefix("/api/v2")).json()
    ident = moved["protocolSection"]["identificationModule"]
    assert ident["nctId"] == "NCT09000001"
    assert ident["nctIdAliases"] == ["NCT03318939"]


def test_merged_duplicate_becomes_an_alias_of_the_survivor(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.alias("NCT03318939", "NCT04280705")
    assert http.get("/studies/NCT03318939").headers["location"] == "/api/v2/studies/NCT04280705"
    assert "NCT03318939" not in fake_api.ids()


def test_filter_ids_accepts_commas_and_pipes_and_ignores_unknown_ids(http: httpx.Client) -> None:
    for sep in (",", "|"):
        ids = sep.join(["NCT04280705", "NCT00973089", "NCT00000002"])
        body = http.get("/studies", params={"filter.ids": ids}).json()
        got = {s["protocolSection"]["identificationModule"]["nctId"] for s in body["studies"]}
        assert got == {"NCT04280705", "NCT00973089"}
        assert "nextPageToken" not in body


def test_filter_ids_matches_aliases(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.alias("NCT00973089", "NCT09000002")
    body = http.get("/studies", params={"filter.ids": "NCT00973089", "fields": "NCTId"}).json()
    assert body == {"studies": [{"protocolSection": {"identificationModule": {"nctId": "NCT09000002"}}}]}


def test_fields_nest_like_the_real_api(http: httpx.Client) -> None:
    body = http.get("/studies/NCT02856893", params={"fields": "NCTId,LastUpdatePostDate"}).json()
    assert body == {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT02856893"},
            "statusModule": {"lastUpdatePostDateStruct": {"date": "2025-10-31"}},
        }
    }


def test_fields_shape_matches_a_real_capture(fake_api: FakeCtGov, http: httpx.Client) -> None:
    """biomcp captured `fields=…StartDate…` as statusModule.startDateStruct.date; so does the fake."""
    real = shared.load_fields_limited("biomcp_get_NCT06382129_fields_20260811.json")
    fake_api.put(real)
    body = http.get("/studies/NCT06382129", params={"fields": "NCTId|StartDate|OverallStatus"}).json()
    status = real["protocolSection"]["statusModule"]
    assert body == {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT06382129"},
            "statusModule": {"overallStatus": status["overallStatus"], "startDateStruct": status["startDateStruct"]},
        }
    }


def test_paging_repeats_parameters_and_counts_on_the_first_page_only(http: httpx.Client) -> None:
    params = {"fields": "NCTId", "pageSize": "5", "countTotal": "true"}
    seen: list[str] = []
    first = http.get("/studies", params=params).json()
    assert first["totalCount"] == 17
    page = first
    pages = 1
    while True:
        seen += [s["protocolSection"]["identificationModule"]["nctId"] for s in page["studies"]]
        if "nextPageToken" not in page:
            break
        page = http.get("/studies", params={**params, "pageToken": page["nextPageToken"]}).json()
        assert "totalCount" not in page
        pages += 1
    assert pages == 4
    assert sorted(seen) == sorted(FakeCtGov(load_fixtures()).ids())


def test_an_exactly_full_last_page_carries_a_token_to_an_empty_page(fake_api: FakeCtGov, http: httpx.Client) -> None:
    """As the live service does (cyanheads/clinicaltrialsgov-mcp-server issue #98): the token does not look ahead."""
    params = {"filter.ids": ",".join(fake_api.ids()[:3]), "pageSize": "3"}
    first = http.get("/studies", params=params).json()
    assert len(first["studies"]) == 3
    last = http.get("/studies", params={**params, "pageToken": first["nextPageToken"]}).json()
    assert last == {"studies": []}
    fake_api.full_page_tokens = False
    assert "nextPageToken" not in http.get("/studies", params=params).json()


def test_page_token_with_other_parameters_is_rejected(http: httpx.Client) -> None:
    token = http.get("/studies", params={"fields": "NCTId", "pageSize": "5"}).json()["nextPageToken"]
    response = http.get("/studies", params={"fields": "NCTId,LastUpdatePostDate", "pageToken": token})
    assert response.status_code == 400


def test_page_size_defaults_to_10_and_is_coerced_to_1000() -> None:
    with FakeCtGov(synthetic_studies(1005)) as fake, httpx.Client(base_url=fake.base_url) as http:
        assert len(http.get("/studies", params={"fields": "NCTId"}).json()["studies"]) == 10
        assert len(http.get("/studies", params={"fields": "NCTId", "pageSize": "0"}).json()["studies"]) == 10
        body = http.get("/studies", params={"fields": "NCTId", "pageSize": "5000"}).json()
        assert len(body["studies"]) == 1000
        assert "nextPageToken" in body


def test_advanced_filter_selects_by_last_update_date(http: httpx.Client) -> None:
    params = {
        "filter.advanced": "AREA[LastUpdatePostDate]RANGE[2025-03-11,MAX]",
        "fields": "NCTId,LastUpdatePostDate",
        "pageSize": "1000",
    }
    body = http.get("/studies", params=params).json()
    dates = {
        s["protocolSection"]["identificationModule"]["nctId"]: s["protocolSection"]["statusModule"][
            "lastUpdatePostDateStruct"
        ]["date"]
        for s in body["studies"]
    }
    assert dates == {
        "NCT02856893": "2025-10-31",
        "NCT04267848": "2025-09-10",
        "NCT04764188": "2025-10-16",
        "NCT06863285": "2025-03-11",
    }


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/studies", {"filter.nonsense": "x"}),
        ("/studies", {"pageSize": "-1"}),
        ("/studies", {"pageSize": "ten"}),
        ("/studies", {"countTotal": "yes"}),
        ("/studies", {"fields": "NoSuchField"}),
        ("/studies", {"fields": ""}),
        ("/studies", {"filter.ids": "NCT1,banana"}),
        ("/studies", {"filter.advanced": "AREA[Nope]x"}),
        ("/studies", {"format": "xml"}),
        ("/studies/NCT04280705", {"pageSize": "5"}),
        ("/version", {"x": "1"}),
    ],
)
def test_unknown_parameters_and_bad_values_are_400_text(http: httpx.Client, path: str, params: dict[str, str]) -> None:
    response = http.get(path, params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")


def test_changes_land_in_one_daily_refresh(fake_api: FakeCtGov, http: httpx.Client) -> None:
    assert http.get("/version").json()["dataTimestamp"] == "2026-09-04T09:00:06"

    def recruit(study: dict[str, object]) -> None:
        study["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"  # type: ignore[index]

    fake_api.update("NCT00973089", recruit)
    fake_api.update("NCT04280705", recruit)
    assert http.get("/version").json()["dataTimestamp"] == "2026-09-05T09:00:06"
    for nct in ("NCT00973089", "NCT04280705"):
        status = http.get(f"/studies/{nct}").json()["protocolSection"]["statusModule"]
        assert status["overallStatus"] == "RECRUITING"
        assert status["lastUpdatePostDateStruct"] == {"date": "2026-09-05", "type": "ACTUAL"}
    fake_api.update("NCT00973089", recruit, bump=False)
    assert http.get("/version").json()["dataTimestamp"] == "2026-09-06T09:00:06"
    assert fake_api.last_updates()["NCT00973089"] == "2026-09-05"


def test_get_returns_a_copy(fake_api: FakeCtGov) -> None:
    fake_api.get("NCT00973089")["protocolSection"] = {}
    assert fake_api.get("NCT00973089")["protocolSection"]


def test_remove_makes_a_study_404(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.remove("NCT00973089")
    assert http.get("/studies/NCT00973089").status_code == 404
    assert http.get("/studies", params={"filter.ids": "NCT00973089"}).json() == {"studies": []}


def test_request_log_records_path_and_params(fake_api: FakeCtGov, http: httpx.Client) -> None:
    http.get("/studies", params={"filter.ids": "NCT00973089", "fields": "NCTId"})
    assert fake_api.requests == [("GET", "/api/v2/studies", {"filter.ids": "NCT00973089", "fields": "NCTId"})]
    fake_api.reset_requests()
    assert fake_api.requests == []


# faults, as seen on the wire -----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status"), [(500, 500), (503, 503), (429, 429)])
def test_status_faults_happen_times_then_stop(fake_api: FakeCtGov, http: httpx.Client, kind: int, status: int) -> None:
    fake_api.fail(kind, path_contains="NCT00973089", times=2, retry_after=7 if kind != 500 else None)
    assert http.get("/studies/NCT04280705").status_code == 200  # path_contains does not match
    first = http.get("/studies/NCT00973089")
    assert first.status_code == status
    assert first.headers.get("retry-after") == (None if kind == 500 else "7")
    assert http.get("/studies/NCT00973089").status_code == status
    assert http.get("/studies/NCT00973089").status_code == 200


def test_html_fault_is_a_200_page(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.fail("html")
    response = http.get("/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_truncated_fault_is_complete_http_with_half_the_json(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.fail("truncated")
    response = http.get("/studies/NCT00973089")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_reset_fault_drops_the_connection(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.fail("reset")
    with pytest.raises(httpx.TransportError):
        http.get("/version")
    assert http.get("/version").status_code == 200


def test_timeout_fault_answers_too_late(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.fail("timeout", delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/version", timeout=0.2)


def test_record_faults(fake_api: FakeCtGov, http: httpx.Client) -> None:
    fake_api.fail("wrong_id", wrong_id="NCT04280705")
    assert http.get("/studies/NCT00973089").json()["protocolSection"]["identificationModule"]["nctId"] == "NCT04280705"
    fake_api.fail("no_protocol")
    assert "protocolSection" not in http.get("/studies/NCT00973089").json()
    fake_api.fail("drop_ids", ids=["NCT00973089"])
    body = http.get("/studies", params={"filter.ids": "NCT00973089,NCT04280705", "fields": "NCTId"}).json()
    assert [s["protocolSection"]["identificationModule"]["nctId"] for s in body["studies"]] == ["NCT04280705"]


def test_unknown_fault_kind_is_refused(fake_api: FakeCtGov) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake_api.fail("gremlins")


@pytest.mark.slow
def test_runs_as_a_separate_process(unused_port: int) -> None:
    shared.study_paths()  # skip here rather than fail in the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fakeapi", "--port", str(unused_port), "--synthetic", "50"],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "with 50 studies" in proc.stdout.readline()
        base = f"http://127.0.0.1:{unused_port}"
        with httpx.Client(base_url=base) as http:
            body = http.get("/api/v2/studies", params={"fields": "NCTId", "pageSize": "100"}).json()
            assert len(body["studies"]) == 50
            assert http.post("/_fake/touch", json={"ids": ["NCT90000001"]}).json() == {
                "dataTimestamp": "2026-09-05T09:00:06"
            }
            status = http.get("/api/v2/studies/NCT90000001").json()["protocolSection"]["statusModule"]
            assert status["lastUpdatePostDateStruct"]["date"] == "2026-09-05"
            assert http.post("/_fake/requests", json={"reset": True}).json() == {"count": 2}
            http.post(
                "/_fake/update",
                json={
                    "id": "NCT90000002",
                    "set": {"protocolSection.statusModule.overallStatus": "COMPLETED"},
                },
            ).raise_for_status()
            status = http.get("/api/v2/studies/NCT90000002").json()["protocolSection"]["statusModule"]
            assert (status["overallStatus"], status["lastUpdatePostDateStruct"]["date"]) == (
                "COMPLETED",
                "2026-09-05",
            )  # no /version served since the touch: the same refresh
            http.post("/_fake/fail", json={"kind": 503, "times": 1}).raise_for_status()
            assert http.get("/api/v2/version").status_code == 503
            http.post("/_fake/remove", json={"id": "NCT90000002"}).raise_for_status()
            assert http.get("/api/v2/studies/NCT90000002").status_code == 404
            assert http.post("/_fake/nonsense", json={}).status_code == 400
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

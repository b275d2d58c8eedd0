"""Discovery's pure parts and configuration: nearby sites, no-edit conditions on real
records, new-study facts, `searches:`/`near:` validation against the spec, search parameters."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import shared
from tests.support.discovery_studies import BOSTON_CHILDRENS
from watcher.config import parse_watchlist
from watcher.config.searches import FILTER_PARAMS, GEO, QUERY_PARAMS, STATUSES, Search
from watcher.detect.nearby import EARTH_RADIUS_KM, centre, haversine_km, nearby_events, within
from watcher.detect.newstudies import new_matches, sentence, summary
from watcher.detect.noedit import conditions, last_day
from watcher.errors import ConfigError
from watcher.models import Near
from watcher.registry.search import search_params

TODAY = date(2026, 11, 30)
BOSTON = Near(km=100, lat=42.36, lon=-71.06)


def study(nct_id: str) -> dict[str, Any]:
    return copy.deepcopy(shared.load_study(nct_id))


def spec_params() -> dict[str, Any]:
    spec = shared.load_spec()
    return {p["name"]: p for p in spec["paths"]["/studies"]["get"]["parameters"]}


# -- the spec is the source of the parameter names -------------------------------------------------


def test_search_keys_are_the_specs_query_and_filter_parameters() -> None:
    params = spec_params()
    assert {n.removeprefix("query.") for n in params if n.startswith("query.")} == set(QUERY_PARAMS)
    assert {n.removeprefix("filter.") for n in params if n.startswith("filter.")} == set(FILTER_PARAMS)
    assert set(shared.load_spec()["components"]["schemas"]["Status"]["enum"]) == set(STATUSES)
    assert params["filter.geo"]["schema"]["pattern"].replace("\\\\", "\\") == GEO.pattern


# -- nearby sites ---------------------------------------------------------------------------------


def test_haversine_boston_to_new_york_is_about_306_km() -> None:
    assert haversine_km(42.3601, -71.0589, 40.7128, -74.0060) == pytest.approx(306.1, abs=0.5)
    assert haversine_km(10, 20, 10, 20) == 0


LAT, LON = st.floats(-90, 90), st.floats(-180, 180)


@given(LAT, LON, LAT, LON)
def test_haversine_is_symmetric_and_never_beyond_half_the_globe(a: float, b: float, c: float, d: float) -> None:
    there = haversine_km(a, b, c, d)
    assert there == pytest.approx(haversine_km(c, d, a, b), abs=1e-6)
    assert 0 <= there <= 3.1416 * EARTH_RADIUS_KM


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(shared.STUDY_IDS), LAT, LON, st.floats(1, 20000))
def test_a_version_compared_with_itself_has_no_nearby_news(nct_id: str, lat: float, lon: float, km: float) -> None:
    record = study(nct_id)
    assert nearby_events(record, record, Near(km=km, lat=lat, lon=lon)) == []


def test_a_new_recruiting_site_within_reach_is_one_event_and_a_far_one_none() -> None:
    old = study("NCT04728893")
    new = copy.deepcopy(old)
    locations = new["protocolSection"]["contactsLocationsModule"]["locations"]
    locations.append(dict(BOSTON_CHILDRENS))
    locations.append(
        {
            "facility": "Far Away Clinic",
            "status": "RECRUITING",
            "city": "Denver",
            "country": "United States",
            "geoPoint": {"lat": 39.74, "lon": -104.99},
        }
    )
    events = nearby_events(old, new, BOSTON)
    assert [e.summary for e in events] == [
        "New recruiting site 4 km away: Boston Children's Hospital (Boston, Massachusetts, United States)"
    ]
    assert events[0].kind == "nearby_site" and events[0].data["km"] == 4.5
    assert nearby_events(new, new, BOSTON) == [], "nothing new, nothing said"


def test_a_site_that_opens_is_newly_recruiting_and_one_that_closes_is_not_news() -> None:
    record = study("NCT04267848")  # recruiting at three sites in Boston itself
    closed = copy.deepcopy(record)
    sites = closed["protocolSection"]["contactsLocationsModule"]["locations"]
    boston = [s for s in sites if s.get("city") == "Boston"]
    for site in boston:
        site["status"] = "NOT_YET_RECRUITING" if site is boston[0] else "COMPLETED"
    reopened = nearby_events(closed, record, BOSTON)
    assert [e.data["previous_status"] for e in reopened] == ["COMPLETED", "NOT_YET_RECRUITING", "COMPLETED"]
    assert all(e.summary.startswith("Newly recruiting site 0 km away: ") for e in reopened)
    assert nearby_events(record, closed, BOSTON) == [], "closing, or going back to 'not yet', is not news"


def test_a_place_name_is_resolved_from_the_records_own_sites() -> None:
    record = study("NCT04267848")
    point = centre(Near(km=10, place="boston"), record)
    assert point is not None and haversine_km(*point, 42.36, -71.06) < 10
    assert centre(Near(km=10, place="Atlantis"), record) is None
    assert within(record, Near(km=10, place="Boston"))[0][0] == 0


# -- no-edit conditions on real records ------------------------------------------------------------


def kinds(record: dict[str, Any], today: date = TODAY) -> list[str]:
    return [e.kind for e in conditions(record, today)]


def test_results_overdue_on_a_real_fda_regulated_trial_without_results() -> None:
    record = study("NCT03418623")  # completed 2020-03-13 (actual), FDA-regulated drug, no results
    events = conditions(record, TODAY)
    assert [e.kind for e in events] == ["results_overdue"]
    assert events[0].summary == (
        "Results may be overdue: primary completion 2020-03-13, 80 months ago; no results posted and no "
        "certification or extension filed (FDA-regulated drug; FDAAA 801, 42 CFR 11.44: due within 1 year)"
    )
    assert kinds(record, date(2021, 3, 13)) == [], "exactly 12 months later is not yet overdue"
    assert kinds(record, date(2021, 3, 14)) == ["results_overdue"]
    for clear in (
        lambda r: r.update(hasResults=True),
        lambda r: r["protocolSection"]["statusModule"].update(resultsFirstSubmitDate="2021-02-01"),
        lambda r: r["protocolSection"]["statusModule"].update(dispFirstSubmitDate="2021-02-01"),
        lambda r: r["protocolSection"]["oversightModule"].update(isFdaRegulatedDrug=False),
    ):
        variant = copy.deepcopy(record)
        clear(variant)
        assert kinds(variant) == []


def test_other_real_records_are_not_overdue_for_the_reason_the_rule_gives() -> None:
    assert "results_overdue" not in kinds(study("NCT04280705")), "results posted"
    assert "results_overdue" not in kinds(study("NCT03318939")), "a certification/extension was filed"
    assert "results_overdue" not in kinds(study("NCT03630471")), "not FDA-regulated"


def test_status_unverified_for_two_years_on_a_real_recruiting_trial() -> None:
    record = study("NCT04728893")  # RECRUITING, verified 2023-11
    events = conditions(record, TODAY)
    assert [e.kind for e in events] == ["status_unverified"]
    assert events[0].summary.startswith("Status RECRUITING not verified since 2023-11 (over 2 years")
    assert kinds(record, date(2025, 11, 30)) == [], "2023-11 reads as 2023-11-30: two years to the day is not over"
    assert kinds(study("NCT00763412")) == [], "a completed trial is not verified by anyone: no alert"


def test_completion_passed_while_not_yet_recruiting_on_a_real_record() -> None:
    record = study("NCT05915728")  # NOT_YET_RECRUITING, completion 2024-11-01 (estimated)
    assert sorted(kinds(record)) == ["completion_passed", "status_unverified"]
    passed = next(e for e in conditions(record, TODAY) if e.kind == "completion_passed")
    assert passed.summary == "Completion date 2024-11-01 has passed but the status still says NOT_YET_RECRUITING"
    assert "completion_passed" not in kinds(record, date(2024, 11, 1))


def test_partial_dates_read_as_their_last_day() -> None:
    assert last_day("2023-11") == date(2023, 11, 30)
    assert last_day("2024-02") == date(2024, 2, 29)
    assert last_day("2024") == date(2024, 12, 31)
    assert last_day("soon") is None and last_day(None) is None


# -- new studies ------------------------------------------------------------------------------------


def test_new_matches_are_those_not_seen_each_once() -> None:
    a, b = study("NCT04728893"), study("NCT03418623")
    fresh = new_matches([a, b, a], {"NCT03418623"})
    assert [s["protocolSection"]["identificationModule"]["nctId"] for s in fresh] == ["NCT04728893"]


def test_the_new_trial_sentence_names_title_phase_sponsor_status_and_sites() -> None:
    facts = summary(study("NCT04728893"))
    assert sentence("cll", facts) == (
        "New trial matching cll: NCT04728893 — Efficacy and Safety of Nemtabrutinib (MK-1026) in Participants With "
        "Hematologic Malignancies (MK-1026-003), Phase 2, Merck Sharp & Dohme LLC, RECRUITING, 106 sites "
        "(Springdale, Arkansas, United States; Torrance, California, United States; Denver, Colorado, "
        "United States, …)"
    )


# -- configuration ----------------------------------------------------------------------------------


def load(text: str, channels: tuple[str, ...] = ("team",)) -> Any:
    return parse_watchlist(text, Path("watchlist.yaml"), list(channels))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


def test_searches_and_near_options_are_read() -> None:
    watchlist = load("""\
trials:
  - id: NCT04728893
    tags: [boston]
  - id: NCT03418623
    near: {place: Boston, km: 30, channels: [team]}
tags:
  boston: {near: {lat: 42.36, lon: -71.06, km: 100}}
searches:
  - name: t1d
    query: {cond: type 1 diabetes, intr: CAR-T}
    filter: {overallStatus: [RECRUITING, NOT_YET_RECRUITING]}
    near: {lat: 42.36, lon: -71.06, km: 100}
    watch: true
    since: matching
""")
    first, second = watchlist.trials
    assert first.near == Near(km=100, lat=42.36, lon=-71.06)
    assert second.near == Near(km=30, place="Boston", channels=("team",))
    (search,) = watchlist.searches
    assert search.params() == {
        "query.cond": "type 1 diabetes",
        "query.intr": "CAR-T",
        "filter.overallStatus": "RECRUITING,NOT_YET_RECRUITING",
        "filter.geo": "distance(42.36,-71.06,100km)",
    }
    assert search.watch and search.since == "matching" and search.line == 9


def test_every_search_problem_is_reported_with_its_line() -> None:
    found = problems("""\
searches:
  - name: a
    query: {condition: x}
  - name: a
    query: {cond: x}
  - name: b
  - name: c
    query: {cond: x}
    filter: {geo: "near(1,2)"}
    channels: [nowhere]
    near: {place: Boston, km: 5}
    since: yesterday
""")
    assert found == [
        "watchlist.yaml:3: searches[0].query.condition: `query.condition` is not a ClinicalTrials.gov API "
        "parameter (expected one of: cond, term, locn, titles, intr, outc, spons, lead, id, patient)",
        "watchlist.yaml:4: searches[1].name: 'a' is used twice (first at line 2)",
        "watchlist.yaml:6: searches[2]: a search needs `query:` or `filter:` (else it matches every study)",
        "watchlist.yaml:9: searches[3].filter.geo: 'near(1,2)' is not distance(lat,lon,50km) (the spec's pattern)",
        "watchlist.yaml:10: searches[3].channels: unknown channel 'nowhere' (known: team)",
        "watchlist.yaml:12: searches[3].since: 'yesterday' is not one of posted, matching",
        "watchlist.yaml:11: searches[3].near.place: a search needs lat and lon: a place name is resolved from a "
        "trial's own sites",
    ]


def test_a_near_without_distance_or_point_is_an_error() -> None:
    assert problems("trials:\n  - id: NCT04728893\n    near: {lat: 42.36}\n") == [
        "watchlist.yaml:3: trials[0].near.km: missing: a distance in km greater than 0",
        "watchlist.yaml:3: trials[0].near: give both lat and lon, or a place name (a city among the trial's sites)",
    ]


def test_a_later_run_asks_only_for_studies_posted_since_and_keeps_its_own_advanced_filter() -> None:
    search = Search(name="s", query=(("cond", "asthma"),), filter=(("advanced", "AREA[Phase]PHASE3"),))
    params = search_params(search, date(2026, 9, 3))
    assert params["filter.advanced"] == "(AREA[Phase]PHASE3) AND AREA[StudyFirstPostDate]RANGE[2026-09-03,MAX]"
    assert params["pageSize"] == "1000" and params["countTotal"] == "true"
    assert "filter.advanced" not in search_params(Search(name="s", query=(("cond", "x"),), filter=()), None)
    matching = Search(name="s", query=(("cond", "x"),), filter=(), since="matching")
    assert (
        search_params(matching, date(2026, 9, 3))["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2026-09-03,MAX]"
    )

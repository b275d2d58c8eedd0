"""The fake API's search: `query.*`, `filter.overallStatus`, `filter.geo` and `filter.advanced` date
ranges on GET /studies (and their `postFilter.*` twins), hooked into `tests/support/fakeapi.py`'s `_list`.

Parameter names and value formats follow `ctg-oas-v2.yaml`: `filter.overallStatus` is a comma- or
pipe-separated list of the `Status` enum, `filter.geo` matches the spec's
`distance(lat,lon,N[km|mi])` pattern and keeps studies with a site `geoPoint` within N (by the
haversine formula), a bad value is a 400. Essie is SIMPLIFIED here, on purpose:

- a `query.*` value is split on ` OR ` into alternatives; an alternative matches when every one of
  its words (or "quoted phrases") occurs, case-insensitively, as a substring of the area's text;
  parentheses, AND, NOT, synonyms, stemming and relevance ranking are not modelled (results keep
  store order, as the unsorted API does);
- the areas are: cond → conditions and keywords; intr → interventions (names, other names,
  descriptions) and arms' intervention names; titles → brief/official title and acronym; outc →
  outcomes; spons → lead sponsor and collaborators; lead → lead sponsor; id → NCT ID, org study ID,
  secondary IDs, aliases; locn → site facility/city/state/country; term and patient → the whole record;
- `filter.advanced` accepts only `AREA[StudyFirstPostDate|LastUpdatePostDate]RANGE[from,to]` terms
  joined by AND (optionally in parentheses), `from`/`to` being a date or MIN/MAX; anything else is
  a 400 so a test cannot rely on what the fake does not do.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

QUERY_AREAS = ("cond", "term", "locn", "titles", "intr", "outc", "spons", "lead", "id", "patient")
FILTERS = ("overallStatus", "geo", "advanced")
PARAMS = frozenset(
    {f"query.{a}" for a in QUERY_AREAS} | {f"{p}.{f}" for p in ("filter", "postFilter") for f in FILTERS}
)
STATUSES = frozenset(
    {
        "ACTIVE_NOT_RECRUITING",
        "COMPLETED",
        "ENROLLING_BY_INVITATION",
        "NOT_YET_RECRUITING",
        "RECRUITING",
        "SUSPENDED",
        "TERMINATED",
        "WITHDRAWN",
        "AVAILABLE",
        "NO_LONGER_AVAILABLE",
        "TEMPORARILY_NOT_AVAILABLE",
        "APPROVED_FOR_MARKETING",
        "WITHHELD",
        "UNKNOWN",
    }
)
GEO = re.compile(r"^distance\((-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?),(\d+(?:\.\d+)?)(km|mi)?\)$")
RANGE = re.compile(r"^AREA\[(StudyFirstPostDate|LastUpdatePostDate)\]\s*RANGE\[\s*([^,\]]+?)\s*,\s*([^\]]+?)\s*\]$")
DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
DATE_PATHS = {"StudyFirstPostDate": "studyFirstPostDateStruct", "LastUpdatePostDate": "lastUpdatePostDateStruct"}
MILE_KM = 1.609344


class BadQuery(ValueError):
    """A 400: the message says which parameter and why, as the live service does."""


def _get(node: Any, *path: str) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _area_text(study: Mapping[str, Any], area: str) -> str:
    p = study.get("protocolSection") or {}
    parts: list[Any]
    if area == "cond":
        parts = [_get(p, "conditionsModule", "conditions"), _get(p, "conditionsModule", "keywords")]
    elif area == "intr":
        arms = _get(p, "armsInterventionsModule") or {}
        parts = [
            [{k: i.get(k) for k in ("name", "otherNames", "description")} for i in arms.get("interventions") or []],
            [g.get("interventionNames") for g in arms.get("armGroups") or []],
        ]
    elif area == "titles":
        parts = [_get(p, "identificationModule", k) for k in ("briefTitle", "officialTitle", "acronym")]
    elif area == "outc":
        parts = [_get(p, "outcomesModule")]
    elif area == "spons":
        parts = [
            _get(p, "sponsorCollaboratorsModule", "leadSponsor", "name"),
            [c.get("name") for c in _get(p, "sponsorCollaboratorsModule", "collaborators") or []],
        ]
    elif area == "lead":
        parts = [_get(p, "sponsorCollaboratorsModule", "leadSponsor", "name")]
    elif area == "id":
        ident = _get(p, "identificationModule") or {}
        parts = [
            ident.get("nctId"),
            ident.get("nctIdAliases"),
            _get(ident, "orgStudyIdInfo", "id"),
            [s.get("id") for s in ident.get("secondaryIdInfos") or []],
        ]
    elif area == "locn":
        parts = [
            [
                {k: loc.get(k) for k in ("facility", "city", "state", "country")}
                for loc in _get(p, "contactsLocationsModule", "locations") or []
            ]
        ]
    else:  # term, patient: the whole record
        return json.dumps(study, ensure_ascii=False).lower()
    return " ".join(_texts(parts)).lower()


def _alternatives(expression: str) -> list[list[str]]:
    """`a b OR "c d"` → [["a", "b"], ["c d"]]: words of each alternative, lower-cased."""
    out = []
    for alternative in re.split(r"\s+OR\s+", expression.strip()):
        words = [m.group(1) or m.group(2) for m in re.finditer(r'"([^"]+)"|(\S+)', alternative)]
        if words:
            out.append([w.lower() for w in words])
    return out


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


@dataclass
class Search:
    """The parsed search parameters of one request; `matches(study)` applies them all (AND)."""

    tests: list[Callable[[Mapping[str, Any]], bool]] = field(default_factory=list)

    def matches(self, study: Mapping[str, Any]) -> bool:
        return all(test(study) for test in self.tests)


def _query_test(area: str, expression: str) -> Callable[[Mapping[str, Any]], bool]:
    alternatives = _alternatives(expression)
    if not alternatives:
        raise BadQuery(f"Error parsing query in `query.{area}`: empty expression")

    def test(study: Mapping[str, Any]) -> bool:
        text = _area_text(study, area)
        return any(all(word in text for word in words) for words in alternatives)

    return test


def _status_test(name: str, raw: str) -> Callable[[Mapping[str, Any]], bool]:
    wanted = [s.strip() for s in re.split(r"[,|]", raw)]
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise BadQuery(
            f"Invalid value in parameter `{name}`: `{bad[0]}`. Allowed values for enum Status are: "
            + ", ".join(sorted(STATUSES))
        )
    return lambda study: _get(study, "protocolSection", "statusModule", "overallStatus") in wanted


def _geo_test(name: str, raw: str) -> Callable[[Mapping[str, Any]], bool]:
    match = GEO.match(raw)
    if not match:
        raise BadQuery(f"Parameter `{name}` has incorrect format: expected distance(latitude,longitude,distance)")
    lat, lon, dist = (float(match.group(i)) for i in (1, 2, 3))
    km = dist * MILE_KM if match.group(4) == "mi" else dist

    def test(study: Mapping[str, Any]) -> bool:
        for loc in _get(study, "protocolSection", "contactsLocationsModule", "locations") or []:
            point = loc.get("geoPoint") or {}
            if (
                isinstance(point.get("lat"), int | float)
                and isinstance(point.get("lon"), int | float)
                and haversine_km(lat, lon, point["lat"], point["lon"]) <= km
            ):
                return True
        return False

    return test


def _advanced_test(name: str, raw: str) -> Callable[[Mapping[str, Any]], bool]:
    ranges = []
    for raw_term in re.split(r"\s+AND\s+", raw.strip()):
        term = raw_term.strip()
        while term.startswith("(") and term.endswith(")"):
            term = term[1:-1].strip()
        match = RANGE.match(term)
        if not match:
            raise BadQuery(
                f"Error parsing query in `{name}`: the fake knows only "
                "AREA[StudyFirstPostDate|LastUpdatePostDate]RANGE[from,to] joined by AND"
            )
        area, low, high = match.groups()
        for bound in (low, high):
            if bound not in {"MIN", "MAX"} and not DATE.match(bound):
                raise BadQuery(f"Error parsing query in `{name}`: bad date `{bound}`")
        ranges.append((DATE_PATHS[area], low, high))

    def test(study: Mapping[str, Any]) -> bool:
        for key, low, high in ranges:
            date = str(_get(study, "protocolSection", "statusModule", key, "date") or "")
            if not date or (low != "MIN" and date < low) or (high != "MAX" and date[: len(high)] > high):
                return False
        return True

    return test


def parse(params: Mapping[str, str]) -> Search:
    """The search of a GET /studies request; raises BadQuery (a 400) for a malformed value."""
    search = Search()
    for area in QUERY_AREAS:
        if f"query.{area}" in params:
            search.tests.append(_query_test(area, params[f"query.{area}"]))
    for prefix in ("filter", "postFilter"):
        for name, build in (("overallStatus", _status_test), ("geo", _geo_test), ("advanced", _advanced_test)):
            key = f"{prefix}.{name}"
            if key in params:
                search.tests.append(build(key, params[key]))
    return search

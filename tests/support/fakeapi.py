"""A fake ClinicalTrials.gov API v2 over real HTTP, faithful to the official spec (`ctg-oas-v2.yaml`).

It serves real study records (or synthetic copies of them under new NCT IDs), changes them between
cycles, keeps a log of every request and injects the faults the client must survive. It runs in a
daemon thread of the test process, or as a separate process for benchmarks and service tests:

    python -m tests.support.fakeapi --port 8899                       # the 17 real records
    python -m tests.support.fakeapi --port 8899 --studies DIR         # every *.json in DIR
    python -m tests.support.fakeapi --port 8899 --synthetic 10000

The real records and the spec are found by `tests/support/shared.py` (not kept in the repo).

Behaviour taken from the spec (and what public clients of the live service report, cited where used):
- `GET /studies/{nctId}`: the study object itself; 301 to the canonical study for an alias;
  404 and 400 (malformed ID) as text/plain, worded as the live service words them
  (``NCT number NCT99999999 not found``, ``Parameter `nctId` has incorrect format``).
- `GET /studies`: `filter.ids` (comma or pipe; matches NCTId and NCTIdAlias), `query.*`,
  `filter.overallStatus`, `filter.geo` and `filter.advanced` date ranges (simplified Essie:
  `tests/support/fake_search.py`), `fields`, `pageSize` (default 10, 0 = default, above
  1000 coerced to 1000), `pageToken`/`nextPageToken` (later pages must repeat the parameters; like
  the live service, an exactly full page carries a token even when nothing is left, whose page is empty;
  `full_page_tokens=False` turns that off),
  `countTotal` (first page only). Unknown IDs are simply absent. Results are unsorted (store order).
- `GET /version`: `{"apiVersion": "2.0.5", "dataTimestamp": "yyyy-MM-ddTHH:mm:ss"}`.
- Anything else, unknown parameters and bad values: 400 text/plain.
- `check_user_agent=True` (`--check-user-agent`): like the live edge, 403 to a User-Agent that names no
  HTTP library (the edge compares it with the TLS client: a live probe published in 2026-08).

Data refreshes are modelled the way ClinicalTrials.gov publishes them, once a day: the first change
after `/version` was last served opens a new refresh (dataTimestamp moves one day on) and every change
until the next `/version` lands in that refresh, its lastUpdatePostDate being the refresh's date.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support import fake_search, shared
from tests.support.synthetic import MIXES, LazyStudies, synthetic_studies

API_VERSION = "2.0.5"
DEFAULT_DATA_TIMESTAMP = "2026-09-04T09:00:06"
NCT_PATTERN = re.compile(r"^[Nn][Cc][Tt]0*([1-9]\d{0,7})$")
FIELD_ITEM = re.compile(r"^[a-zA-Z][a-zA-Z0-9\-. ]*$")
ADVANCED = re.compile(r"^\s*AREA\[LastUpdatePostDate\]\s*RANGE\[\s*([^,\]]+?)\s*,\s*([^\]]+?)\s*\]\s*$")
DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
HTTP_LIBRARY = re.compile(r"python-httpx|python-requests|python-urllib|aiohttp|curl|okhttp", re.IGNORECASE)
FORBIDDEN_PAGE = "<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1></body></html>\n"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10

# Piece names (as `fields` and AREA[] know them) → JSON path. A branch brings its whole subtree.
PIECES: Mapping[str, tuple[str, ...]] = {
    "NCTId": ("protocolSection", "identificationModule", "nctId"),
    "NCTIdAlias": ("protocolSection", "identificationModule", "nctIdAliases"),
    "BriefTitle": ("protocolSection", "identificationModule", "briefTitle"),
    "OfficialTitle": ("protocolSection", "identificationModule", "officialTitle"),
    "Acronym": ("protocolSection", "identificationModule", "acronym"),
    "OverallStatus": ("protocolSection", "statusModule", "overallStatus"),
    "StartDate": ("protocolSection", "statusModule", "startDateStruct", "date"),
    "PrimaryCompletionDate": ("protocolSection", "statusModule", "primaryCompletionDateStruct", "date"),
    "CompletionDate": ("protocolSection", "statusModule", "completionDateStruct", "date"),
    "LastUpdatePostDate": ("protocolSection", "statusModule", "lastUpdatePostDateStruct", "date"),
    "LastUpdateSubmitDate": ("protocolSection", "statusModule", "lastUpdateSubmitDate"),
    "LeadSponsorName": ("protocolSection", "sponsorCollaboratorsModule", "leadSponsor", "name"),
    "BriefSummary": ("protocolSection", "descriptionModule", "briefSummary"),
    "Condition": ("protocolSection", "conditionsModule", "conditions"),
    "StudyType": ("protocolSection", "designModule", "studyType"),
    "Phase": ("protocolSection", "designModule", "phases"),
    "EnrollmentCount": ("protocolSection", "designModule", "enrollmentInfo", "count"),
    "EligibilityCriteria": ("protocolSection", "eligibilityModule", "eligibilityCriteria"),
    "HasResults": ("hasResults",),
    "ProtocolSection": ("protocolSection",),
    "ResultsSection": ("resultsSection",),
    "DerivedSection": ("derivedSection",),
    "IdentificationModule": ("protocolSection", "identificationModule"),
    "StatusModule": ("protocolSection", "statusModule"),
    "SponsorCollaboratorsModule": ("protocolSection", "sponsorCollaboratorsModule"),
    "DescriptionModule": ("protocolSection", "descriptionModule"),
    "ConditionsModule": ("protocolSection", "conditionsModule"),
    "DesignModule": ("protocolSection", "designModule"),
    "ArmsInterventionsModule": ("protocolSection", "armsInterventionsModule"),
    "EligibilityModule": ("protocolSection", "eligibilityModule"),
    "ContactsLocationsModule": ("protocolSection", "contactsLocationsModule"),
}
STUDIES_PARAMS = (
    frozenset(
        {
            "format",
            "markupFormat",
            "filter.ids",
            "postFilter.ids",
            "filter.advanced",
            "postFilter.advanced",
            "fields",
            "pageSize",
            "pageToken",
            "countTotal",
        }
    )
    | fake_search.PARAMS
)  # query.*, filter.overallStatus/geo/advanced: tests/support/fake_search.py
STUDY_PARAMS = frozenset({"format", "markupFormat", "fields"})
# in the spec, but not implemented here: a test asking for one learns so instead of being ignored
UNIMPLEMENTED = (
    frozenset(
        {
            "query.cond",
            "query.term",
            "query.locn",
            "query.titles",
            "query.intr",
            "query.outc",
            "query.spons",
            "query.lead",
            "query.id",
            "query.patient",
            "filter.overallStatus",
            "filter.geo",
            "filter.synonyms",
            "postFilter.overallStatus",
            "postFilter.geo",
            "postFilter.synonyms",
            "aggFilters",
            "geoDecay",
            "sort",
        }
    )
    - fake_search.PARAMS
)
FAULT_KINDS = frozenset(
    {
        "403",
        "500",
        "503",
        "429",
        "timeout",
        "reset",
        "truncated",
        "html",
        "wrong_id",
        "no_protocol",
        "drop_ids",
        "partial",
    }
)
RECORD_FAULTS = frozenset({"wrong_id", "no_protocol", "drop_ids", "partial"})
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>ClinicalTrials.gov</title></head>"
    "<body><h1>Service temporarily unavailable</h1><p>Please try again later.</p></body></html>\n"
)


class BadRequest(Exception):
    """A 400 with the given text/plain message."""


def canonical_id(raw: str) -> str | None:
    """`nct123` and `NCT00000123` name the same study; None when the spec pattern rejects it."""
    match = NCT_PATTERN.match(raw)
    return f"NCT{int(match.group(1)):08d}" if match else None


# a real record by NCT ID (kept under this name: many tests import it from here)
load_fixture = shared.load_study


def load_fixtures(directory: Path | None = None) -> list[dict[str, Any]]:
    """The 17 real records (`shared.STUDY_IDS`), or every `*.json` in `directory`."""
    if directory is None:
        return shared.load_studies()
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]


def _nct_of(study: Mapping[str, Any]) -> str:
    nct: str = study["protocolSection"]["identificationModule"]["nctId"]
    return nct


def _aliases_of(study: Mapping[str, Any]) -> list[str]:
    ident = study.get("protocolSection", {}).get("identificationModule", {})
    return [a for a in (canonical_id(x) for x in ident.get("nctIdAliases", [])) if a]


def _last_update(study: Mapping[str, Any]) -> str:
    struct = study["protocolSection"]["statusModule"].get("lastUpdatePostDateStruct") or {}
    date: str = struct.get("date", "")
    return date


def _pick(study: Mapping[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    """The study limited to `paths`, nested like the real API (see the shared `fields_limited` captures)."""
    out: dict[str, Any] = {}
    for path in paths:
        node: Any = study
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            target = out
            for key in path[:-1]:
                target = target.setdefault(key, {})
            target[path[-1]] = node
    return out


def _field_paths(raw: str) -> list[tuple[str, ...]]:
    items = [s.strip() for s in re.split(r"[,|]", raw)]
    if not raw or not all(items):
        raise BadRequest("Parameter `fields` must be a non-empty list of field names")
    paths = []
    for item in items:
        if not FIELD_ITEM.match(item):
            raise BadRequest(f"Parameter `fields` has incorrect format: '{item}'")
        if item in PIECES:
            paths.append(PIECES[item])
        elif "." in item and item.split(".")[0] in {
            "protocolSection",
            "resultsSection",
            "derivedSection",
            "documentSection",
            "annotationSection",
            "hasResults",
        }:
            paths.append(tuple(item.split(".")))
        else:
            raise BadRequest(f"Parameter `fields` contains invalid field name: '{item}'")
    return paths


@dataclass
class Fault:
    kind: str
    path_contains: str | None
    times: int
    retry_after: str | None = None
    delay: float = 2.0
    ids: frozenset[str] = frozenset()
    wrong_id: str = "NCT99999999"

    def matches(self, target: str) -> bool:
        if self.kind in RECORD_FAULTS and not target.startswith("/api/v2/studies"):
            return False  # a record fault waits for a request that returns records
        return self.times > 0 and (self.path_contains is None or self.path_contains in target)


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


# -- record history: the website's undocumented /api/int endpoints (as cthist reads them) -------------
# Storage's block. Every `put`/`update` of a study records a version (0-based, as the site numbers
# them); `GET /api/int/studies/{nct}?history=true` answers the current study with the index of
# versions, `GET /api/int/studies/{nct}/history/{version}` one version's full record.

_MODULE_LABELS: Mapping[str, str] = {
    "statusModule": "Study Status",
    "identificationModule": "Study Identification",
    "conditionsModule": "Conditions",
    "designModule": "Study Design",
    "armsInterventionsModule": "Arms and Interventions",
    "contactsLocationsModule": "Contacts/Locations",
    "descriptionModule": "Study Description",
    "outcomesModule": "Outcome Measures",
    "eligibilityModule": "Eligibility",
    "oversightModule": "Oversight",
    "sponsorCollaboratorsModule": "Sponsor/Collaborators",
    "referencesModule": "References",
    "ipdSharingStatementModule": "IPD Sharing Statement",
}


def _module_labels(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    if old is None:
        return []
    before, after = old.get("protocolSection", {}), new.get("protocolSection", {})
    labels = [label for module, label in _MODULE_LABELS.items() if before.get(module) != after.get(module)]
    if old.get("resultsSection") != new.get("resultsSection"):
        labels.append("Study Results")
    return labels


def _history_entry(number: int, study: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    status = study["protocolSection"]["statusModule"]
    date = status.get("lastUpdateSubmitDate") or _last_update(study)
    return {
        "version": number,
        "date": date,
        "status": status.get("overallStatus"),
        "studyType": study["protocolSection"].get("designModule", {}).get("studyType"),
        "moduleLabels": _module_labels(previous, study),
        "lastUpdateSubmitQcDate": date,
    }


class RecordHistory:
    """Mixed into FakeCtGov: the record-history endpoints over the versions `put`/`update` record.

    Like the live site, they give markup fields as HTML (`tests/support/fake_history.py`); `history_html = False`
    serves API v2's markdown instead, `history_line_breaks = False` the HTML of before 2025.
    """

    history_html: bool = True
    history_line_breaks: bool = True
    _lock: threading.RLock
    _studies: dict[str, dict[str, Any]]
    _aliases: dict[str, str]
    _history: dict[str, list[dict[str, Any]]]

    def _key(self, nct_id: str) -> str:
        raise NotImplementedError

    def _record_version(self, key: str) -> None:
        with self._lock:
            self._history.setdefault(key, []).append(self._studies[key])

    def history_versions(self, nct_id: str) -> list[dict[str, Any]]:
        """Every recorded version of a study, oldest (version 0) first (deep copies)."""
        with self._lock:
            return copy.deepcopy(self._history.get(self._key(nct_id), []))

    def _history_route(self, path: str, params: dict[str, str]) -> _Response:
        parts = path.removeprefix("/api/int/studies/").split("/")
        nct = canonical_id(parts[0]) if parts and parts[0] else None
        if nct is None:
            return _Response(404, b"Not Found", "text/plain")
        with self._lock:
            versions = self._history.get(self._aliases.get(nct, nct))
            if not versions:
                return _Response(404, f"Study {parts[0]} not found".encode(), "text/plain")
            if len(parts) == 1:
                if params != {"history": "true"}:
                    raise BadRequest("the fake serves /api/int/studies/{nct} only with ?history=true")
                changes = [_history_entry(i, v, versions[i - 1] if i else None) for i, v in enumerate(versions)]
                return _json(
                    {
                        "study": self._as_served(versions[-1]),
                        "topics": {},
                        "history": {
                            "changes": changes,
                            "originalData": {},
                            "lastUpdateVersions": {},
                            "outcomesUpdateCount": 0,
                        },
                    }
                )
            if len(parts) == 3 and parts[1] == "history" and parts[2].isdigit() and not params:
                number = int(parts[2])
                if number >= len(versions):
                    return _Response(404, f"Version {number} not found".encode(), "text/plain")
                return _json({"studyVersion": number, "study": self._as_served(versions[number])})
        return _Response(404, b"Not Found", "text/plain")

    def _as_served(self, study: dict[str, Any]) -> dict[str, Any]:
        from tests.support.fake_history import as_history

        return as_history(study, line_breaks=self.history_line_breaks) if self.history_html else study


class FakeCtGov(RecordHistory):
    """ClinicalTrials.gov API v2 on 127.0.0.1 for tests and benchmarks."""

    def __init__(
        self,
        studies: Iterable[Mapping[str, Any]] = (),
        *,
        data_timestamp: str = DEFAULT_DATA_TIMESTAMP,
        host: str = "127.0.0.1",
        port: int = 0,
        check_user_agent: bool = False,
        full_page_tokens: bool = True,
    ) -> None:
        self._lock = threading.RLock()
        # the live edge answers 403 to an httpx client whose User-Agent does not name an HTTP library
        self.check_user_agent = check_user_agent
        # the live service sends a nextPageToken with every exactly full page, even the last one
        self.full_page_tokens = full_page_tokens
        self._studies: dict[str, dict[str, Any]] = {}
        self._aliases: dict[str, str] = {}
        self._data_timestamp = data_timestamp
        self._published = True  # the current refresh has been seen through /version
        self._faults: list[Fault] = []
        # (time.time(), kind, the IDs it was set for) of each request a fault answered
        self.faults_met: list[tuple[float, str, tuple[str, ...]]] = []
        self._nested: dict[str, int] = {}  # NCT ID → levels of nesting added to its served JSON
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.headers: list[dict[str, str]] = []  # request headers, parallel to `requests`
        self._history: dict[str, list[dict[str, Any]]] = {}  # record history (storage block below)
        self._generation = 0  # moves on every change: the matches of a listing query are kept until then
        self._matches: tuple[tuple[str, int], list[str]] | None = None
        for study in studies:
            self.put(study)

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeCtGov:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server((self._host, self._port), handler)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-ctgov", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeCtGov:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._port}/api/v2"

    # data ------------------------------------------------------------------------------------

    @property
    def data_timestamp(self) -> str:
        return self._data_timestamp

    def set_data_timestamp(self, value: str) -> None:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")  # the API's naive UTC format
        with self._lock:
            self._data_timestamp = value
            self._published = False

    def new_refresh(self) -> str:
        """Publish a new daily refresh (dataTimestamp one day on) and return its timestamp."""
        with self._lock:
            stamp = datetime.strptime(self._data_timestamp, "%Y-%m-%dT%H:%M:%S")
            self._data_timestamp = (stamp + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
            self._published = False
            return self._data_timestamp

    def _refresh_for_change(self) -> str:
        if self._published:
            self.new_refresh()
        return self._data_timestamp[:10]

    def put(self, study: Mapping[str, Any]) -> None:
        """Add or replace a study as given (no date bump)."""
        nct = canonical_id(_nct_of(study))
        if nct is None:
            raise ValueError(f"not an NCT ID: {_nct_of(study)!r}")
        with self._lock:
            self._store(nct, dict(study))

    def get(self, nct_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._studies[self._key(nct_id)])

    def last_updates(self) -> dict[str, str]:
        """NCT ID → lastUpdatePostDate of every study, without copying records."""
        with self._lock:
            return {k: _last_update(s) for k, s in self._studies.items()}

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._studies)

    def update(self, nct_id: str, fn: Callable[[dict[str, Any]], Any], *, bump: bool = True) -> dict[str, Any]:
        """Change a study through `fn` (which mutates a deep copy), as a sponsor's edit would.

        With `bump`, lastUpdatePostDate becomes the date of the refresh that publishes the change.
        Either way the data timestamp moves (a new refresh is opened if needed).
        """
        with self._lock:
            key = self._key(nct_id)
            study = json.loads(json.dumps(self._studies[key]))  # a deep copy, faster for JSON data
            result = fn(study)
            if isinstance(result, dict):
                study = result
            day = self._refresh_for_change()
            if bump:
                status = study["protocolSection"]["statusModule"]
                status["lastUpdatePostDateStruct"] = {"date": day, "type": "ACTUAL"}
                status["lastUpdateSubmitDate"] = day
            self._store(key, study)
            return json.loads(json.dumps(study))

    def touch(self, ids: Iterable[str]) -> str:
        """Edits that change only lastUpdatePostDate: cheap enough for thousands (benchmarks, churn)."""
        with self._lock:
            day = self._refresh_for_change()
            for nct_id in ids:
                key = self._key(nct_id)
                study = self._studies[key]
                protocol = study["protocolSection"]
                status = dict(
                    protocol["statusModule"],
                    lastUpdateSubmitDate=day,
                    lastUpdatePostDateStruct={"date": day, "type": "ACTUAL"},
                )
                self._store(key, dict(study, protocolSection=dict(protocol, statusModule=status)))
            return day

    def remove(self, nct_id: str) -> None:
        with self._lock:
            key = self._key(nct_id)
            self._drop(key)
            self._aliases = {a: c for a, c in self._aliases.items() if c != key}
            self._refresh_for_change()

    def alias(self, old_id: str, new_id: str, *, bump: bool = True) -> None:
        """`old_id` is now listed as `new_id`: a duplicate merged into `new_id`, or a renumbered study.

        If `new_id` exists, `old_id`'s record (if any) goes and `new_id` lists it in nctIdAliases;
        otherwise `old_id`'s record moves to `new_id`.
        """
        old, new = canonical_id(old_id), canonical_id(new_id)
        if old is None or new is None:
            raise ValueError(f"not NCT IDs: {old_id!r}, {new_id!r}")
        with self._lock:
            if new in self._studies:
                if old in self._studies:
                    self._drop(old)
            else:
                self._store(new, self._drop(old))

            def relabel(study: dict[str, Any]) -> None:
                ident = study["protocolSection"]["identificationModule"]
                ident["nctId"] = new
                ident["nctIdAliases"] = [*ident.get("nctIdAliases", []), old]

            for alias, target in list(self._aliases.items()):
                if target == old:
                    self._aliases[alias] = new
            self._aliases[old] = new
            self.update(new, relabel, bump=bump)

    def _store(self, key: str, study: dict[str, Any]) -> None:
        self._generation += 1
        self._studies[key] = study
        self._record_version(key)
        for alias in _aliases_of(study):
            self._aliases[alias] = key

    def _drop(self, key: str) -> dict[str, Any]:
        self._generation += 1
        return self._studies.pop(key)

    def nest(self, nct_id: str, levels: int) -> None:
        """Serve the study with a key `nested` holding `levels` objects one inside the other (a hostile
        record Python's own JSON encoder could not write), as the API would serve any odd value."""
        with self._lock:
            key = self._key(nct_id)
            self._nested[key] = levels
            self._refresh_for_change()

    def _encode(self, key: str) -> bytes:
        """A study's JSON. Not cached: a benchmark's pollers should pay the same server cost."""
        body = json.dumps(self._studies[key], ensure_ascii=False).encode()
        levels = self._nested.get(key)
        if levels:
            body = body[:-1] + b', "nested": ' + b'{"n": ' * levels + b"1" + b"}" * levels + b"}"
        return body

    def _key(self, nct_id: str) -> str:
        key = canonical_id(nct_id)
        if key is None or key not in self._studies:
            raise KeyError(nct_id)
        return key

    # faults and the request log ------------------------------------------------------------

    def fail(
        self,
        kind: str | int,
        *,
        path_contains: str | None = None,
        times: int = 1,
        retry_after: str | float | None = None,
        delay: float = 2.0,
        ids: Iterable[str] = (),
        wrong_id: str = "NCT99999999",
    ) -> None:
        """Make the next `times` matching requests fail in the way `kind` names.

        Kinds: 403 (the edge's refusal page), 500, 503 (optional `retry_after`), 429 (`retry_after`,
        default "1"), "timeout" (answer after `delay` seconds), "reset" (TCP RST, no answer),
        "truncated" (JSON cut in half, complete HTTP), "html" (an HTML page with status 200), "wrong_id"
        (the study, or in a page those in `ids` or else the first, carries `wrong_id`), "no_protocol"
        (likewise, no protocolSection), "partial" (likewise, no locations module and no hasResults),
        "drop_ids" (`ids` left out of pages).
        `path_contains` is matched against the request target (path and raw query).
        """
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        if kind == "429" and retry_after is None:
            retry_after = "1"
        with self._lock:
            self._faults.append(
                Fault(
                    kind,
                    path_contains,
                    times,
                    retry_after=None if retry_after is None else str(retry_after),
                    delay=delay,
                    ids=frozenset(filter(None, map(canonical_id, ids))),
                    wrong_id=wrong_id,
                )
            )

    def faults_pending(self, *, records: bool = False) -> int:
        """Requests still to meet a fault set with `fail` (record faults, which wait for their trial,
        counted only with `records`)."""
        with self._lock:
            return sum(f.times for f in self._faults if f.times > 0 and (records or f.kind not in RECORD_FAULTS))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()

    def requests_to(self, path_contains: str) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.requests if path_contains in r[1]]

    def _take_fault(self, target: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(target):
                    fault.times -= 1
                    self.faults_met.append((time.time(), fault.kind, tuple(sorted(fault.ids))))
                    return fault
            return None

    def control(self, path: str, body: Mapping[str, Any]) -> Any:
        """Out-of-band control for a fake in another process: `POST /_fake/<command>` with JSON.

        touch {"ids": [...]}                     edits that change only the last-update date
        update {"id": ..., "set": {"protocolSection.statusModule.overallStatus": "COMPLETED"},
                "bump": true}                    a sponsor's edit (dotted paths; list items by index)
        put {"study": {...}} · remove {"id": ...} · alias {"old": ..., "new": ...}
        refresh {} · fail {"kind": ..., ...} (as `fail`) · requests {"reset": bool} → {"count": n}
        """
        command = path.removeprefix("/_fake/")
        handlers: dict[str, Callable[[], Any]] = {
            "touch": lambda: self.touch(body["ids"]),
            "update": lambda: self.update(
                body["id"], lambda study: _set_paths(study, body.get("set", {})), bump=body.get("bump", True)
            ),
            "put": lambda: self.put(body["study"]),
            "remove": lambda: self.remove(body["id"]),
            "alias": lambda: self.alias(body["old"], body["new"], bump=body.get("bump", True)),
            "refresh": self.new_refresh,
            "fail": lambda: self.fail(**body),
            "requests": lambda: self._count_requests(reset=bool(body.get("reset"))),
        }
        if command not in handlers:
            raise KeyError(f"unknown command {command!r}")
        result = handlers[command]()
        return result if command == "requests" else {"dataTimestamp": self._data_timestamp}

    def _count_requests(self, *, reset: bool) -> dict[str, int]:
        with self._lock:
            count = len(self.requests)
            if reset:
                self.requests.clear()
                self.headers.clear()
            return {"count": count}

    # the API ---------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str] | None = None) -> _Response | Fault:
        split = urlsplit(target)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        params = dict(pairs)
        with self._lock:
            self.requests.append((method, split.path, params))
            self.headers.append(dict(headers or {}))
        if self.check_user_agent and not split.path.startswith("/_fake/"):
            agent = {k.lower(): v for k, v in (headers or {}).items()}.get("user-agent", "")
            if not HTTP_LIBRARY.search(agent):
                return _Response(403, FORBIDDEN_PAGE.encode(), "text/html")
        fault = self._take_fault(target)
        if fault is not None and fault.kind == "reset":
            return fault
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.delay)  # the client has given up by now; answer anyway, late
            fault = None
        if fault is not None and fault.kind in {"403", "500", "503", "429", "html"}:
            return _fault_response(fault)
        try:
            response = self._route(method, split.path, params, fault, repeated=len(params) != len(pairs))
        except BadRequest as exc:
            response = _Response(400, str(exc).encode(), "text/plain")
        if fault is not None and fault.kind == "truncated" and response.status == 200:
            response.body = response.body[: max(1, len(response.body) // 2)]
        return response

    def _route(
        self, method: str, path: str, params: dict[str, str], fault: Fault | None, *, repeated: bool
    ) -> _Response:
        if repeated:
            raise BadRequest("Parameters must not repeat")
        if method != "GET":
            raise BadRequest(f"Method {method} is not supported")
        if path.startswith("/api/int/"):
            return self._history_route(path, params)
        prefix = "/api/v2"
        if not path.startswith(prefix + "/"):
            return _Response(404, b"Not Found", "text/plain")
        path = path[len(prefix) :]
        if path == "/version":
            if params:
                raise BadRequest(f"Unknown parameter `{next(iter(params))}`")
            with self._lock:
                self._published = True
                body = {"apiVersion": API_VERSION, "dataTimestamp": self._data_timestamp}
            return _json(body)
        if path == "/studies":
            return self._list(params, fault)
        if path.startswith("/studies/") and path.count("/") == 2:
            return self._one(path.rsplit("/", 1)[1], params, fault)
        return _Response(404, b"Not Found", "text/plain")

    def _one(self, raw_id: str, params: dict[str, str], fault: Fault | None) -> _Response:
        _check_params(params, STUDY_PARAMS)
        _check_format(params, {"json"})
        nct = canonical_id(raw_id)
        if nct is None:
            raise BadRequest("Parameter `nctId` has incorrect format")  # the live wording (dev.to, 2026-10-14)
        paths = _field_paths(params["fields"]) if "fields" in params else None
        with self._lock:
            study = self._studies.get(nct)
            if study is None and nct in self._aliases:
                query = "&".join(f"{k}={v}" for k, v in params.items())
                location = f"/api/v2/studies/{self._aliases[nct]}" + (f"?{query}" if query else "")
                return _Response(301, b"", "text/plain", {"Location": location})
            if study is None:
                return _Response(404, f"NCT number {raw_id} not found".encode(), "text/plain")
            if paths is None and (fault is None or fault.kind not in {"wrong_id", "no_protocol", "partial"}):
                return _Response(200, self._encode(nct))
            study = _faulty(study, fault)
            return _json(_pick(study, paths) if paths else study)

    def _list(self, params: dict[str, str], fault: Fault | None) -> _Response:
        _check_params(params, STUDIES_PARAMS)
        _check_format(params, {"json"})
        try:
            search = fake_search.parse(params)
        except fake_search.BadQuery as exc:
            raise BadRequest(str(exc)) from exc
        wanted, ranges = _filters({k: v for k, v in params.items() if k not in fake_search.PARAMS})
        paths = _field_paths(params["fields"]) if "fields" in params else None
        size = _int_param(params, "pageSize", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
        size = min(size, MAX_PAGE_SIZE)
        count_total = _bool_param(params, "countTotal")
        query_key = _query_key(params)
        offset = _decode_token(params["pageToken"], query_key) if "pageToken" in params else 0

        with self._lock:
            if wanted is None:
                candidates: Iterable[str] = self._studies
            else:
                # keep store order (the API is unsorted); aliases resolve to their study
                keys = wanted | {self._aliases[i] for i in wanted if i in self._aliases}
                candidates = [k for k in self._studies if k in keys]
            if self._matches is not None and self._matches[0] == (query_key, self._generation):
                matches = self._matches[1]  # a later page of the same query over the same data
            else:
                matches = [
                    k
                    for k in candidates
                    if all(_in_range(_last_update(self._studies[k]), lo, hi) for lo, hi in ranges)
                    and search.matches(self._studies[k])
                ]
                self._matches = ((query_key, self._generation), matches)
            dropped = fault.ids if fault is not None and fault.kind == "drop_ids" else frozenset()
            page = [k for k in matches[offset : offset + size] if k not in dropped]
            parts: list[bytes] = []
            for number, key in enumerate(page):
                study = self._studies[key]
                if (
                    fault is not None
                    and fault.kind in {"wrong_id", "no_protocol", "partial"}
                    and (key in fault.ids or (not fault.ids and number == 0))
                ):
                    study = _faulty(study, fault)
                elif paths is None:
                    parts.append(self._encode(key))
                    continue
                parts.append(json.dumps(_pick(study, paths) if paths else study, ensure_ascii=False).encode())
            tail: dict[str, Any] = {}
            if count_total and "pageToken" not in params:
                tail["totalCount"] = len(matches)
            more = offset + size < len(matches)
            if more or (self.full_page_tokens and len(matches[offset : offset + size]) == size):
                tail["nextPageToken"] = _encode_token(offset + size, query_key)
            extra = json.dumps(tail)[1:-1].encode()
            body = b'{"studies": [' + b", ".join(parts) + b"]" + (b", " + extra if extra else b"") + b"}"
            return _Response(200, body)


def _filters(params: Mapping[str, str]) -> tuple[set[str] | None, list[tuple[str, str]]]:
    """(IDs asked for by filter.ids, or None; LastUpdatePostDate ranges from filter.advanced)."""
    wanted: set[str] | None = None
    for key in ("filter.ids", "postFilter.ids"):
        if key in params:
            raw = [s.strip() for s in re.split(r"[,|]", params[key])]
            ids = {canonical_id(s) for s in raw}
            if not raw or None in ids:
                raise BadRequest(f"Parameter `{key}` has incorrect format")
            found = {i for i in ids if i}
            wanted = found if wanted is None else wanted & found
    ranges = []
    for key in ("filter.advanced", "postFilter.advanced"):
        if key in params:
            match = ADVANCED.match(params[key])
            if not match:
                raise BadRequest(
                    f"Error parsing query in `{key}`: the fake knows only AREA[LastUpdatePostDate]RANGE[from,to]"
                )
            low, high = match.groups()
            for bound in (low, high):
                if bound not in {"MIN", "MAX"} and not DATE.match(bound):
                    raise BadRequest(f"Error parsing query in `{key}`: bad date `{bound}`")
            ranges.append((low, high))
    return wanted, ranges


def _set_paths(study: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node: Any = study
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value


def _faulty(study: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
    if fault is None:
        return study
    if fault.kind == "no_protocol":
        return {k: v for k, v in study.items() if k != "protocolSection"}
    if fault.kind == "partial":  # valid, but cut: no locations module, no hasResults
        protocol = {k: v for k, v in study["protocolSection"].items() if k != "contactsLocationsModule"}
        return dict({k: v for k, v in study.items() if k != "hasResults"}, protocolSection=protocol)
    if fault.kind == "wrong_id":
        protocol = study["protocolSection"]
        ident = dict(protocol["identificationModule"], nctId=fault.wrong_id)
        return dict(study, protocolSection=dict(protocol, identificationModule=ident))
    return study


def _fault_response(fault: Fault) -> _Response:
    if fault.kind == "html":
        return _Response(200, HTML_PAGE.encode(), "text/html; charset=utf-8")
    if fault.kind == "403":
        return _Response(403, FORBIDDEN_PAGE.encode(), "text/html")
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    text = {"500": "Internal Server Error", "503": "Service Unavailable", "429": "Too Many Requests"}
    return _Response(int(fault.kind), text[fault.kind].encode(), "text/plain", headers)


def _json(body: Any) -> _Response:
    return _Response(200, json.dumps(body, ensure_ascii=False).encode())


def _check_params(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown and unknown[0] in UNIMPLEMENTED:
        raise BadRequest(f"Parameter `{unknown[0]}` is in the spec; the fake does not implement it")
    if unknown:
        raise BadRequest(f"Unknown parameter `{unknown[0]}`")


def _check_format(params: Mapping[str, str], supported: set[str]) -> None:
    if params.get("format", "json") not in supported:
        raise BadRequest(f"Invalid value in parameter `format`: `{params['format']}` (fake serves json only)")
    if params.get("markupFormat", "markdown") != "markdown":
        raise BadRequest(f"Invalid value in parameter `markupFormat`: `{params['markupFormat']}`")


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    if name not in params:
        return default
    try:
        value = int(params[name])
    except ValueError:
        raise BadRequest(f"Invalid value in parameter `{name}`: `{params[name]}`") from None
    if value < 0:
        raise BadRequest(f"Invalid value in parameter `{name}`: `{params[name]}`")
    return value


def _bool_param(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name, "false").lower()
    if value not in {"true", "false"}:
        raise BadRequest(f"Invalid value in parameter `{name}`: `{params[name]}`")
    return value == "true"


def _in_range(date: str, low: str, high: str) -> bool:
    if not date:
        return False
    return (low == "MIN" or date >= low) and (high == "MAX" or date[: len(high)] <= high)


def _query_key(params: Mapping[str, str]) -> str:
    same = sorted((k, v) for k, v in params.items() if k not in {"countTotal", "pageSize", "pageToken"})
    return hashlib.sha256(json.dumps(same).encode()).hexdigest()[:12]


def _encode_token(offset: int, query_key: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{query_key}".encode()).decode().rstrip("=")


def _decode_token(token: str, query_key: str) -> int:
    try:
        offset, key = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
        number = int(offset)
    except ValueError:
        raise BadRequest(f"Invalid value in parameter `pageToken`: `{token}`") from None
    if key != query_key:  # later pages must repeat the first page's parameters
        raise BadRequest(f"Invalid value in parameter `pageToken`: `{token}`")
    return number


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or are reset on purpose are not errors worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    fake: FakeCtGov
    protocol_version = "HTTP/1.1"
    server_version = "FakeCtGov/1"
    _dead = False

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, delayed ACKs cost 40 ms a request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        outcome = self.fake.handle("GET", self.path, dict(self.headers.items()))
        if isinstance(outcome, Fault):  # reset: RST instead of FIN, no answer at all
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self._dead = True
            self.close_connection = True
            return
        self._send(outcome)

    def _send(self, outcome: _Response) -> None:
        self.send_response(outcome.status)
        self.send_header("Content-Type", outcome.content_type)
        self.send_header("Content-Length", str(len(outcome.body)))
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(outcome.body)

    def do_POST(self) -> None:
        """`/_fake/*` lets a benchmark or service test drive a fake running in another process."""
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            self._send(_json(self.fake.control(self.path, body)))
        except (KeyError, ValueError, TypeError) as exc:
            self._send(_Response(400, f"{type(exc).__name__}: {exc}".encode(), "text/plain"))

    def finish(self) -> None:
        if not self._dead:
            with contextlib.suppress(OSError):
                super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's request log is `FakeCtGov.requests`."""


@pytest.fixture
def fake_api() -> Iterator[FakeCtGov]:
    """The fake API holding the real fixture records, started for one test."""
    with FakeCtGov(load_fixtures()) as fake:
        yield fake


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fakeapi", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--studies", type=Path, help="directory of study JSON files (default: the 17 real records in the shared data)"
    )
    source.add_argument("--synthetic", type=int, metavar="N", help="N studies derived from the real records")
    parser.add_argument("--mix", choices=sorted(MIXES), default="fixtures", help="size mix of --synthetic")
    parser.add_argument(
        "--lazy", action="store_true", help="make --synthetic studies when asked for (a whole registry in a few MB)"
    )
    parser.add_argument("--data-timestamp", default=DEFAULT_DATA_TIMESTAMP)
    parser.add_argument(
        "--no-full-page-tokens",
        action="store_true",
        help="no nextPageToken on an exactly full last page (the live service sends one)",
    )
    parser.add_argument(
        "--check-user-agent",
        action="store_true",
        help="403 to User-Agents that name no HTTP library, as the live edge does",
    )
    args = parser.parse_args(argv)
    try:
        if args.synthetic:
            studies: Iterable[dict[str, Any]] = synthetic_studies(args.synthetic, mix=args.mix)
        else:
            studies = load_fixtures(args.studies)
        if args.synthetic and args.lazy:
            studies = ()
        fake = FakeCtGov(
            studies,
            data_timestamp=args.data_timestamp,
            host=args.host,
            port=args.port,
            check_user_agent=args.check_user_agent,
            full_page_tokens=not args.no_full_page_tokens,
        )
        if args.synthetic and args.lazy:
            fake._studies = LazyStudies(args.synthetic, mix=args.mix)  # type: ignore[assignment]
        fake.start()
    except shared.FixturesNotFound as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
    print(f"fake ClinicalTrials.gov API at {fake.base_url} with {len(fake.ids())} studies", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

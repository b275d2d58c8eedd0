"""`trialwatch doctor`: each assumption the poller makes about ClinicalTrials.gov, judged on its replies.

Pure: every check takes recorded replies (`Reply`: status, headers, body, the User-Agent sent) and
what was asked, and returns one `Check` (a name, ok or not, and the evidence in words). The requests
are made by `watcher.registry.doctor_run`; the CLI prints one line per check. Unit tests feed these
functions replies built from real records and the live service's published answers.

The assumptions, and where the poller relies on them:
- the edge accepts our User-Agent (it compares it with the TLS client: 403 otherwise);
- `/version` is `{"apiVersion", "dataTimestamp": "yyyy-MM-ddTHH:mm:ss"}` (the poll's gate);
- `filter.advanced=AREA[LastUpdatePostDate]RANGE[day,MAX]` answers studies posted since `day`, with
  `totalCount` (strategy (b));
- `filter.ids` takes a batch of 480 IDs with `fields=` and answers only the asked studies with only
  the asked fields (the probe);
- a page with more to come carries `nextPageToken`, and so does an exactly full last page, whose
  token leads to an empty page (the pagers stop before asking it);
- an alias answers 301 to its study on the same host (followed on purpose);
- an unknown NCT ID answers 404 (reported once, not retried);
- the record-history index and versions have the shape backfill parses strictly, and their markup
  fields are HTML that reads the same as API v2's markdown.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urljoin, urlsplit

from watcher.errors import InvalidResponse
from watcher.ids import is_nct_id, normalize_nct_id
from watcher.registry.markup import html_text, is_html, markdown_text, same_text
from watcher.registry.record_history import HistoryEntry, parse_index_and_study, parse_version
from watcher.registry.responses import Reply, parse_json

PROBE_PATHS: Mapping[str, str] = {
    "NCTId": "protocolSection.identificationModule.nctId",
    "NCTIdAlias": "protocolSection.identificationModule.nctIdAliases",
    "LastUpdatePostDate": "protocolSection.statusModule.lastUpdatePostDateStruct",
    "OverallStatus": "protocolSection.statusModule.overallStatus",
}
MARKUP_PATHS = (
    ("descriptionModule", "briefSummary"),
    ("descriptionModule", "detailedDescription"),
    ("eligibilityModule", "eligibilityCriteria"),
)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
_LIBRARY = re.compile(r"python-httpx/\S+")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    evidence: str


def _unusable(reply: Reply) -> str | None:
    """Why the poller could not use `reply` at all, in words; None for a 200."""
    if reply.status == 0:
        return f"no answer: {reply.body.decode('utf-8', 'replace')}"
    if reply.status == 403:
        return (
            "HTTP 403 Forbidden: the edge refused this client (it compares the User-Agent with the TLS client; "
            "or a proxy rewrote it, or this IP is blocked)"
        )
    if reply.status != 200:
        return f"HTTP {reply.status}: {_snippet(reply)}"
    return None


def _snippet(reply: Reply, size: int = 80) -> str:
    text = " ".join(reply.body.decode("utf-8", "replace").split())
    return repr(text[:size] + ("…" if len(text) > size else ""))


def _json(reply: Reply, where: str) -> tuple[Any, str | None]:
    problem = _unusable(reply)
    if problem is not None:
        return None, problem
    try:
        return parse_json(reply.body, where), None
    except InvalidResponse as exc:
        return None, str(exc)


def page_of(reply: Reply) -> tuple[dict[str, Any] | None, str | None]:
    doc, problem = _json(reply, "/studies")
    if problem is None and not (isinstance(doc, dict) and isinstance(doc.get("studies"), list)):
        problem = "not a page of studies (no `studies` list)"
    return (doc if problem is None else None), problem


def _leaves(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node:
        for number, value in enumerate(node):
            yield from _leaves(value, f"{prefix}.{number}")
    else:
        yield prefix


def nct_of(study: Any) -> str | None:
    ident = study.get("protocolSection", {}).get("identificationModule", {}) if isinstance(study, Mapping) else {}
    found = ident.get("nctId") if isinstance(ident, Mapping) else None
    return found if isinstance(found, str) else None


def data_day(reply: Reply) -> date | None:
    """The day of `/version`'s dataTimestamp, if the reply has one."""
    doc, problem = _json(reply, "/version")
    stamp = doc.get("dataTimestamp") if problem is None and isinstance(doc, dict) else None
    try:
        return date.fromisoformat(stamp[:10]) if isinstance(stamp, str) else None
    except ValueError:
        return None


def next_token(reply: Reply) -> str | None:
    page, _ = page_of(reply)
    token = page.get("nextPageToken") if page else None
    return token if isinstance(token, str) and token else None


def aliases_in(study: Any) -> list[str]:
    ident = study.get("protocolSection", {}).get("identificationModule", {}) if isinstance(study, Mapping) else {}
    found = ident.get("nctIdAliases") if isinstance(ident, Mapping) else None
    return [a for a in found if isinstance(a, str)] if isinstance(found, list) else []


def studies_in(reply: Reply) -> list[dict[str, Any]]:
    """The studies of a `/studies` page, or none when it is not one."""
    page, _ = page_of(reply)
    return [s for s in page["studies"] if isinstance(s, dict)] if page else []


def _extra_fields(studies: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[str]:
    allowed = tuple(PROBE_PATHS[f] for f in fields)
    return sorted({leaf for s in studies for leaf in _leaves(s) if not leaf.startswith(allowed)})


# -- the checks ----------------------------------------------------------------------------------


def check_user_agent(reply: Reply) -> Check:
    agent = reply.user_agent
    if not _LIBRARY.search(agent):
        return Check("user-agent", False, f"the User-Agent {agent!r} names no HTTP library: the edge answers 403")
    problem = _unusable(reply)
    if reply.status in {0, 403} and problem:
        return Check("user-agent", False, f"GET /version as {agent!r}: {problem}")
    return Check("user-agent", True, f"GET /version as {agent!r} → {reply.status} (not refused)")


def check_version(reply: Reply) -> Check:
    doc, problem = _json(reply, "/version")
    if problem is None and not isinstance(doc, dict):
        problem = "not a JSON object"
    if problem is None:
        api, stamp = doc.get("apiVersion"), doc.get("dataTimestamp")
        if not isinstance(api, str) or not isinstance(stamp, str) or not _TIMESTAMP.match(stamp):
            problem = f"apiVersion {api!r}, dataTimestamp {stamp!r}: expected a string and yyyy-MM-ddTHH:mm:ss"
        else:
            return Check("version", True, f"apiVersion {api}, dataTimestamp {stamp} (the poll's gate)")
    return Check("version", False, f"GET /version: {problem}")


def check_updated_since(reply: Reply, day: str) -> Check:
    name = "updated-since"
    page, problem = page_of(reply)
    if page is None:
        return Check(name, False, f"AREA[LastUpdatePostDate]RANGE[{day},MAX]: {problem}")
    studies, total, token = page["studies"], page.get("totalCount"), page.get("nextPageToken")
    dates = [
        s.get("protocolSection", {}).get("statusModule", {}).get("lastUpdatePostDateStruct", {}).get("date")
        if isinstance(s, dict)
        else None
        for s in studies
    ]
    early = [d for d in dates if not isinstance(d, str) or not _DAY.match(d) or d[:10] < day]
    extra = _extra_fields([s for s in studies if isinstance(s, dict)], list(PROBE_PATHS))
    if not isinstance(total, int):
        problem = f"no totalCount with countTotal=true (got {total!r}): strategy (b) cannot size itself"
    elif early:
        problem = f"{len(early)} of {len(studies)} studies dated before {day} or undated (e.g. {early[0]!r})"
    elif total > len(studies) and not token:
        problem = f"totalCount {total} but {len(studies)} studies and no nextPageToken: the rest cannot be reached"
    elif extra:
        problem = f"fields beyond those asked: {', '.join(extra[:3])}"
    if problem:
        return Check(name, False, f"AREA[LastUpdatePostDate]RANGE[{day},MAX]: {problem}")
    return Check(
        name,
        True,
        f"AREA[LastUpdatePostDate]RANGE[{day},MAX]: totalCount {total}, first page "
        f"{len(studies)} studies, all posted on or after {day}" + (", nextPageToken for the rest" if token else ""),
    )


def check_batch(reply: Reply, asked: Sequence[str], known: Collection[str], fields: Sequence[str]) -> Check:
    name = "filter.ids batch"
    where = f"{len(asked)} IDs in filter.ids ({len(reply.url):,}-byte URL)"
    page, problem = page_of(reply)
    if page is None:
        return Check(name, False, f"{where}: {problem}")
    studies = page["studies"]
    wanted = {normalize_nct_id(a) for a in asked}
    strangers = [
        nct_of(s)
        for s in studies
        if normalize_nct_id(nct_of(s) or "") not in wanted
        and not wanted.intersection(normalize_nct_id(a) for a in aliases_in(s) if is_nct_id(a))
    ]
    answered = {normalize_nct_id(n) for s in studies if (n := nct_of(s))}
    extra = _extra_fields(studies, fields)
    if strangers:
        problem = f"{len(strangers)} studies not asked for (e.g. {strangers[0]!r})"
    elif extra:
        problem = f"fields beyond {','.join(fields)}: {', '.join(extra[:3])}"
    elif known and not answered.intersection(normalize_nct_id(k) for k in known):
        problem = f"none of the {len(known)} studies known to exist came back"
    elif page.get("nextPageToken") and len(studies) < len(asked):
        problem = f"a nextPageToken on a page of {len(studies)} asked with pageSize ≥ {len(asked)}"
    if problem:
        return Check(name, False, f"{where}: {problem}")
    return Check(
        name, True, f"{where}, fields={','.join(fields)}: {len(studies)} studies, all among those asked, no other field"
    )


def check_paging(pages: Sequence[Reply], asked: Sequence[str]) -> Check:
    """`pages`: the replies to `filter.ids=<2 IDs>&pageSize=1`, token followed while one came."""
    name = "full-page token"
    seen: list[str] = []
    tokens: list[bool] = []
    for number, reply in enumerate(pages, 1):
        page, problem = page_of(reply)
        if page is None:
            return Check(name, False, f"page {number}: {problem}")
        seen.extend(n for s in page["studies"] if (n := nct_of(s)))
        tokens.append(bool(page.get("nextPageToken")))
    counts = [len(studies_in(r)) for r in pages]
    problem = None
    if len(asked) != 2 or counts[:1] != [1]:
        problem = f"could not test: {len(asked)} known studies, first page {counts[:1]}"
    elif not tokens[0]:
        problem = "page 1 of 2 studies asked with pageSize=1 carries no nextPageToken: the pagers would lose studies"
    elif len(seen) != 2 or len(set(seen)) != 2:
        problem = f"pages with pageSize=1 for 2 IDs gave {seen}: expected each study once"
    elif len(tokens) < 2 or not tokens[1]:
        problem = (
            "page 2 was exactly full (the last study) and carried no nextPageToken: the service changed since "
            "2026-08 (harmless, the pagers stop on their own; the documented request counts assumed the token)"
        )
    elif len(pages) < 3 or counts[2] != 0:
        problem = f"the token of the exactly full last page led to {counts[2:]} studies, not to an empty page"
    if problem:
        return Check(name, False, problem)
    return Check(
        name,
        True,
        "pageSize=1 for 2 IDs: pages of 1, 1 and 0 studies; the exactly full last page carries "
        "nextPageToken to an empty page (the pagers stop before asking it)",
    )


def check_alias(first: Reply, followed: Reply | None, alias: str) -> Check:
    name = "alias 301"
    if first.status != 301:
        hint = " (pass another with --alias)" if first.status == 404 else ""
        return Check(
            name, False, f"GET /studies/{alias}: expected 301 to its study, got {_unusable(first) or 'HTTP 200'}{hint}"
        )
    location = first.headers.get("location", "")
    target = urljoin(first.url, location)
    canonical = urlsplit(target).path.rsplit("/", 1)[-1]
    if not location or urlsplit(target).netloc != urlsplit(first.url).netloc or "/studies/" not in target:
        return Check(
            name, False, f"{alias} → 301 to {location!r}: not a study on the same host (the client follows only those)"
        )
    doc, problem = _json(followed, target) if followed is not None else (None, "not followed")
    if problem is None and (not is_nct_id(canonical) or nct_of(doc) != normalize_nct_id(canonical)):
        problem = f"the record says {nct_of(doc)!r}, not {canonical}"
    if problem is None and normalize_nct_id(alias) not in {normalize_nct_id(a) for a in aliases_in(doc)}:
        problem = f"{canonical} does not list {alias} in nctIdAliases"
    if problem:
        return Check(name, False, f"{alias} → 301 {location}: {problem}")
    return Check(name, True, f"{alias} → 301 Location {location} → 200 {canonical} (nctIdAliases has {alias})")


def check_not_found(reply: Reply, nct_id: str) -> Check:
    kind = reply.headers.get("content-type", "?").split(";")[0]
    if reply.status == 404:
        return Check("404 body", True, f"{nct_id} → 404 {kind} {_snippet(reply)} (reported once, not retried)")
    return Check("404 body", False, f"{nct_id} → {_unusable(reply) or 'HTTP 200'}: expected 404 for an unknown study")


def check_history_index(reply: Reply, nct_id: str) -> tuple[Check, list[HistoryEntry]]:
    name = "history index"
    problem = _unusable(reply)
    if problem is None:
        try:
            entries, study = parse_index_and_study(reply.body, nct_id, "?history=true")
        except InvalidResponse as exc:
            problem = str(exc)
    if problem is not None:
        return Check(name, False, f"{nct_id}: {problem}"), []
    current = "with" if study is not None else "without"
    versions = f"{len(entries)} version{'s' if len(entries) != 1 else ''}"
    return Check(
        name,
        True,
        f"{nct_id}: {versions} numbered 0–{entries[-1].version}, QC dates "
        f"{entries[0].date} … {entries[-1].date}, {current} the current study",
    ), entries


def check_history_version(reply: Reply, nct_id: str, version: int) -> tuple[Check, dict[str, Any] | None]:
    name = "history version"
    problem = _unusable(reply)
    if problem is None:
        try:
            study = parse_version(reply.body, nct_id, version, f"/history/{version}")
        except InvalidResponse as exc:
            problem = str(exc)
    if problem is not None:
        return Check(name, False, f"{nct_id} version {version}: {problem}"), None
    posted = study.get("protocolSection", {}).get("statusModule", {}).get("lastUpdatePostDateStruct", {}).get("date")
    return Check(
        name, True, f"{nct_id} version {version}: studyVersion {version}, protocolSection of {nct_id}, posted {posted}"
    ), study


def check_history_markup(history_study: Mapping[str, Any] | None, v2: Reply, nct_id: str) -> Check:
    """The history version's markup fields are HTML and read the same as API v2's markdown."""
    name = "history markup"
    record, problem = _json(v2, f"/studies/{nct_id}")
    if history_study is None or problem is not None:
        return Check(name, False, f"{nct_id}: {problem or 'no history version to compare'}")
    pairs = []
    for module, key in MARKUP_PATHS:
        ours = record.get("protocolSection", {}).get(module, {}).get(key)
        theirs = history_study.get("protocolSection", {}).get(module, {}).get(key)
        if isinstance(ours, str) and isinstance(theirs, str):
            pairs.append((key, ours, theirs))
    if not pairs:
        return Check(name, False, f"{nct_id}: no markup field in both the history and API v2 to compare")
    differ = [(k, md, h) for k, md, h in pairs if not same_text(md, h)]
    if differ:
        key, md, h = differ[0]
        return Check(
            name,
            False,
            f"{nct_id} {key} reads differently: history {html_text(h)[:60]!r} vs API v2 "
            f"{markdown_text(md)[:60]!r} (a new posting since, or the markup changed)",
        )
    html = [k for k, _, h in pairs if is_html(h)]
    if not html:
        return Check(
            name,
            False,
            f"{nct_id}: {', '.join(k for k, _, _ in pairs)} served as markdown, not HTML: the "
            "site changed (backfill compares either form; check a backfill's history)",
        )
    sample = next(h for k, _, h in pairs if k == html[0])
    return Check(
        name,
        True,
        f"{nct_id}: {', '.join(html)} served as HTML ({sample[:24]!r}…), each reads the same as API v2's markdown",
    )

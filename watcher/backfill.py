"""Past versions from ClinicalTrials.gov's record history: backfill and gap-filling.

The history endpoints are the website's, not API v2 (`shared/research/ctgov-api.md` §6):

    GET {int}/studies/{nct}?history=true        → {"study": …, "history": {"changes": [{version, date, …}]}}
    GET {int}/studies/{nct}/history/{version}   → {"studyVersion": n, "study": {…}}

They are undocumented and may change without notice, so every answer goes through a strict
parser that fails with a message naming the URL and what was wrong (`HistoryFormatError`):
duplicate JSON keys, versions not contiguous from 0, a date not `yyyy-MM-dd`, a study for
another NCT ID, a body over the size cap. Versions are 0-based; the website shows `version+1`.

Their text fields may be HTML where API v2 gives markdown. A past version's string that says
the same thing as the stored record's string at the same place once markup is stripped takes
the stored string (`adopt_markup`), so a backfilled history does not report markup as edits.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog

from watcher.config.settings import Config
from watcher.detect.diff import diff_fields
from watcher.detect.fields import extract_fields
from watcher.detect.meaning import SeverityRules, classify
from watcher.errors import ApiError, InvalidResponse, TrialWatchError
from watcher.models import Change, Snapshot
from watcher.registry.client import CtGovClient
from watcher.store import Store
from watcher.store.database import utcnow
from watcher.store.record import content_hash
from watcher.store.values import PastVersion

log = structlog.get_logger("watcher.backfill")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class HistoryFormatError(InvalidResponse):
    """A record-history answer we cannot trust; the message says which URL and why."""


class BackfillError(TrialWatchError):
    """A backfill that could not be done (the trial is unknown, the history moved meanwhile, …)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: int  # 0-based
    date: str  # yyyy-MM-dd: the version's submit date, as the site lists it
    status: str | None
    module_labels: tuple[str, ...] = ()


@dataclass(slots=True)
class BackfillReport:
    nct_id: str
    available: int = 0
    imported: int = 0
    skipped_over_cap: int = 0
    requests: int = 0
    note: str = ""
    versions: list[int] = field(default_factory=list)


def history_base(config: Config) -> str:
    """`backfill.base_url`, else `api.base_url` with its `/api/v2` turned into `/api/int`."""
    configured = config.settings.backfill.base_url
    if configured:
        return configured
    base = config.settings.api.base_url.rstrip("/")
    if not base.endswith("/api/v2"):
        raise BackfillError(f"cannot derive the record-history URL from api.base_url {base!r}: "
                            "set backfill.base_url (e.g. https://clinicaltrials.gov/api/int)")
    return base.removesuffix("/v2") + "/int"


# -- parsing -------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json(body: bytes, where: str) -> Any:
    if body[:200].lstrip().lower().startswith((b"<!doctype", b"<html")):
        raise HistoryFormatError(f"{where}: an HTML page instead of JSON")
    try:
        return json.loads(body, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HistoryFormatError(f"{where}: not usable JSON ({exc})") from exc


def parse_index(body: bytes, nct_id: str, where: str) -> list[HistoryEntry]:
    """The version list of `?history=true`; strict, because everything after trusts it."""
    doc = _json(body, where)
    history = doc.get("history") if isinstance(doc, dict) else None
    if not isinstance(history, dict):
        raise HistoryFormatError(f"{where}: no `history` object (the endpoint's format changed?)")
    changes = history.get("changes")
    if not isinstance(changes, list) or not changes:
        raise HistoryFormatError(f"{where}: `history.changes` is missing or empty")
    entries: list[HistoryEntry] = []
    for position, item in enumerate(changes):
        if not isinstance(item, dict):
            raise HistoryFormatError(f"{where}: history.changes[{position}] is not an object")
        version, when = item.get("version"), item.get("date")
        if isinstance(version, bool) or not isinstance(version, int) or version != position:
            raise HistoryFormatError(f"{where}: history.changes[{position}].version is {version!r}; "
                                     "expected versions numbered 0, 1, 2, … in order")
        if not isinstance(when, str) or not _DATE.match(when):
            raise HistoryFormatError(f"{where}: history.changes[{position}].date is {when!r}, not yyyy-MM-dd")
        labels = item.get("moduleLabels") or []
        status = item.get("status")
        entries.append(HistoryEntry(version, when, status if isinstance(status, str) else None,
                                    tuple(str(label) for label in labels if isinstance(label, str))))
    study = doc.get("study")
    if isinstance(study, dict):
        _check_study(study, nct_id, where)
    return entries


def parse_version(body: bytes, nct_id: str, version: int, where: str) -> dict[str, Any]:
    doc = _json(body, where)
    if not isinstance(doc, dict) or not isinstance(doc.get("study"), dict):
        raise HistoryFormatError(f"{where}: no `study` object")
    number = doc.get("studyVersion", version)
    if number != version:
        raise HistoryFormatError(f"{where}: asked for version {version}, got studyVersion {number!r}")
    study: dict[str, Any] = doc["study"]
    _check_study(study, nct_id, where)
    return study


def _check_study(study: Mapping[str, Any], nct_id: str, where: str) -> None:
    protocol = study.get("protocolSection")
    ident = protocol.get("identificationModule") if isinstance(protocol, Mapping) else None
    found = ident.get("nctId") if isinstance(ident, Mapping) else None
    aliases = (ident.get("nctIdAliases") or []) if isinstance(ident, Mapping) else []
    if found != nct_id and nct_id not in aliases:
        raise HistoryFormatError(f"{where}: the record is {found!r}, not {nct_id}")


# -- markup --------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")
_MARKDOWN = re.compile(r"[\\*_#`>\-]+")
_SPACES = re.compile(r"\s+")


def _plain(text: str) -> str:
    return _SPACES.sub(" ", _MARKDOWN.sub(" ", html.unescape(_TAG.sub(" ", text)))).strip().lower()


def adopt_markup(reference: Any, value: Any) -> Any:
    """`value` with each string replaced by `reference`'s string at the same place when the two
    differ only in markup (HTML from the history endpoints vs markdown from API v2)."""
    if isinstance(value, str) and isinstance(reference, str):
        return reference if value != reference and _plain(value) == _plain(reference) else value
    if isinstance(value, dict) and isinstance(reference, Mapping):
        return {k: adopt_markup(reference.get(k), v) for k, v in value.items()}
    if isinstance(value, list) and isinstance(reference, list) and len(value) == len(reference):
        return [adopt_markup(r, v) for r, v in zip(reference, value, strict=True)]
    return value


def _submit_date(record: Mapping[str, Any]) -> str | None:
    status = record.get("protocolSection", {}).get("statusModule", {})
    value = status.get("lastUpdateSubmitDate")
    return value if isinstance(value, str) else None


# -- fetching ------------------------------------------------------------------------------------


class History:
    """Reads one trial's record history through the API client (its rate limit and retries)."""

    def __init__(self, config: Config, client: CtGovClient) -> None:
        self.client = client
        self.base = history_base(config)
        self.max_bytes = config.settings.backfill.max_bytes
        self.requests = 0

    def index(self, nct_id: str) -> list[HistoryEntry]:
        url = f"{self.base}/studies/{nct_id}?history=true"
        self.requests += 1
        return parse_index(self.client.get_raw(url, max_bytes=self.max_bytes, nct_id=nct_id), nct_id, url)

    def version(self, nct_id: str, version: int) -> dict[str, Any]:
        url = f"{self.base}/studies/{nct_id}/history/{version}"
        self.requests += 1
        return parse_version(self.client.get_raw(url, max_bytes=self.max_bytes, nct_id=nct_id),
                             nct_id, version, url)

    def between(self, nct_id: str, old: Mapping[str, Any], new: Mapping[str, Any],
                limit: int) -> list[tuple[HistoryEntry, dict[str, Any]]]:
        """Versions posted after `old` and before `new` (both records we hold), oldest first.

        Versions are told apart by their submit dates: those after `old`'s and up to `new`'s,
        less the last (that one is `new`). At most `limit` are fetched, the newest ones.
        """
        old_date, new_date = _submit_date(old), _submit_date(new)
        if old_date is None or new_date is None:
            return []
        entries = [e for e in self.index(nct_id) if old_date < e.date <= new_date][:-1]
        out: list[tuple[HistoryEntry, dict[str, Any]]] = []
        previous: Any = old
        for entry in entries[-limit:] if limit > 0 else []:
            record = adopt_markup(previous, self.version(nct_id, entry.version))
            out.append((entry, record))
            previous = record
        return out


def changes_between(old: Mapping[str, Any] | None, new: Mapping[str, Any], rules: SeverityRules) -> list[Change]:
    old_fields = extract_fields(old) if old is not None else None
    new_fields = extract_fields(new)
    return classify(diff_fields(old_fields, new_fields), old_fields, new_fields, rules)


def _posted(entry: HistoryEntry) -> datetime:
    return datetime.combine(date.fromisoformat(entry.date), datetime.min.time(), tzinfo=UTC)


def backfill(config: Config, store: Store, client: CtGovClient, nct_id: str, *,
             now: Callable[[], datetime] = utcnow, first: Snapshot | None = None) -> BackfillReport:
    """Import the versions of `nct_id` older than the first one stored; returns what was done.

    With nothing stored yet, the current record is fetched from API v2 and stored first, as a
    baseline, so the newest version always comes from the API the poller uses. Running it
    again imports nothing: a trial is backfilled once.
    """
    settings = config.settings.backfill
    rules = SeverityRules.from_mapping(config.settings.severity_rules)
    history = History(config, client)
    report = BackfillReport(nct_id)
    with store.exclusive("backfill", wait=True):
        infos = store.version_infos(nct_id)
        if any(i.source == "backfill" for i in infos):
            report.note = "already backfilled"
            return report
        if first is None and infos:
            first = store.snapshot(nct_id, infos[0].version)
        if first is None and infos:
            raise BackfillError(f"{nct_id}: its first stored version was pruned by retention; cannot place "
                                "older versions before it")
        if first is None:
            fetched = client.fetch_study(nct_id)
            report.requests += 1
            at = now()
            digest = content_hash(fetched.record)
            store.save_version(nct_id, fetched.record, fetched_at=at, digest=digest,
                               changes=changes_between(None, fetched.record, rules), baseline=True)
            first = Snapshot(nct_id, 1, at, digest, fetched.record)
        entries = history.index(nct_id)
        report.available = len(entries)
        first_date = _submit_date(first.record)
        older = [e for e in entries if first_date is not None and e.date < first_date]
        same_day = [e for e in entries if e.date == first_date]
        older += same_day[:-1]  # versions of the first one's day, except itself
        if len(older) > settings.max_versions:
            report.skipped_over_cap = len(older) - settings.max_versions
            older = older[-settings.max_versions:]
        past: list[PastVersion] = []
        previous: Mapping[str, Any] | None = None
        for entry in reversed(older):  # newest first, so markup is adopted from the stored record down
            record = adopt_markup(previous or first.record, history.version(nct_id, entry.version))
            past.append(PastVersion(record=record, digest=content_hash(record), posted_at=_posted(entry),
                                    ctgov_version=entry.version, changes=(), baseline=False))
            previous = record
        past.reverse()
        if past and len(history.index(nct_id)) != len(entries):
            raise BackfillError(f"{nct_id}: its history changed while it was read; run the backfill again")
        prepared: list[PastVersion] = []
        before: Mapping[str, Any] | None = None
        for item in past:
            prepared.append(PastVersion(record=item.record, digest=item.digest, posted_at=item.posted_at,
                                        ctgov_version=item.ctgov_version, baseline=before is None,
                                        changes=changes_between(before, item.record, rules)))
            before = item.record
        rebase = changes_between(before, first.record, rules) if before is not None else None
        report.imported = store.prepend_versions(nct_id, prepared, rebase=rebase)
        report.versions = [e.version for e in older]
        report.requests += history.requests
        if report.imported and same_day:
            store.set_ctgov_version(nct_id, report.imported + 1, same_day[-1].version)
    log.info("backfill.done", nct_id=nct_id, available=report.available, imported=report.imported,
             skipped_over_cap=report.skipped_over_cap, requests=report.requests, note=report.note)
    return report


def try_backfill(config: Config, store: Store, client: CtGovClient, nct_id: str, *,
                 now: Callable[[], datetime] = utcnow) -> BackfillReport | None:
    """`backfill` for the service: a failure is logged and left for the user, never raised."""
    try:
        return backfill(config, store, client, nct_id, now=now)
    except (ApiError, BackfillError) as exc:
        log.warning("backfill.failed", nct_id=nct_id, error=str(exc))
        return None


"""ClinicalTrials.gov's record history: the version index and past versions of one study.

Backfill (`watcher.backfill`) and the cycle's gap-filling read past versions through `RecordHistory`.

The history endpoints are the website's, not API v2 (undocumented; the cthist R package reads them
the same way):

    GET {int}/studies/{nct}?history=true        → {"study": …, "history": {"changes": [{version, date, …}]}}
    GET {int}/studies/{nct}/history/{version}   → {"studyVersion": n, "study": {…}}

They are undocumented and may change without notice, so every answer goes through a strict
parser that fails with a message naming the URL and what was wrong (`HistoryFormatError`):
duplicate JSON keys, versions not contiguous from 0, a date not `yyyy-MM-dd`, a study for
another NCT ID, a body over the size cap. Versions are 0-based; the website shows `version+1`.

Their markup fields are HTML where API v2 gives markdown. A past version's string that shows a
reader the same text as the stored record's string at the same place takes the stored string
(`adopt_markup`, comparing through `watcher.registry.markup`), so a backfilled history does not
report markup as edits, and loses no character of a real one.

Dates: an entry's `date` is the version's QC date (`lastUpdateSubmitQcDate`, what API v2 calls
`lastUpdateSubmitDate`), not the day it was posted; the posting day is in each version's own
`lastUpdatePostDateStruct`. Which entry is a record we already hold is decided by content
(`RecordHistory.locate`), not by assuming it is the last of its day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.config import Config
from watcher.config.secrets import without_credentials
from watcher.detect.record import submit_date_of
from watcher.errors import ApiError, BackfillError, InvalidResponse, StudyNotFound
from watcher.registry.client import CtGovClient
from watcher.registry.markup import as_markdown, is_html, same_text
from watcher.registry.responses import parse_json

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class HistoryFormatError(InvalidResponse):
    """A record-history answer we cannot trust; the message says which URL and why."""


class HistoryUnavailable(ApiError):
    """The record-history endpoint answered 404 for a study that exists (not a watchlist problem)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: int  # 0-based
    date: str  # yyyy-MM-dd: the version's QC date (lastUpdateSubmitQcDate), not its post date
    status: str | None
    module_labels: tuple[str, ...] = ()


def history_base(config: Config) -> str:
    """`backfill.base_url`, else `api.base_url` with its `/api/v2` turned into `/api/int`."""
    configured = config.settings.backfill.base_url
    if configured:
        return without_credentials(configured)
    base = without_credentials(config.settings.api.base_url).rstrip("/")
    if not base.endswith("/api/v2"):
        raise BackfillError(
            f"cannot derive the record-history URL from api.base_url {base!r}: "
            "set backfill.base_url (e.g. https://clinicaltrials.gov/api/int)"
        )
    return base.removesuffix("/v2") + "/int"


# -- parsing -------------------------------------------------------------------------------------


def parse_index(body: bytes, nct_id: str, where: str) -> list[HistoryEntry]:
    """The version list of `?history=true`; strict, because everything after trusts it."""
    return parse_index_and_study(body, nct_id, where)[0]


def parse_index_and_study(body: bytes, nct_id: str, where: str) -> tuple[list[HistoryEntry], dict[str, Any] | None]:
    """`parse_index`, and the current version's record the same answer carries (None if absent)."""
    doc = parse_json(body, where, error=HistoryFormatError, unique_keys=True)
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
            raise HistoryFormatError(
                f"{where}: history.changes[{position}].version is {version!r}; "
                "expected versions numbered 0, 1, 2, … in order"
            )
        if not isinstance(when, str) or not _DATE.match(when):
            raise HistoryFormatError(f"{where}: history.changes[{position}].date is {when!r}, not yyyy-MM-dd")
        labels = item.get("moduleLabels") or []
        status = item.get("status")
        entries.append(
            HistoryEntry(
                version,
                when,
                status if isinstance(status, str) else None,
                tuple(str(label) for label in labels if isinstance(label, str)),
            )
        )
    study = doc.get("study")
    if isinstance(study, dict):
        _check_study(study, nct_id, where)
        return entries, study
    return entries, None


def parse_version(body: bytes, nct_id: str, version: int, where: str) -> dict[str, Any]:
    doc = parse_json(body, where, error=HistoryFormatError, unique_keys=True)
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


# -- markup and identity ------------------------------------------------------------------------


def adopt_markup(reference: Any, value: Any) -> Any:
    """`value` with each string replaced by `reference`'s string at the same place when the two
    differ only in markup (HTML from the history endpoints vs markdown from API v2), and every other
    HTML string turned back into markdown, so versions are diffed in one form."""
    if isinstance(value, str):
        if isinstance(reference, str) and same_text(reference, value):
            return reference
        return as_markdown(reference if isinstance(reference, str) else None, value) if is_html(value) else value
    if isinstance(value, dict) and isinstance(reference, Mapping):
        return {k: adopt_markup(reference.get(k), v) for k, v in value.items()}
    if isinstance(value, list) and isinstance(reference, list) and len(value) == len(reference):
        return [adopt_markup(r, v) for r, v in zip(reference, value, strict=True)]
    if isinstance(value, list) and _has_markup(value):  # an item added or removed: pair by likeliness
        refs = reference if isinstance(reference, list) else []
        return [adopt_markup(_counterpart(v, refs), v) for v in value]
    return value


_HTML_HINT = re.compile(r"<[a-zA-Z/]|&(?:#\d+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);")


def _has_markup(value: Any) -> bool:
    if isinstance(value, str):
        return _HTML_HINT.search(value) is not None
    if isinstance(value, dict):
        return any(_has_markup(v) for v in value.values())
    return isinstance(value, list) and any(_has_markup(v) for v in value)


def _counterpart(item: Any, candidates: Sequence[Any]) -> Any:
    """The candidate dict sharing the most equal values with `item` (an arm keeps its label, an
    outcome its measure), or None; only for lists whose lengths differ, which are short."""
    if not isinstance(item, dict):
        return None
    best, score = None, 0
    for candidate in candidates:
        if isinstance(candidate, Mapping):
            shared = sum(1 for key, val in item.items() if candidate.get(key) == val)
            if shared > score:
                best, score = candidate, shared
    return best


_CONTENT = ("protocolSection", "resultsSection", "hasResults")


def same_version(record: Mapping[str, Any], past: Mapping[str, Any]) -> bool:
    """Is the history's `past` the version `record` (from API v2) was read from? What the sponsor
    posted must match, markup aside; derived sections are regenerated daily, and a section the history
    leaves out is not evidence either way."""
    adopted = adopt_markup(record, past)
    return all(adopted.get(key) == record.get(key) for key in _CONTENT if key == "protocolSection" or key in past)


# -- fetching ------------------------------------------------------------------------------------


class RecordHistory:
    """Reads one trial's record history through the API client (its rate limit and retries)."""

    def __init__(self, config: Config, client: CtGovClient) -> None:
        self.client = client
        self.base = history_base(config)
        self.max_bytes = config.settings.backfill.max_bytes
        self.requests = 0
        self._versions: dict[tuple[str, int], dict[str, Any]] = {}
        self._current: dict[str, tuple[int, dict[str, Any]]] = {}
        self._indexes: dict[str, list[HistoryEntry]] = {}

    def index(self, nct_id: str, *, fresh: bool = False) -> list[HistoryEntry]:
        """The version list, fetched once per instance unless `fresh` (has it changed meanwhile?); the
        current version's record it carries is kept for `version`."""
        if fresh or nct_id not in self._indexes:
            url = f"{self.base}/studies/{nct_id}?history=true"
            entries, study = parse_index_and_study(self._get(url, nct_id), nct_id, url)
            if study is not None:
                self._current[nct_id] = (entries[-1].version, study)
            self._indexes[nct_id] = entries
        return list(self._indexes[nct_id])

    def newest(self, nct_id: str) -> tuple[HistoryEntry, dict[str, Any] | None]:
        """The newest version's entry and record, from one request (the index carries the record)."""
        entries = self.index(nct_id)
        current = self._current.get(nct_id)
        return entries[-1], current[1] if current is not None and current[0] == entries[-1].version else None

    def version(self, nct_id: str, version: int) -> dict[str, Any]:
        """One version's record, fetched once per instance (the index's own study is the newest)."""
        current = self._current.get(nct_id)
        if current is not None and current[0] == version:
            return current[1]
        if (nct_id, version) not in self._versions:
            url = f"{self.base}/studies/{nct_id}/history/{version}"
            self._versions[nct_id, version] = parse_version(self._get(url, nct_id), nct_id, version, url)
        return self._versions[nct_id, version]

    def locate(self, nct_id: str, record: Mapping[str, Any], entries: Sequence[HistoryEntry]) -> HistoryEntry | None:
        """The entry that is `record`'s own version, by content, among `entries` dated on its submit date
        (its QC date), newest first; None when none matches (a registry-side edit without a posting)."""
        day = submit_date_of(record)
        for entry in reversed(entries):
            if entry.date != day:
                continue
            if same_version(record, self.version(nct_id, entry.version)):
                return entry
        return None

    def _get(self, url: str, nct_id: str) -> bytes:
        self.requests += 1
        try:
            return self.client.transport.get_raw(url, max_bytes=self.max_bytes, nct_id=nct_id)
        except StudyNotFound as exc:  # the study is watched and exists: it is the history page that is missing
            raise HistoryUnavailable(
                f"{url}: no record history (404) for {nct_id}; the study itself is "
                "still polled — the history endpoint may have moved (backfill.base_url)"
            ) from exc

    def between(
        self, nct_id: str, old: Mapping[str, Any], new: Mapping[str, Any], limit: int
    ) -> list[tuple[HistoryEntry, dict[str, Any]]]:
        """Versions posted after `old` and before `new` (both records we hold), oldest first.

        Candidates are dated after `old`'s submit date and up to `new`'s; `new`'s own version is found
        by content (`locate`; the index answer carries the newest one, so usually no request), and only
        what precedes it is kept. When no version matches `new`, the last candidate is taken to be it.
        At most `limit` are fetched, the newest ones.
        """
        old_date, new_date = submit_date_of(old), submit_date_of(new)
        if old_date is None or new_date is None:
            return []
        window = [e for e in self.index(nct_id) if old_date < e.date <= new_date]
        own = self.locate(nct_id, new, window)
        entries = [e for e in window if e.version < own.version] if own is not None else window[:-1]
        out: list[tuple[HistoryEntry, dict[str, Any]]] = []
        previous: Any = old
        for entry in entries[-limit:] if limit > 0 else []:
            record = adopt_markup(previous, self.version(nct_id, entry.version))
            out.append((entry, record))
            previous = record
        return out

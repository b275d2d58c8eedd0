"""ClinicalTrials.gov's record history: the version index and past versions of one study.

Backfill (`watcher.backfill`) and the cycle's gap-filling read past versions through `RecordHistory`.

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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.config import Config
from watcher.detect.record import submit_date_of
from watcher.errors import ApiError, BackfillError, InvalidResponse, StudyNotFound
from watcher.registry.client import CtGovClient
from watcher.registry.responses import parse_json

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class HistoryFormatError(InvalidResponse):
    """A record-history answer we cannot trust; the message says which URL and why."""


class HistoryUnavailable(ApiError):
    """The record-history endpoint answered 404 for a study that exists (not a watchlist problem)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: int  # 0-based
    date: str  # yyyy-MM-dd: the version's submit date, as the site lists it
    status: str | None
    module_labels: tuple[str, ...] = ()


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


def parse_index(body: bytes, nct_id: str, where: str) -> list[HistoryEntry]:
    """The version list of `?history=true`; strict, because everything after trusts it."""
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


# -- fetching ------------------------------------------------------------------------------------


class RecordHistory:
    """Reads one trial's record history through the API client (its rate limit and retries)."""

    def __init__(self, config: Config, client: CtGovClient) -> None:
        self.client = client
        self.base = history_base(config)
        self.max_bytes = config.settings.backfill.max_bytes
        self.requests = 0

    def index(self, nct_id: str) -> list[HistoryEntry]:
        url = f"{self.base}/studies/{nct_id}?history=true"
        return parse_index(self._get(url, nct_id), nct_id, url)

    def version(self, nct_id: str, version: int) -> dict[str, Any]:
        url = f"{self.base}/studies/{nct_id}/history/{version}"
        return parse_version(self._get(url, nct_id), nct_id, version, url)

    def _get(self, url: str, nct_id: str) -> bytes:
        self.requests += 1
        try:
            return self.client.get_raw(url, max_bytes=self.max_bytes, nct_id=nct_id)
        except StudyNotFound as exc:  # the study is watched and exists: it is the history page that is missing
            raise HistoryUnavailable(f"{url}: no record history (404) for {nct_id}; the study itself is "
                                     "still polled — the history endpoint may have moved (backfill.base_url)") from exc

    def between(self, nct_id: str, old: Mapping[str, Any], new: Mapping[str, Any],
                limit: int) -> list[tuple[HistoryEntry, dict[str, Any]]]:
        """Versions posted after `old` and before `new` (both records we hold), oldest first.

        Versions are told apart by their submit dates: those after `old`'s and up to `new`'s,
        less the last (that one is `new`). At most `limit` are fetched, the newest ones.
        """
        old_date, new_date = submit_date_of(old), submit_date_of(new)
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

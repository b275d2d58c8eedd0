"""What the registry answers, checked before anyone trusts it.

Every body goes through `parse_json` (the one JSON-or-HTML sniffer: an error page served with 200
is named as such) and every study through `validate_study`, so a record that is cut short, is an
HTML page, lacks `protocolSection` or names another study becomes `InvalidResponse` for that
trial alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from watcher.detect.record import last_update_of
from watcher.errors import ApiError, InvalidResponse
from watcher.ids import is_nct_id, normalize_nct_id
from watcher.registry.depth import MAX_DEPTH, depth_over

log = structlog.get_logger("watcher.registry.responses")


@dataclass(frozen=True, slots=True)
class Fetched:
    """One study record as asked for: `nct_id` differs from `requested_id` when it is an alias."""

    requested_id: str
    nct_id: str
    record: dict[str, Any]

    @property
    def last_update(self) -> str | None:
        return last_update_of(self.record)

    @property
    def moved(self) -> bool:
        return self.nct_id != normalize_nct_id(self.requested_id)


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP exchange as it came, for `trialwatch doctor` to judge (`watcher.registry.doctor`).

    `status` 0 means no answer at all; `body` then holds the transport error."""

    url: str
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-case
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Per requested ID: a record, an error, or missing (absent from every page)."""

    records: dict[str, Fetched] = field(default_factory=dict)
    errors: dict[str, ApiError] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A study that came in a page but could not be decoded (nested past what the decoder follows):
    the ID it names fails, the rest of the page is used."""

    nct_id: str | None
    reason: str


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse_json(
    body: bytes, where: str, *, error: type[InvalidResponse] = InvalidResponse, unique_keys: bool = False
) -> Any:
    """JSON, or `error` naming `where` and what came instead (an HTML page, a truncated body).

    `unique_keys` rejects duplicate keys, for undocumented endpoints whose answers we parse strictly.
    """
    if body[:200].lstrip().lower().startswith((b"<!doctype", b"<html")):
        raise error(f"{where}: an HTML page instead of JSON")
    try:
        return json.loads(body, object_pairs_hook=_unique_keys if unique_keys else None, parse_constant=refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        what = "truncated JSON" if body.lstrip()[:1] in {b"{", b"["} else "not JSON"
        raise error(f"{where}: {what} ({exc})") from exc
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply to read") from None


def refuse_constant(name: str) -> Any:
    """NaN and infinities are not JSON (RFC 8259); records never hold them, which lets
    `watcher.detect.canonical` hash with orjson (it would write them as null)."""
    raise ValueError(f"{name} is not a JSON number")


def peek_id(study: Any) -> str | None:
    if isinstance(study, Unreadable):
        return study.nct_id
    try:
        nct = study["protocolSection"]["identificationModule"]["nctId"]
    except (KeyError, TypeError):
        return None
    return nct if isinstance(nct, str) else None


def aliases_of(study: Any) -> list[str]:
    try:
        aliases = study["protocolSection"]["identificationModule"].get("nctIdAliases") or []
    except (KeyError, TypeError, AttributeError):
        return []
    return [normalize_nct_id(a) for a in aliases if isinstance(a, str)]


def owners(study: Any, by_id: Mapping[str, Any]) -> list[str]:
    """Which requested IDs a study of a filter.ids page answers: its own ID and its aliases."""
    nct = peek_id(study)
    candidates = [normalize_nct_id(nct)] if nct else []
    candidates += aliases_of(study)
    return [c for c in dict.fromkeys(candidates) if c in by_id]


def attribute(batch: list[str], by_id: Mapping[str, list[str]], studies: list[Any]) -> BatchResult:
    """The studies of a whole `filter.ids` batch, attributed to the IDs asked (`by_id`: normalized ID →
    the spellings asked)."""
    unexpected = [study for study in studies if not owners(study, by_id)]
    if len(unexpected) >= 2 and 2 * len(unexpected) > len(studies):
        # a reply about other studies is a bad reply, not hundreds of removed trials to confirm one by one
        error = InvalidResponse(
            f"/studies: {len(unexpected)} of the {len(studies)} studies answered were "
            f"not asked for; the batch is retried next cycle"
        )
        log.warning(
            "api.batch_failed",
            ids=len(batch),
            first_id=batch[0],
            error=str(error),
            error_type="InvalidResponse",
            reason="wrong studies",
        )
        return BatchResult(errors=dict.fromkeys(batch, error))
    result = BatchResult()
    claims: dict[str, list[tuple[bool, Any]]] = {}
    for study in studies:
        claimants = owners(study, by_id)
        if not claimants:
            log.warning("api.unexpected_study", nct_id=peek_id(study), reason="not among the asked IDs")
        own = normalize_nct_id(peek_id(study) or "")
        for owner in claimants:
            for requested in by_id[owner]:
                claims.setdefault(requested, []).append((owner == own, study))
    for requested, found in claims.items():
        try:
            result.records[requested] = choose(found, requested)
        except InvalidResponse as exc:
            log.warning("api.invalid_response", nct_id=requested, reason=str(exc))
            result.errors[requested] = exc
    result.missing.update(i for i in batch if i not in result.records and i not in result.errors)
    return result


def choose(found: list[tuple[bool, Any]], requested: str) -> Fetched:
    """A study under its own ID wins over one listing the ID as an alias; two of a kind: neither."""
    best = [study for is_own, study in found if is_own] or [study for _, study in found]
    if len(best) > 1:
        raise InvalidResponse(f"{len(best)} records in one answer claim to be {requested}")
    return validate_study(best[0], requested)


def validate_study(study: Any, requested: str | None, *, expected: str | None = None) -> Fetched:
    """A usable study record for `requested` (any ID when None), or InvalidResponse."""
    if isinstance(study, Unreadable):
        raise InvalidResponse(study.reason)
    if not isinstance(study, dict):
        raise InvalidResponse("the study is not a JSON object")
    protocol = study.get("protocolSection")
    if not isinstance(protocol, dict):
        raise InvalidResponse("the study has no protocolSection")
    nct = peek_id(study)
    if not nct or not is_nct_id(nct, short_ok=True):
        raise InvalidResponse("the study has no valid protocolSection.identificationModule.nctId")
    if depth_over(study):
        raise InvalidResponse(f"the record nests deeper than {MAX_DEPTH} levels")
    canonical = normalize_nct_id(nct)
    if expected is not None and canonical != expected:
        raise InvalidResponse(f"asked for {expected}, the record is {nct}")
    if requested is not None:
        wanted = normalize_nct_id(requested)
        if canonical != wanted and wanted not in aliases_of(study) and expected is None:
            raise InvalidResponse(f"asked for {requested}, the record is {nct}")
    return Fetched(requested or canonical, canonical, study)

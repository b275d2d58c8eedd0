"""What a study record says about itself, read in one place.

Records are foreign payloads (dicts as the registry sent them) and any level may be missing in a
partial or odd response, so each reader answers None rather than raising. `content_hash` says
whether two records are the same version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watcher.detect.canonical import encode_record


def _text(record: Mapping[str, Any], module: str, *path: str) -> str | None:
    node: Any = record.get("protocolSection")
    for key in (module, *path):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, str) else None


def title_of(record: Mapping[str, Any]) -> str | None:
    return _text(record, "identificationModule", "briefTitle")


def overall_status_of(record: Mapping[str, Any]) -> str | None:
    return _text(record, "statusModule", "overallStatus")


def sponsor_of(record: Mapping[str, Any]) -> str | None:
    return _text(record, "sponsorCollaboratorsModule", "leadSponsor", "name")


def conditions_of(record: Mapping[str, Any]) -> str | None:
    """The conditions in one line ("; " between them), for searching the watch list."""
    module = (record.get("protocolSection") or {}).get("conditionsModule") or {}
    items = [str(c) for c in module.get("conditions") or [] if c] if isinstance(module, Mapping) else []
    return "; ".join(items) or None


def primary_completion_of(record: Mapping[str, Any]) -> str | None:
    """The primary completion date (`2027-06` or `2027-06-30`): the date the watch list sorts by."""
    return _text(record, "statusModule", "primaryCompletionDateStruct", "date")


def completion_of(record: Mapping[str, Any]) -> str | None:
    """The (study) completion date: one of the dates the upcoming-dates page lists."""
    return _text(record, "statusModule", "completionDateStruct", "date")


def last_update_of(record: Mapping[str, Any]) -> str | None:
    """The registry's last-update *post* date: what the updated-since query compares."""
    return _text(record, "statusModule", "lastUpdatePostDateStruct", "date")


def submit_date_of(record: Mapping[str, Any]) -> str | None:
    """The sponsor's last-update *submit* date: what the record-history pages are dated by."""
    return _text(record, "statusModule", "lastUpdateSubmitDate")


def content_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON without `versionHolder`, the date CT.gov regenerated
    the record (`watcher.detect.canonical`).

    versionHolder moves on every data refresh without any edit, so hashing it would store a
    new "version" of every trial on every full re-fetch.
    """
    return encode_record(record).digest

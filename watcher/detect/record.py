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

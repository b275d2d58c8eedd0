"""Pure helpers over one study record: its canonical JSON, content hash and last-update date.

They live here until the record-reading helpers move to `watcher.detect`; import them from
this module (`watcher.store.record`) only, so that move is a one-line change per caller.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the record without `versionHolder`, the date CT.gov regenerated the record.

    versionHolder moves on every data refresh without any edit, so hashing it would store a
    new "version" of every trial on every full re-fetch.
    """
    derived = record.get("derivedSection")
    misc = derived.get("miscInfoModule") if isinstance(derived, Mapping) else None
    if isinstance(misc, Mapping) and "versionHolder" in misc:
        trimmed_misc = {k: v for k, v in misc.items() if k != "versionHolder"}
        record = {**record, "derivedSection": {**derived, "miscInfoModule": trimmed_misc}}  # type: ignore[dict-item]
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


def last_update_of(record: Mapping[str, Any]) -> str | None:
    try:
        date = record["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
    except (KeyError, TypeError):
        return None
    return str(date)

"""Is a fetched record whole? A partial answer must not become "removed" alerts.

A proxy or an overloaded backend can return a record that is valid JSON, has its `protocolSection`
and `nctId`, and still lacks a module, the `hasResults` flag, a text or most of a list: diffed, one
such answer of a 1,148-site trial gives 1,148 "Site removed" alerts, and the next good one 1,148
"New site" alerts. So a record that lacks something its stored previous version had is
re-fetched alone before it is believed (`watcher.cycle.partial`). This module only compares two records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# a keyed list that loses more than this share of its items, and at least SHRINK_MIN_LOST items, is suspect
SHRINK_SHARE = 0.5
SHRINK_MIN_LOST = 5
# texts whose emptying is never a sponsor's edit in practice
TEXTS = (
    ("descriptionModule", "briefSummary"),
    ("eligibilityModule", "eligibilityCriteria"),
    ("identificationModule", "briefTitle"),
)
FLAGS = ("hasResults",)
SECTIONS = ("protocolSection", "resultsSection", "derivedSection")


def missing_parts(previous: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What `new` lacks that `previous` had, as dotted paths with the reason; empty when it looks whole."""
    out = _missing_top(previous, new)
    old_protocol, new_protocol = previous.get("protocolSection"), new.get("protocolSection")
    if isinstance(old_protocol, Mapping) and isinstance(new_protocol, Mapping):
        out += _missing_modules(old_protocol, new_protocol)
        out += _emptied_texts(old_protocol, new_protocol)
    return out


def _missing_top(previous: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Sections and flags of the record itself: gone, or `hasResults` turned false."""
    out = [f"{key}: missing" for key in (*SECTIONS, *FLAGS) if key in previous and key not in new]
    if previous.get("hasResults") is True and new.get("hasResults") is False:
        out.append("hasResults: true before, false now")
    return out


def _missing_modules(old_protocol: Mapping[str, Any], new_protocol: Mapping[str, Any]) -> list[str]:
    """Modules of the protocol that are gone, and lists within them that lost most of their items."""
    out: list[str] = []
    for module, old_body in old_protocol.items():
        new_body = new_protocol.get(module)
        if not isinstance(new_body, Mapping):
            out.append(f"protocolSection.{module}: missing")
        elif isinstance(old_body, Mapping):
            for key, old_value in old_body.items():
                if isinstance(old_value, list):
                    out += _shrunk(f"protocolSection.{module}.{key}", old_value, new_body.get(key))
    return out


def _emptied_texts(old_protocol: Mapping[str, Any], new_protocol: Mapping[str, Any]) -> list[str]:
    """The `TEXTS` that had words and have none now."""
    out: list[str] = []
    for module, key in TEXTS:
        old_text = _get(old_protocol, module, key)
        if isinstance(old_text, str) and old_text.strip() and not str(_get(new_protocol, module, key) or "").strip():
            out.append(f"protocolSection.{module}.{key}: empty")
    return out


def _shrunk(path: str, old: list[Any], new: Any) -> list[str]:
    count = len(new) if isinstance(new, list) else 0
    lost = len(old) - count
    if lost >= SHRINK_MIN_LOST and lost > SHRINK_SHARE * len(old):
        return [f"{path}: {len(old)} items before, {count} now"]
    return []


def _get(protocol: Mapping[str, Any], module: str, key: str) -> Any:
    body = protocol.get(module)
    return body.get(key) if isinstance(body, Mapping) else None

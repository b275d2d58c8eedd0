"""Values in words: the one renderer of an old or a new value and of a `field: old → new` line.

Every channel, the feeds, the CLI and user templates show changes through these functions, so a
value reads the same wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from watcher.models import Json

_SPACE = re.compile(r"\s+")

_LABEL_KEYS = ("measure", "label", "name", "facility", "term", "citation", "filename", "url", "id")


def format_value(value: Json, *, width: int = 120) -> str:
    """A short one-line rendering of an old or new value, cut to `width` characters.

    Items of keyed lists show their label (a site its address and status, an outcome its
    measure); a keyed list shows its count and keys; nothing at all shows as `(none)`.
    """
    return _truncate(_one_line(value), width)


def format_pair(old: Json, new: Json, *, width: int = 120) -> tuple[str, str]:
    """`format_value` of an old and a new value, cut so that the difference stays visible.

    Two long texts that share a beginning (a reworded criterion, a longer summary) are both
    shown from a little before the first character where they differ.
    """
    before, after = _one_line(old), _one_line(new)
    if isinstance(old, str) and isinstance(new, str) and max(len(before), len(after)) > width:
        same = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b),
                    min(len(before), len(after)))
        start = max(0, same - width // 3)
        if start:
            space = before.rfind(" ", 0, start)
            start = space + 1 if space > 0 and start - space < width // 3 else start
            before, after = "…" + before[start:], "…" + after[start:]
    return _truncate(before, width), _truncate(after, width)


def _one_line(value: Json) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return _SPACE.sub(" ", value).strip() or '""'
    if isinstance(value, list):
        return ", ".join(_one_line(v) for v in value) if value else "(empty)"
    if isinstance(value, dict):
        return _one_line_dict(value)
    return str(value)


def _one_line_dict(value: Mapping[str, Any]) -> str:
    if not value:
        return "(empty)"
    if "facility" in value or ("city" in value and "country" in value):
        where = ", ".join(str(value[k]) for k in ("facility", "city", "state", "country") if value.get(k))
        return f"{where} ({value['status']})" if value.get("status") else where
    for key in _LABEL_KEYS:
        if isinstance(value.get(key), str):
            label = _one_line(value[key])
            extra = value.get("timeFrame") or value.get("type") or value.get("role") or value.get("class")
            return f"{label} ({_one_line(extra)})" if isinstance(extra, str) and extra else label
    if all(isinstance(v, dict) for v in value.values()):
        count = len(value)
        return f"{count} item{'s' if count != 1 else ''}: " + "; ".join(value)
    return "; ".join(f"{k}: {_one_line(v)}" for k, v in value.items())


def _truncate(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    cut = text[: max(width - 1, 1)]
    space = cut.rfind(" ")
    if space > width * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;") + "…"


def change_texts(change: Mapping[str, Json]) -> tuple[str, str]:
    """The old and new value of a stored change as shown to people; an addition has no old value."""
    kind = change.get("change")
    old = "(none)" if kind == "added" else format_value(change.get("old"))
    new = "(removed)" if kind == "removed" else format_value(change.get("new"))
    return old, new


def change_line(change: Mapping[str, Json]) -> str:
    """`field: old → new`, the one-line form used in every plain-text body."""
    old, new = change_texts(change)
    return f"{change['field']}: {old} → {new}"

"""Bulk changes in one line: when many items of one list change in one version (a trial that
reopens 400 sites, a sponsor that re-files its references), people get one line with counts
and the most important items first instead of one line per item.

Only the human formats read these entries; the JSON webhook keeps every change and marks the
ones summarised for people (`summarised`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from watcher.detect.catalog import spec_for
from watcher.detect.describe import format_value
from watcher.detect.priority import order_key
from watcher.models import SEVERITY_RANK

BULK_MIN_ITEMS = 6
"""A list whose changes touch at least this many items in one version is summarised."""

BULK_NAMES_SHOWN = 3
"""Items named in a summary line before `…and N more`."""

_LIST_KINDS = frozenset({"keyed", "criteria"})

_NOUNS = {
    "locations": "Sites",
    "armsInterventions.arms": "Arms",
    "armsInterventions.interventions": "Interventions",
    "outcomes.primary": "Primary outcomes",
    "outcomes.secondary": "Secondary outcomes",
    "outcomes.other": "Other outcomes",
    "references.references": "References",
    "eligibility.criteria": "Criteria",
    "contacts.central": "Central contacts",
    "sponsor.collaborators": "Collaborators",
}


def family_of(field: str) -> str | None:
    """The list a change belongs to (`locations`, `outcomes.secondary`, …), None for a plain field."""
    if field.startswith("locations."):
        return "locations"
    parts = field.split(".")
    if len(parts) < 3:
        return None
    prefix = ".".join(parts[:2])
    spec = spec_for(prefix)
    return prefix if spec is not None and spec.kind in _LIST_KINDS else None


def _item_of(change: Mapping[str, Any], family: str, known: set[str]) -> str:
    """The list item a change is about: its key (sub-field changes share their item's key).

    Keys may contain dots (`st. mary's|…`), so a sub-field change takes the longest key the
    events named, else everything before its last dot."""
    event = change.get("event") or {}
    data = event.get("data")
    site = data.get("site") if isinstance(data, Mapping) else None
    if family == "locations" and isinstance(site, str):
        return site
    rest = str(change["field"]).removeprefix(family + ".")
    if family == "eligibility.criteria":
        return ".".join(rest.split(".")[:2])
    owners = [key for key in known if rest.startswith(key + ".")]
    if owners:
        return max(owners, key=len)
    if change.get("change") in ("added", "removed") and isinstance(change.get("new") or change.get("old"), Mapping):
        return rest
    return rest.rsplit(".", 1)[0] if "." in rest else rest


def _site_keys(changes: Sequence[Mapping[str, Any]]) -> set[str]:
    keys = set()
    for change in changes:
        data = (change.get("event") or {}).get("data")
        if isinstance(data, Mapping) and isinstance(data.get("site"), str):
            keys.add(data["site"])
    return keys


def _label(change: Mapping[str, Any], item: str) -> str:
    value = change.get("new") if change.get("change") != "removed" else change.get("old")
    if isinstance(value, Mapping):
        if "city" in value or "facility" in value:
            where = ", ".join(str(value[k]) for k in ("facility", "city", "state") if value.get(k))
            return where or format_value(value, width=80)
        return format_value(value, width=80)
    summary = str((change.get("event") or {}).get("summary") or "")
    if summary.startswith("Site ") and ": " in summary:
        return summary.removeprefix("Site ").rsplit(": ", 1)[0]
    return item


def _site_counts(entries: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    added = removed = edited = 0
    now: Counter[str] = Counter()
    for _, changes in entries:
        kinds = {(c.get("event") or {}).get("kind") for c in changes}
        if "site_added" in kinds or any(
            c.get("change") == "added"
            and (c.get("event") or {}).get("kind") is None
            and "." not in str(c["field"]).removeprefix("locations.")
            for c in changes
        ):
            added += 1
        elif "site_removed" in kinds:
            removed += 1
        elif "site_status" in kinds:
            status = next(
                c["event"]["data"].get("to") for c in changes if (c.get("event") or {}).get("kind") == "site_status"
            )
            now[str(status or "no status")] += 1
        else:
            edited += 1
    parts = [f"{added} added"] if added else []
    parts += [f"{removed} removed"] if removed else []
    parts += [f"{n} now {status}" for status, n in now.most_common()]
    parts += [f"{edited} edited"] if edited else []
    return parts


def _generic_counts(entries: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    count: Counter[str] = Counter()
    for _, changes in entries:
        whole = [c for c in changes if c.get("change") in ("added", "removed") and len(changes) == 1]
        count[str(whole[0]["change"]) if whole else "changed"] += 1
    return [
        f"{n} {kind}" for kind, n in sorted(count.items(), key=lambda kv: ("added", "removed", "changed").index(kv[0]))
    ]


def summarise(changes: Sequence[Mapping[str, Any]], *, min_items: int = BULK_MIN_ITEMS) -> list[dict[str, Any]]:
    """The entries people see for one trial's changes (already in priority order): each change on
    its own, except that the changes of a list touching at least `min_items` items become one
    summary entry, placed where its most important change stood.

    Every entry has `count` (the changes it stands for); a summary entry also has `family`,
    `fields` (the changes' names), `line` and `summary`.
    """
    by_family: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    known = _site_keys(changes)
    for change in changes:
        family = family_of(str(change["field"]))
        if family is not None:
            by_family.setdefault(family, {}).setdefault(_item_of(change, family, known), []).append(change)
    bulky = {family for family, items in by_family.items() if len(items) >= min_items}
    out: list[dict[str, Any]] = []
    done: set[str] = set()
    for change in changes:
        family = family_of(str(change["field"]))
        if family not in bulky:
            out.append({**change, "count": 1})
            continue
        if family in done:
            continue
        done.add(family)
        out.append(_summary_entry(family, list(by_family[family].items())))
    return out


def _importance(item: tuple[str, Sequence[Mapping[str, Any]]]) -> tuple[tuple[int, int], bool]:
    """An item's place in a summary: its most important change first, then a site now
    RECRUITING before one about to be."""
    data = [(c.get("event") or {}).get("data") or {} for c in item[1]]
    recruiting = any(d.get("to") == "RECRUITING" or d.get("status") == "RECRUITING" for d in data)
    return min(order_key(c) for c in item[1]), not recruiting


def _summary_entry(family: str, items: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> dict[str, Any]:
    items = sorted(items, key=_importance)
    counts = _site_counts(items) if family == "locations" else _generic_counts(items)
    names = [_label(changes[0], item) for item, changes in items[:BULK_NAMES_SHOWN]]
    more = len(items) - len(names)
    listed = "; ".join(names) + (f"; …and {more} more" if more > 0 else "")
    noun = _NOUNS.get(family) or (spec_for(family).description if spec_for(family) else family)  # type: ignore[union-attr]
    summary = f"{noun}: {', '.join(counts)} — {listed}"
    members = [c for _, changes in items for c in changes]
    severity = max((str(c.get("severity") or "minor") for c in members), key=lambda s: SEVERITY_RANK.get(s, 0))
    data = {"family": family, "items": len(items), "changes": len(members)}
    return {
        "field": family,
        "change": "summarised",
        "old": None,
        "new": None,
        "old_text": "",
        "new_text": "",
        "diff": None,
        "severity": severity,
        "summary": summary,
        "line": summary,
        "event": {"kind": "bulk_summary", "summary": summary, "data": data},
        "count": len(members),
        "family": family,
        "fields": [c["field"] for c in members],
        "rank": min(order_key(c) for c in members),
    }

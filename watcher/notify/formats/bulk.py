"""Bulk changes in one line: when many items of one list change in one version (a trial that
reopens 400 sites, a sponsor that re-files its references), people get one line with counts
and the most important items first instead of one line per item.

Only the human formats read these entries; the JSON webhook keeps every change and marks the
ones summarised for people (`summarised`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from watcher.detect.catalog import spec_for
from watcher.detect.describe import format_value
from watcher.models import SEVERITY_RANK, Json
from watcher.notify.formats.context import ChangeContext, Entry, SummaryEntry

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


def _data(change: ChangeContext) -> Mapping[str, Json]:
    return change.event.data if change.event is not None else {}


def _kind(change: ChangeContext) -> str | None:
    return change.event.kind if change.event is not None else None


def _item_of(change: ChangeContext, family: str, known: set[str]) -> str:
    """The list item a change is about: its key (sub-field changes share their item's key).

    Keys may contain dots (`st. mary's|…`), so a sub-field change takes the longest key the
    events named, else everything before its last dot."""
    site = _data(change).get("site")
    if family == "locations" and isinstance(site, str):
        return site
    rest = change.field.removeprefix(family + ".")
    if family == "eligibility.criteria":
        return ".".join(rest.split(".")[:2])
    owners = [key for key in known if rest.startswith(key + ".")]
    if owners:
        return max(owners, key=len)
    if change.change in ("added", "removed") and isinstance(change.new or change.old, Mapping):
        return rest
    return rest.rsplit(".", 1)[0] if "." in rest else rest


def _site_keys(changes: Sequence[ChangeContext]) -> set[str]:
    return {site for c in changes if isinstance(site := _data(c).get("site"), str)}


def _label(change: ChangeContext, item: str) -> str:
    value = change.new if change.change != "removed" else change.old
    if isinstance(value, Mapping):
        if "city" in value or "facility" in value:
            where = ", ".join(str(value[k]) for k in ("facility", "city", "state") if value.get(k))
            return where or format_value(value, width=80)
        return format_value(value, width=80)
    summary = change.event.summary if change.event is not None else ""
    if summary.startswith("Site ") and ": " in summary:
        return summary.removeprefix("Site ").rsplit(": ", 1)[0]
    return item


Item = tuple[str, Sequence[ChangeContext]]
"""One item of a list (its key) and its changes."""


def _site_counts(entries: Sequence[Item]) -> list[str]:
    added = removed = edited = 0
    now: Counter[str] = Counter()
    for _, changes in entries:
        kinds = {_kind(c) for c in changes}
        if "site_added" in kinds or any(
            c.change == "added" and c.event is None and "." not in c.field.removeprefix("locations.") for c in changes
        ):
            added += 1
        elif "site_removed" in kinds:
            removed += 1
        elif "site_status" in kinds:
            status = next(_data(c).get("to") for c in changes if _kind(c) == "site_status")
            now[str(status or "no status")] += 1
        else:
            edited += 1
    parts = [f"{added} added"] if added else []
    parts += [f"{removed} removed"] if removed else []
    parts += [f"{n} now {status}" for status, n in now.most_common()]
    parts += [f"{edited} edited"] if edited else []
    return parts


def _generic_counts(entries: Sequence[Item]) -> list[str]:
    count: Counter[str] = Counter()
    for _, changes in entries:
        whole = [c for c in changes if c.change in ("added", "removed") and len(changes) == 1]
        count[whole[0].change if whole else "changed"] += 1
    return [
        f"{n} {kind}" for kind, n in sorted(count.items(), key=lambda kv: ("added", "removed", "changed").index(kv[0]))
    ]


def summarise(changes: Sequence[ChangeContext], *, min_items: int = BULK_MIN_ITEMS) -> list[Entry]:
    """The entries people see for one trial's changes (already in priority order): each change on
    its own, except that the changes of a list touching at least `min_items` items become one
    summary entry, placed where its most important change stood."""
    by_family: dict[str, dict[str, list[ChangeContext]]] = {}
    known = _site_keys(changes)
    for change in changes:
        family = family_of(change.field)
        if family is not None:
            by_family.setdefault(family, {}).setdefault(_item_of(change, family, known), []).append(change)
    bulky = {family for family, items in by_family.items() if len(items) >= min_items}
    out: list[Entry] = []
    done: set[str] = set()
    for change in changes:
        family = family_of(change.field)
        if family is None or family not in bulky:
            out.append(change)
            continue
        if family in done:
            continue
        done.add(family)
        out.append(_summary_entry(family, list(by_family[family].items())))
    return out


def _importance(item: Item) -> tuple[tuple[int, int], bool]:
    """An item's place in a summary: its most important change first, then a site now
    RECRUITING before one about to be."""
    data = [_data(c) for c in item[1]]
    recruiting = any(d.get("to") == "RECRUITING" or d.get("status") == "RECRUITING" for d in data)
    return min(c.rank for c in item[1]), not recruiting


def _summary_entry(family: str, items: Sequence[Item]) -> SummaryEntry:
    items = sorted(items, key=_importance)
    counts = _site_counts(items) if family == "locations" else _generic_counts(items)
    names = [_label(changes[0], item) for item, changes in items[:BULK_NAMES_SHOWN]]
    more = len(items) - len(names)
    listed = "; ".join(names) + (f"; …and {more} more" if more > 0 else "")
    spec = spec_for(family)
    noun = _NOUNS.get(family) or (spec.description if spec is not None else family)
    members = [c for _, changes in items for c in changes]
    return SummaryEntry(
        family=family,
        fields=tuple(c.field for c in members),
        summary=f"{noun}: {', '.join(counts)} — {listed}",
        severity=max((c.severity for c in members), key=lambda s: SEVERITY_RANK.get(s, 0)),
        count=len(members),
        items=len(items),
        rank=min(c.rank for c in members),
    )

"""Bulk changes in one line: when many items of one list change in one version (a trial that
reopens 400 sites, a sponsor that re-files its references), people get one line with counts
and the most important items first instead of one line per item.

Only the human formats read these entries; the JSON webhook keeps every change and marks the
ones summarised for people (`summarised`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol, cast

from watcher.detect.catalog import spec_for
from watcher.detect.describe import field_label, format_value, site_name
from watcher.models import SEVERITY_RANK, ChangeKind, Event, Json
from watcher.notify.formats.context import ChangeContext, Entry, SummaryEntry

BULK_MIN_ITEMS = 6
"""A list whose changes touch at least this many items in one version is summarised."""

BULK_NAMES_PER_KIND = 8
"""Items named in each group of a summary line (now RECRUITING, removed, edited, …) before `…and N more`;
the message ends with a link to the full list."""

BULK_ADDED_NAMED = 60
"""Added items named before `…and N more`: a new site is what a reader looks for, so it is always
named unless a list gains more than this in one version (a trial opening a whole country)."""

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


class Listed(Protocol):
    """What placing a change in its list needs: a detected `Change` or a `ChangeContext` alike."""

    @property
    def field(self) -> str: ...
    @property
    def change(self) -> ChangeKind: ...
    @property
    def old(self) -> Json: ...
    @property
    def new(self) -> Json: ...
    @property
    def event(self) -> Event | None: ...


def _data(change: Listed) -> Mapping[str, Json]:
    return change.event.data if change.event is not None else {}


def _kind(change: Listed) -> str | None:
    return change.event.kind if change.event is not None else None


def _item_of(change: Listed, family: str, known: set[str]) -> str:
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


def _site_keys(changes: Sequence[Listed]) -> set[str]:
    return {site for c in changes if isinstance(site := _data(c).get("site"), str)}


Item = tuple[str, Sequence[ChangeContext]]
"""One item of a list (its key) and its changes."""


def _site_kind(changes: Sequence[ChangeContext]) -> str:
    """What happened to one site: `added`, `removed`, `now <STATUS>` or `edited` (a contact swapped,
    an address corrected: one edit however many sub-fields moved)."""
    kinds = {_kind(c) for c in changes}
    if "site_added" in kinds or any(
        c.change == "added" and c.event is None and "." not in c.field.removeprefix("locations.") for c in changes
    ):
        return "added"
    if "site_removed" in kinds:
        return "removed"
    if "site_status" in kinds:
        status = next(_data(c).get("to") for c in changes if _kind(c) == "site_status")
        return f"now {status or 'without status'}"
    return "edited"


def _generic_kind(changes: Sequence[ChangeContext]) -> str:
    whole = [c for c in changes if c.change in ("added", "removed") and len(changes) == 1]
    return whole[0].change if whole else "changed"


def _kind_order(kind: str, size: int) -> tuple[int, int, str]:
    """Added first, then status changes (now RECRUITING first), removed, then edits."""
    if kind == "added":
        return 0, 0, kind
    if kind.startswith("now "):
        return 1, 0 if kind == "now RECRUITING" else 1, f"{-size:09d}{kind}"
    return (2, 0, kind) if kind == "removed" else (3, 0, kind)


def _site_facts(key: str, changes: Sequence[ChangeContext]) -> tuple[str, str, str]:
    """(facility, city, zip) of a site as the record spells them: from the whole site when it came or
    went, from its events, from a corrected facility; from its key only for changes stored before
    every site change carried the spelling."""
    facts = {"facility": "", "city": "", "zip": ""}
    for change in changes:
        value = change.new if change.change != "removed" else change.old
        if isinstance(value, Mapping) and ("facility" in value or "country" in value):
            facts.update({k: str(value.get(k) or "") for k in facts})
        data = _data(change)
        for k, known in facts.items():
            if not known and isinstance(data.get(k), str):
                facts[k] = str(data[k])
        part = change.field.rsplit(".", 1)[-1]
        if part in facts and isinstance(change.new, str):
            facts[part] = change.new
            if part == "city" and isinstance(change.old, str) and change.old:  # re-addressed: say where it was
                facts[part] = f"{change.new} (was {change.old})"
    if not any(isinstance(_data(c).get("site"), str) for c in changes):
        facility, _, place = site_name(key).partition(" (")
        facts["facility"] = facts["facility"] or facility
        facts["city"] = facts["city"] or place.split(",")[0].rstrip(")")
    return facts["facility"], facts["city"], facts["zip"]


def _names(family: str, items: Sequence[Item]) -> list[str]:
    """The words naming each item; look-alikes (two "GSK Investigational Site, Athens") are told
    apart by their zip code."""
    if family != "locations":
        return [_item_name(family, key, changes) for key, changes in items]
    facts = [_site_facts(key, changes) for key, changes in items]
    names = [", ".join(p for p in (facility, city) if p) for facility, city, _ in facts]
    seen = Counter(names)
    return [f"{n} ({z})" if seen[n] > 1 and z else n for n, (_, _, z) in zip(names, facts, strict=True)]


def _item_name(family: str, key: str, changes: Sequence[ChangeContext]) -> str:
    for change in changes:
        value = change.new if change.change != "removed" else change.old
        if isinstance(value, Mapping):
            return format_value(value, width=80)
    label = field_label(f"{family}.{key}")
    return label.partition(" ")[2] if "“" in label else format_value(key, width=80)


def _named_at_most(kind: str) -> int:
    return BULK_ADDED_NAMED if kind == "added" else BULK_NAMES_PER_KIND


def _group_text(kind: str, names: Sequence[str], total: int) -> str:
    more = total - len(names)
    listed = "; ".join(names) + (f"; …and {more} more" if more > 0 else "")
    return f"{total} {kind}: {listed}"


def _families(changes: Sequence[Listed]) -> dict[str, dict[str, list[Listed]]]:
    """The changes of each list, by the item they are about."""
    by_family: dict[str, dict[str, list[Listed]]] = {}
    known = _site_keys(changes)
    for change in changes:
        family = family_of(change.field)
        if family is not None:
            by_family.setdefault(family, {}).setdefault(_item_of(change, family, known), []).append(change)
    return by_family


def summarises(changes: Sequence[Listed], *, min_items: int = BULK_MIN_ITEMS) -> bool:
    """Whether people's messages for these changes hold a summary line, and so end with a link to the
    full list: what the cycle spends a record-history request on (`cycle/compare.py`), and only then."""
    return any(len(items) >= min_items for items in _families(changes).values())


def summarise(changes: Sequence[ChangeContext], *, min_items: int = BULK_MIN_ITEMS) -> list[Entry]:
    """The entries people see for one trial's changes (already in priority order): each change on
    its own, except that the changes of a list touching at least `min_items` items become one
    summary entry, placed where its most important change stood."""
    by_family = cast(dict[str, dict[str, list[ChangeContext]]], _families(changes))
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
    """One line for a list's bulk changes, grouped by what happened ("5 added: A; B · 41 removed: …"),
    the groups people act on first and, within each, the most important items first."""
    items = sorted(items, key=_importance)
    kind_of = _site_kind if family == "locations" else _generic_kind
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(kind_of(item[1]), []).append(item)
    order = sorted(groups, key=lambda k: _kind_order(k, len(groups[k])))
    texts = [
        _group_text(kind, _names(family, groups[kind][: _named_at_most(kind)]), len(groups[kind])) for kind in order
    ]
    spec = spec_for(family)
    noun = _NOUNS.get(family) or (spec.description if spec is not None else family)
    members = [c for _, changes in items for c in changes]
    return SummaryEntry(
        family=family,
        fields=tuple(c.field for c in members),
        summary=f"{noun}: {' · '.join(texts)}",
        severity=max((c.severity for c in members), key=lambda s: SEVERITY_RANK.get(s, 0)),
        count=len(members),
        items=len(items),
        rank=min(c.rank for c in members),
    )

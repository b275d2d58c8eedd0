"""The real successive versions in `pairs/` run through what a poll cycle does, as far as it is pure.

Shared by `tests/detect/test_real_pairs.py` and `bench/bench_pairs.py`. The data is found only through
`tests.support.shared`. Which pair is bookkeeping-only and which removed + added lines are the
same item are decided here from evidence independent of the code under test: `truth.json`'s
positional leaf diff (computed by a separate script) and the items' own facility/geoPoint/content.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.shared import pairs_dir
from watcher.config.settings import collect_settings
from watcher.detect import changes_between
from watcher.detect.catalog import field_kind
from watcher.detect.record import title_of
from watcher.models import Change, Trial
from watcher.notify.payloads import changes_payload, render_text
from watcher.notify.routing import for_stdout

DETECTED_AT = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)

# Leaves of protocolSection that move without a sponsor edit of substance (truth.json paths, indices dropped).
BOOKKEEPING_LEAVES = (
    "protocolSection.statusModule.lastUpdateSubmitDate",
    "protocolSection.statusModule.lastUpdatePostDateStruct.",
    "protocolSection.statusModule.statusVerifiedDate",
)


@dataclass(frozen=True, slots=True)
class Pair:
    nct_id: str
    old_name: str
    new_name: str
    truth: Mapping[str, Any]
    old: Mapping[str, Any]
    new: Mapping[str, Any]
    old_text: str
    new_text: str

    @property
    def id(self) -> str:
        return f"{self.nct_id}:{self.old_name[:-5]}->{self.new_name[:-5]}"

    @property
    def changed_leaves(self) -> list[str]:
        """Protocol and results leaves that differ (truth.json), list indices kept."""
        return [
            path
            for section in ("protocolSection", "resultsSection")
            for kind in ("changed", "added", "removed")
            for path in self.truth[section][kind]
        ]

    @property
    def bookkeeping_only(self) -> bool:
        return all(path.startswith(BOOKKEEPING_LEAVES) for path in self.changed_leaves)

    @property
    def annotation(self) -> bool:
        return any(p.startswith("annotationSection") for p in self.truth.get("otherSections", ()))


@cache
def truth() -> Mapping[str, Any]:
    data: Mapping[str, Any] = json.loads((pairs_dir() / "truth.json").read_text(encoding="utf-8"))
    return data


def pairs() -> Iterator[Pair]:
    root = pairs_dir()
    for nct_id, study in sorted(truth()["studies"].items()):
        for entry in study["pairs"]:
            old_text = _read(root / nct_id / entry["from"])
            new_text = _read(root / nct_id / entry["to"])
            yield Pair(
                nct_id,
                entry["from"],
                entry["to"],
                entry,
                json.loads(old_text),
                json.loads(new_text),
                old_text,
                new_text,
            )


def pair_ids() -> list[str]:
    return [
        f"{nct_id}:{e['from'][:-5]}->{e['to'][:-5]}"
        for nct_id, study in sorted(truth()["studies"].items())
        for e in study["pairs"]
    ]


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------
# The cycle's pure path, default settings (no channels: what `cycle` prints)
# ---------------------------------------------------------------------------------------

SETTINGS, _problems = collect_settings(None, {})
assert not _problems, _problems


@dataclass(frozen=True, slots=True)
class Outcome:
    changes: list[Change]
    notified: list[Change]
    subject: str
    body: str

    @property
    def lines(self) -> int:
        return len(self.body.splitlines()) if self.notified else 0


def run(pair: Pair) -> Outcome:
    """Stored version → new version → changes → routing → payload → text, as `cycle` does it."""
    trial = Trial(pair.nct_id)
    changes = changes_between(pair.old, pair.new)
    notified = for_stdout(trial, changes, SETTINGS)
    if not notified:
        return Outcome(changes, [], "", "")
    payload = changes_payload(trial, title_of(pair.new), notified, version=2, detected_at=DETECTED_AT)
    subject, body = render_text(payload, now=DETECTED_AT)
    return Outcome(changes, notified, subject, body)


# ---------------------------------------------------------------------------------------
# Removed + added lines that are the same item
# ---------------------------------------------------------------------------------------


def _fold(value: Any) -> str:
    text = unicodedata.normalize("NFKD", value) if isinstance(value, str) else ""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _geo(item: Mapping[str, Any]) -> tuple[float, float] | None:
    point = item.get("geoPoint") or {}
    lat, lon = point.get("lat"), point.get("lon")
    return (round(lat, 3), round(lon, 3)) if isinstance(lat, int | float) and isinstance(lon, int | float) else None


def _is_item(change: Change) -> tuple[str, str] | None:
    """(list, item name) when the change adds or removes a whole item of a keyed list."""
    if change.change == "changed":
        return None
    value = change.old if change.change == "removed" else change.new
    if change.field.startswith("locations."):
        whole = isinstance(value, dict) and ("facility" in value or "country" in value)
        return ("locations", change.field) if whole else None
    parent, _, _ = change.field.rpartition(".")
    while parent:
        if field_kind(parent) == "keyed":
            return parent, change.field
        parent, _, _ = parent.rpartition(".")
    return None


def same_site(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Evidence that two site records are one site: equal content but for status/contacts, or the same
    facility (as read) in the same country at the same place, or the same geoPoint and country with a
    facility name that reads nearly the same, or a site re-addressed: the same facility at the same zip
    code in another city, or another facility name at the same zip code and geoPoint."""
    if _fold(a.get("country")) != _fold(b.get("country")):
        return False
    strip = ("status", "contacts")
    if {k: v for k, v in a.items() if k not in strip} == {k: v for k, v in b.items() if k not in strip}:
        return True
    fa, fb = _fold(a.get("facility")), _fold(b.get("facility"))
    same_place = all(
        _fold(a.get(f)) == _fold(b.get(f)) or not _fold(a.get(f)) or not _fold(b.get(f))
        for f in ("city", "state", "zip")
    )
    if fa and fa == fb and (same_place or (_geo(a) is not None and _geo(a) == _geo(b))):
        return True
    zip_a = _fold(a.get("zip"))
    if zip_a and zip_a == _fold(b.get("zip")) and (fa == fb or (_geo(a) is not None and _geo(a) == _geo(b))):
        return True  # re-addressed: same facility and zip code, or the same zip code and geoPoint
    if fa and fb and _geo(a) is not None and _geo(a) == _geo(b):
        shorter, longer = sorted((fa, fb), key=len)
        return shorter in longer or _near(fa, fb)
    return False


def _near(a: str, b: str) -> bool:
    from difflib import SequenceMatcher

    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.85


def same_item(a: Any, b: Any) -> bool:
    """Other lists: equal content, or all but one field equal with two or more non-empty ones agreeing."""
    if a == b:
        return True
    if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
        return False
    differing = [k for k in a if a[k] != b[k]]
    agreeing = [k for k in a if a[k] == b[k] and a[k] not in (None, "", [], {})]
    return len(differing) == 1 and len(agreeing) >= 2


def removed_added_same(changes: Sequence[Change]) -> list[tuple[Change, Change]]:
    """Pairs (removed, added) of whole items in the same list that the evidence says are one item.

    Each removed item is counted once, against the first added item of its list that is the same."""
    removed: dict[str, list[Change]] = {}
    added: dict[str, list[Change]] = {}
    for c in changes:
        item = _is_item(c)
        if item is not None:
            (removed if c.change == "removed" else added).setdefault(item[0], []).append(c)
    found: list[tuple[Change, Change]] = []
    for kind, gone in removed.items():
        fresh = list(added.get(kind, ()))
        test = same_site if kind == "locations" else same_item
        for r in gone:
            for a in fresh:
                if isinstance(r.old, dict) and isinstance(a.new, dict) and test(r.old, a.new):
                    found.append((r, a))
                    fresh.remove(a)
                    break
    return found


_VALUE_LINE = re.compile(r"(?P<old>.+?) → (?P<new>.+)$")


def same_reading_lines(body: str) -> list[str]:
    """Lines `old → new` whose two sides read the same."""
    out = []
    for line in body.splitlines():
        match = _VALUE_LINE.search(line)
        if match and match["old"].split(": ", 1)[-1].strip() == match["new"].strip():
            out.append(line)
    return out


# ---------------------------------------------------------------------------------------
# Is each change named in what a person reads?
# ---------------------------------------------------------------------------------------

_NAME_KEYS = ("facility", "measure", "label", "name", "citation", "pmid", "title", "id", "url", "filename")
NAME_CHARS = 40
"""Characters of an item's name (folded) that must appear in the message for it to count as named."""


def _fields(record: Mapping[str, Any]) -> Mapping[str, Any]:
    from watcher.detect.fields import extract_fields

    return extract_fields(record)


def _items(change: Change, pair: Pair) -> list[Mapping[str, Any]]:
    """The list item a change is about, as each version holds it: whole-item changes carry it; a
    sub-field change's item is looked up under the longest name that is a field of either version
    (a site's contact or coordinates belong to the site, whatever the sub-field holds)."""
    value = change.new if change.change != "removed" else change.old
    site = change.field.startswith("locations.")
    if isinstance(value, dict) and ("facility" in value if site else any(k in value for k in _NAME_KEYS)):
        return [value]
    found = []
    for record in (pair.new, pair.old):
        fields = _fields(record)
        head = change.field
        while "." in head:
            item = fields.get(head)
            if site and isinstance(item, dict) and head != change.field:
                found.append(item)
                break
            parent, _, key = head.rpartition(".")
            whole = fields.get(parent)
            if (
                not site
                and isinstance(whole, dict)
                and isinstance(whole.get(key), dict)
                and field_kind(parent) == "keyed"
            ):
                found.append(dict(whole[key]))
                break
            head = parent
    return found


def item_names(change: Change, pair: Pair) -> list[str]:
    """The words that name the item a change is about in either version (a site's facility, an
    arm's label, an outcome's measure, a reference's citation); [] for a change of a plain field."""
    names = []
    for item in _items(change, pair):
        name = next((item[k] for k in _NAME_KEYS if isinstance(item.get(k), str | int) and item.get(k)), None)
        if name is not None:
            # a site by facility and city: "GSK Investigational Site" alone names none of 43 sites
            names.append(f"{name} {item.get('city') or ''}" if "facility" in item else str(name))
    return names


def named(pair: Pair, outcome: Outcome) -> tuple[int, int]:
    """(named, notified): notified changes whose item is named (in either version's words) in the
    subject or body; a plain field's change counts as named when a line of its own shows it."""
    text = _fold(outcome.subject + "\n" + outcome.body)
    count = 0
    for change in outcome.notified:
        names = item_names(change, pair)
        if names:
            count += any(_fold(name)[:NAME_CHARS] in text for name in names)
        else:
            count += _plain_named(change, outcome.body, text)
    return count, len(outcome.notified)


def _plain_named(change: Change, body: str, text: str) -> bool:
    """A plain field's own line: its field name (or, for a criterion, "Exclusion criterion 9") opens a
    line, or its value is shown."""
    from watcher.detect.describe import format_value

    words = change.field
    if change.field.startswith("eligibility.criteria."):
        section, _, number = change.field.removeprefix("eligibility.criteria.").partition(".")
        words = f"{section} criterion {number}"
    if any(line.casefold().startswith(words.casefold()) for line in body.splitlines()):
        return True
    value = change.new if change.change != "removed" else change.old
    shown = _fold(format_value(value, width=60))[:NAME_CHARS]
    return bool(shown) and shown in text

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
    facility name that reads nearly the same."""
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

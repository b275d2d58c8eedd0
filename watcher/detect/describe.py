"""Values in words: the one renderer of an old or a new value and of a `field: old → new` line.

Every channel, the feeds, the CLI and user templates show changes through these functions, so a
value reads the same wherever it appears.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from watcher.detect.catalog import spec_for
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

    Two long values that share a beginning (a reworded criterion, a longer summary, a list
    that gained an item at its end) are both shown from a little before the first character
    where they differ.
    """
    before, after = _one_line(old), _one_line(new)
    if old is not None and new is not None and max(len(before), len(after)) > width:
        same = next(
            (i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), min(len(before), len(after))
        )
        start = max(0, same - width // 3)
        if start:
            space = before.rfind(" ", 0, start)
            start = space + 1 if space > 0 and start - space < width // 3 else start
            before, after = "…" + before[start:], "…" + after[start:]
    return _truncate(before, width), _truncate(after, width)


Op = Literal["=", "-", "+"]
Segment = tuple[Op, str]
"""A run of words of a word-level diff: kept (`=`), removed (`-`) or added (`+`)."""

WORD_DIFF_MIN = 120
"""Texts at least this long (on either side) are shown as a word-level diff, not as old → new."""

WORD_DIFF_CONTEXT = 6
"""Unchanged words kept on each side of an edit; longer unchanged runs are elided with `…`."""

WORD_DIFF_MAX = 600
"""Characters of a word diff shown at most; the rest is cut with `…`."""

PLAIN_MARKS = ("[-", "-]", "{+", "+}")
"""How plain text marks removed and added words (the `git diff --word-diff=plain` convention)."""


def _words(value: Json) -> list[str] | None:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(_SPACE.sub(" ", v).strip() for v in value).split()
    return None


def word_diff(
    old: Json, new: Json, *, min_length: int = WORD_DIFF_MIN, context: int = WORD_DIFF_CONTEXT
) -> list[Segment] | None:
    """The words that changed between two long texts, with a little unchanged context.

    None when a word diff does not apply: a value is not text (or a list of texts), or both are
    shorter than `min_length` (old → new reads better). An empty list: the same words, only
    spacing or line breaks differ.
    """
    a, b = _words(old), _words(new)
    if a is None or b is None or max(len(" ".join(a)), len(" ".join(b))) < min_length:
        return None
    segments: list[Segment] = []
    opcodes = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    if all(tag == "equal" for tag, *_ in opcodes):
        return []
    last = len(opcodes) - 1
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            run = a[i1:i2]
            head = run[:context] if index else []
            tail = run[-context:] if index < last else []
            if len(run) <= len(head) + len(tail):
                segments.append(("=", " ".join(run)))
            else:
                kept = [" ".join(head)] if head else []
                kept.append("…")
                if tail:
                    kept.append(" ".join(tail))
                segments.append(("=", " ".join(kept)))
            continue
        if tag in ("delete", "replace"):
            segments.append(("-", " ".join(a[i1:i2])))
        if tag in ("insert", "replace"):
            segments.append(("+", " ".join(b[j1:j2])))
    return _cap(segments, WORD_DIFF_MAX)


def _cap(segments: list[Segment], limit: int) -> list[Segment]:
    out: list[Segment] = []
    used = 0
    for op, text in segments:
        if used + len(text) > limit:
            room = max(limit - used, 20)
            out.append((op, _truncate(text, room)))
            if len(out) < len(segments):
                out.append(("=", "…"))
            break
        out.append((op, text))
        used += len(text) + 1
    return out


def render_diff(segments: Sequence[Segment], marks: tuple[str, str, str, str] = PLAIN_MARKS, escape: Any = str) -> str:
    """A word diff in one line: kept words as they are, removed and added ones between `marks`
    (open-removed, close-removed, open-added, close-added); `escape` makes each run safe first."""
    parts = []
    for op, text in segments:
        if op == "-":
            parts.append(f"{marks[0]}{escape(text)}{marks[1]}")
        elif op == "+":
            parts.append(f"{marks[2]}{escape(text)}{marks[3]}")
        else:
            parts.append(escape(text))
    return " ".join(parts)


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
        return f"{count} item{'s' if count != 1 else ''}: " + "; ".join(_one_line(v) for v in value.values())
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
    """The old and new value of a stored change as shown to people, cut around their first
    difference; an addition has no old value."""
    kind = change.get("change")
    if kind == "added":
        return "(none)", format_value(change.get("new"))
    if kind == "removed":
        return format_value(change.get("old")), "(removed)"
    return format_pair(change.get("old"), change.get("new"))


def change_diff(change: Mapping[str, Json]) -> list[Segment] | None:
    """The word diff of a changed long text (see `word_diff`), None for every other change."""
    if change.get("change") != "changed":
        return None
    return word_diff(change.get("old"), change.get("new"))


SPACING_ONLY = "only spacing or line breaks changed"

SENTENCE_EVENTS = frozenset({"results_submission"})
"""Events whose one-sentence summary replaces `old → new`: their values are raw structs
(`type: RELEASE; date: 2026-01-23`) that say less than the sentence."""


def event_sentence(change: Mapping[str, Json]) -> str | None:
    """The event's sentence when it stands in for the values (see `SENTENCE_EVENTS`)."""
    event = change.get("event")
    if isinstance(event, Mapping) and event.get("kind") in SENTENCE_EVENTS and isinstance(event.get("summary"), str):
        return str(event["summary"])
    return None


def change_values(change: Mapping[str, Json]) -> str:
    """What a `field: …` line says after the field: `old → new`, a word diff, or a sentence."""
    sentence = event_sentence(change)
    if sentence:
        return sentence
    diff = change_diff(change)
    if diff is not None:
        return render_diff(diff) if diff else SPACING_ONLY
    old, new = change_texts(change)
    return SPACING_ONLY if old == new else f"{old} → {new}"


def change_line(change: Mapping[str, Json]) -> str:
    """`field: old → new`, the one-line form used in every plain-text body (the field in words,
    below: a site or an arm by name, never by its key); a long text shows
    its word diff instead (`field: … [-three-] {+four+} arms …`), and a change whose two
    sides read the same says so rather than showing them twice."""
    event = change.get("event")
    data = event.get("data") if isinstance(event, Mapping) else None
    label = field_label(str(change["field"]), data if isinstance(data, Mapping) else None)
    return f"{label}: {change_values(change)}"


# -- field names in words ------------------------------------------------------------------------
# Items of keyed lists are stored under keys built for matching (`facility|city|state|country`
# lowercased, an outcome's measure, a reference's PMID). People read the item instead: a site by its
# facility and place, an arm or an outcome by its label in quotes, so that a label holding "→"
# (`Arm 3: X → Y`) never reads as a rename.

_ITEM_NOUNS = {
    "armsInterventions.arms": "Arm",
    "armsInterventions.interventions": "Intervention",
    "outcomes.primary": "Primary outcome",
    "outcomes.secondary": "Secondary outcome",
    "outcomes.other": "Other outcome",
    "references.references": "Reference",
    "references.seeAlsoLinks": "Link",
    "references.availIpds": "Shared document",
    "contacts.central": "Central contact",
    "contacts.officials": "Official",
    "sponsor.collaborators": "Collaborator",
    "identification.secondaryIds": "Secondary ID",
    "documents.largeDocs": "Document",
}

_SITE_PARTS = {"geoPoint": "map position", "geoPoint.lat": "latitude", "geoPoint.lon": "longitude"}

_SUB_FIELD = re.compile(r"^[a-z][A-Za-z]*$")


def _capital_words(text: str) -> str:
    """A lowercased key part read again as a name: each word's first letter upper case."""
    return " ".join(w[:1].upper() + w[1:] for w in text.split(" "))


def site_name(key: str) -> str:
    """`facility|city|state[|zip]|country` (a site's key) as people read it: `Facility (City, State, Country)`."""
    facility, *place = key.split("|")
    where = ", ".join(_capital_words(p) for p in place if p and not any(ch.isdigit() for ch in p))
    name = _capital_words(facility) or "Site"
    return f"{name} ({where})" if where else name


def split_site(field: str) -> tuple[str, str]:
    """`locations.<key>[.<part>]` → (key, part); the part follows the key's last `|`."""
    rest = field.removeprefix("locations.")
    bar = rest.rfind("|")
    dot = rest.find(".", bar + 1) if bar >= 0 else -1
    return (rest[:dot], rest[dot + 1 :]) if dot >= 0 else (rest, "")


def _keyed_family(field: str) -> str | None:
    parts = field.split(".")
    if len(parts) < 3:
        return None
    prefix = ".".join(parts[:2])
    spec = spec_for(prefix)
    return prefix if spec is not None and spec.kind == "keyed" else None


def spelled_site(site: Mapping[str, Json] | None) -> tuple[str, str | None]:
    """(facility, "city, state, country") as the record spells them, from a site event's data (or a
    whole site record); "" for a facility it does not hold, None for an address it does not carry
    (events stored before they carried the country)."""
    if not isinstance(site, Mapping):
        return "", None
    facility = site.get("facility")
    parts = ("city", "state", "country")
    place = ", ".join(str(site[k]) for k in parts if isinstance(site.get(k), str) and site[k])
    return (facility if isinstance(facility, str) else ""), place if "country" in site else None


def field_label(field: str, site: Mapping[str, Json] | None = None) -> str:
    """The words for a field in a `field: old → new` line: a site, an arm, an outcome named as
    people know it; every other field keeps its documented name (`status.overallStatus`). A site is
    named as the record spells it (`site`: its event's data, facility and address); its key, which
    is lowercased, only for a change stored before events carried the spelling."""
    if field.startswith("locations."):
        key, part = split_site(field)
        facility, place = spelled_site(site)
        if place is None:  # a change stored before its event carried the site's spelling
            key_name, _, key_place = site_name(key).partition(" (")
            facility = facility or (key_name if key.split("|")[0] else "")
            place = key_place.rstrip(")")
        if part == "facility":  # the old and new names follow: the place alone says which site
            return f"Site in {place} · name" if place else "Site · name"
        label = "Site" + (f" {facility}" if facility else "") + (f" ({place})" if place else "")
        return f"{label} · {_SITE_PARTS.get(part, part)}" if part else label
    if field.startswith("eligibility.criteria."):
        section, _, number = field.removeprefix("eligibility.criteria.").partition(".")
        noun = "Criterion" if section == "general" else f"{section.capitalize()} criterion"
        return f"{noun} {number}" if number else noun
    family = _keyed_family(field)
    if family is None:
        return field
    rest = field.removeprefix(family + ".")
    head, _, last = rest.rpartition(".")
    key, part = (head, last) if head and _SUB_FIELD.match(last) else (rest, "")
    noun = _ITEM_NOUNS.get(family, family)
    if family == "armsInterventions.interventions" and "|" in key:
        kind, _, name = key.partition("|")
        key = f"{name} ({kind.lower()})" if kind else name
    label = f"{noun} “{key}”"
    return f"{label} · {part}" if part else label

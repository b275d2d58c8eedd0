"""Field names in words: what a line says before its values, never an item's internal key.

Items of keyed lists are stored under keys built for matching (`facility|city|state|country`
lowercased, an outcome's measure, a reference's PMID). People read the item instead: a site by
its facility and place, an arm or an outcome by its label in quotes, so that a label holding
"→" (`Arm 3: X → Y`) never reads as a rename.
"""

from __future__ import annotations

import re

from watcher.detect.catalog import spec_for

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

_PART = re.compile(r"^[a-z][A-Za-z]*$")


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


def field_label(field: str) -> str:
    """The words for a field in a `field: old → new` line: a site, an arm, an outcome named as
    people know it; every other field keeps its documented name (`status.overallStatus`)."""
    if field.startswith("locations."):
        key, part = split_site(field)
        label = f"Site {site_name(key)}"
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
    key, part = (head, last) if head and _PART.match(last) else (rest, "")
    noun = _ITEM_NOUNS.get(family, family)
    if family == "armsInterventions.interventions" and "|" in key:
        kind, _, name = key.partition("|")
        key = f"{name} ({kind.lower()})" if kind else name
    label = f"{noun} “{key}”"
    return f"{label} · {part}" if part else label

"""Which item of a keyed list in the new version is which item of the old one.

Extraction names each version's items on its own (`watcher.detect.keys.keyed`), so a name can
depend on the other items: when a second "Research Site" appears in Haifa, both get their zip
code appended, and an edited facility gets a new key. Naming alone would then report a site
that did not go anywhere as removed + added. `align` matches the items of every keyed list
(and the `locations.<key>` family) between two versions in stages, most certain first:

1. same name and equal content;
2. whole-item equality;
3. the list's identity key (`facility|city|state|country` for a site, the measure of an outcome, ...);
4. the identity key plus zip code, then plus geoPoint;
5. a clearly-same item: a site with the same facility and country whose city/state/zip were
   filled in or corrected, a re-encoded or slightly renamed facility at the same geoPoint, a site
   re-addressed (same facility and zip code, another city or geoPoint; or a facility renamed at the
   same zip code and geoPoint);
   any other item that differs in one field while at least two others (non-empty) agree,
   e.g. an outcome reworded with the same time frame and description, or whose differing texts are
   each only touched up or prefixed ("X" → "Arm A: X");
6. what is left of an identity-key group, paired in content order (the seed's `#n` rule).

A stage pairs only items that have exactly one candidate on each side. A matched new item
takes the old item's name, so the diff reports it as changed, sub-field by sub-field; an
unmatched new item keeps its own name unless an old item had it, and is then disambiguated
(next key, then `#n`). Names are thus stable from one version to the next whatever else
appears. Pure, and nearly free when nothing moved: only the items whose names differ or
whose content changed are looked at.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from difflib import SequenceMatcher
from functools import lru_cache

from watcher.detect.catalog import field_kind
from watcher.detect.fields import KEYS
from watcher.detect.keys import KeyFunc, location_key, location_zip_key, normalize
from watcher.models import Json

__all__ = ["align", "match_items"]

LOCATIONS = "locations."
_LOCATION_KEYS: tuple[KeyFunc, ...] = KEYS["locations.<key>"]


def align(old: Mapping[str, Json] | None, new: Mapping[str, Json]) -> Mapping[str, Json]:
    """`new` with the items of its keyed lists renamed after the old items they match.

    Only names change: every value of `new` is there, under the same or another name. Returns
    `new` itself when nothing needs renaming, which is when no list both lost and gained a name.
    """
    if old is None:
        return new
    lists = _aligned_lists(old, new)
    sites = _aligned_sites(old, new)
    if not lists and sites is None:
        return new
    out = {**new, **lists}
    if sites is not None:
        moved, renamed = sites
        for key in moved:
            del out[LOCATIONS + key]
        for key, item in renamed.items():
            out[LOCATIONS + key] = item
    return out


def _aligned_lists(old: Mapping[str, Json], new: Mapping[str, Json]) -> dict[str, Json]:
    """Each keyed-list field of `new` whose items need new names, with its items renamed."""
    out: dict[str, Json] = {}
    for name, keys in KEYS.items():
        after, before = new.get(name), old.get(name)
        if type(after) is not dict or type(before) is not dict or before is after or field_kind(name) != "keyed":
            continue
        subsets = _unsettled(before, after, before.keys() - after.keys(), after.keys() - before.keys(), "")
        if subsets is not None:
            renamed = _rename(*subsets, keys, _taken(before, after, subsets[1]))
            out[name] = {**{k: v for k, v in after.items() if k not in subsets[1]}, **renamed}
    return out


def _aligned_sites(old: Mapping[str, Json], new: Mapping[str, Json]) -> tuple[Iterable[str], dict[str, Json]] | None:
    """The `locations.<key>` family, one field per site: the keys of the new sites that move, and the
    new sites by their aligned keys; None when no site key was both lost and gained."""
    gone = [k for k in old.keys() - new.keys() if k.startswith(LOCATIONS)]
    added = [k for k in new.keys() - old.keys() if k.startswith(LOCATIONS)]
    if not gone or not added:
        return None
    subsets = _unsettled(old, new, gone, added, LOCATIONS)
    if subsets is None:
        return None
    old_sites, new_sites = subsets
    return new_sites.keys(), _rename(old_sites, new_sites, _LOCATION_KEYS, _taken(old, new, new_sites, LOCATIONS))


def _unsettled(
    old: Mapping[str, Json], new: Mapping[str, Json], gone: Iterable[str], added: Iterable[str], prefix: str
) -> tuple[dict[str, Json], dict[str, Json]] | None:
    """The items (by name without `prefix`) that matching must place: names lost or gained, and names
    kept with other content; None when no name was both lost and gained (names then already align)."""
    cut = len(prefix)
    old_items = {k[cut:]: old[k] for k in gone if type(old[k]) is dict or not prefix}
    new_items = {k[cut:]: new[k] for k in added if type(new[k]) is dict or not prefix}
    if not old_items or not new_items:
        return None
    for k, after in new.items():
        if k.startswith(prefix) and k in old:
            before = old[k]
            if before is not after and before != after and (type(after) is dict or not prefix):
                old_items[k[cut:]] = before
                new_items[k[cut:]] = after
    return old_items, new_items


def _taken(
    old: Mapping[str, Json], new: Mapping[str, Json], moving: Mapping[str, Json], prefix: str = ""
) -> Callable[[str], bool]:
    """Whether a name belongs to an old item or to a new one that keeps its name."""

    def taken(name: str) -> bool:
        full = prefix + name
        return full in old or (full in new and name not in moving)

    return taken


def _rename(
    old: dict[str, Json], new: dict[str, Json], keys: Sequence[KeyFunc], taken: Callable[[str], bool]
) -> dict[str, Json]:
    """The new items by their aligned names; `taken` says which names others have (old items or kept new ones)."""
    pairs = match_items(old, new, keys)
    matched_new = {n: o for o, n in pairs.items()}
    out: dict[str, Json] = {}
    for name, item in new.items():
        if name in matched_new:
            out[matched_new[name]] = item
    for name, item in new.items():
        if name in matched_new:
            continue
        candidates = [name] + ([k(item) for k in keys] if type(item) is dict else [])
        chosen = next((c for c in candidates if c not in out and not taken(c) and c not in old), None)
        n = 1
        while chosen is None:
            n += 1
            c = f"{name}#{n}"
            chosen = c if c not in out and not taken(c) else None
        out[chosen] = item
    return out


# ---------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------

Stage = Callable[[Json], Hashable | None]


def match_items(old: Mapping[str, Json], new: Mapping[str, Json], keys: Sequence[KeyFunc]) -> dict[str, str]:
    """Old name → new name of every matched pair of items (see the module docstring for the stages)."""
    pairs: dict[str, str] = {}
    rest_old: dict[str, Json] = {}
    for name, item in old.items():
        other = new.get(name, ...)
        if other is item or other == item:
            pairs[name] = name
        else:
            rest_old[name] = item
    if not rest_old:
        return pairs
    rest_new = {n: v for n, v in new.items() if n not in pairs}
    if not rest_new:
        return pairs
    is_site = keys is _LOCATION_KEYS
    # Whole-item equality, among the items whose name is on one side only (the others have a different
    # counterpart under their own name: canonical forms of hundreds of edited sites are not free).
    _pair_unique(
        rest_old, rest_new, _canonical_form, pairs, old_only=lambda n: n not in new, new_only=lambda n: n not in old
    )
    stages: list[Stage] = [_key_stage(keys[0])]
    if is_site:
        stages += [_key_stage(location_zip_key), _site_geo_key]
    for stage in stages:
        _pair_unique(rest_old, rest_new, stage, pairs)
        if not rest_old or not rest_new:
            return pairs
    if is_site:
        _pair_similar(rest_old, rest_new, _same_site, pairs, _country)
    else:
        _pair_similar(rest_old, rest_new, _same_item, pairs, _no_block)
    if rest_old and rest_new:
        _pair_groups(rest_old, rest_new, keys[0], pairs)
    return pairs


def _pair_unique(
    old: dict[str, Json],
    new: dict[str, Json],
    stage: Stage,
    pairs: dict[str, str],
    *,
    old_only: Callable[[str], bool] | None = None,
    new_only: Callable[[str], bool] | None = None,
) -> None:
    by_old = _groups(old, stage, old_only)
    by_new = _groups(new, stage, new_only)
    for value, olds in by_old.items():
        news = by_new.get(value)
        if news is not None and len(olds) == 1 and len(news) == 1:
            pairs[olds[0]] = news[0]
            del old[olds[0]], new[news[0]]


def _groups(items: Mapping[str, Json], stage: Stage, only: Callable[[str], bool] | None) -> dict[Hashable, list[str]]:
    out: dict[Hashable, list[str]] = {}
    for name, item in items.items():
        if only is not None and not only(name):
            continue
        value = stage(item)
        if value is not None:
            out.setdefault(value, []).append(name)
    return out


def _pair_similar(
    old: dict[str, Json], new: dict[str, Json], same: Callable[[Json, Json], bool], pairs: dict[str, str], block: Stage
) -> None:
    """Pairs items that `same` finds in each other only, comparing within a `block` (a site's country)."""
    blocks: dict[Hashable, list[tuple[str, Json]]] = {}
    for n, nv in new.items():
        blocks.setdefault(block(nv), []).append((n, nv))
    if sum(len(blocks.get(block(ov), ())) for ov in old.values()) > 250_000:
        return
    candidates = {o: [n for n, nv in blocks.get(block(ov), ()) if same(ov, nv)] for o, ov in old.items()}
    wanted: dict[str, int] = {}
    for found in candidates.values():
        for n in found:
            wanted[n] = wanted.get(n, 0) + 1
    for o, found in candidates.items():
        if len(found) == 1 and wanted[found[0]] == 1:
            pairs[o] = found[0]
            del old[o], new[found[0]]


def _pair_groups(old: dict[str, Json], new: dict[str, Json], key: KeyFunc, pairs: dict[str, str]) -> None:
    """Leftovers that share an identity key, paired in content order (as `keyed` numbers them)."""

    def by_key(items: Mapping[str, Json]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in sorted(items, key=lambda n: _canonical_form(items[n])):
            item = items[name]
            out.setdefault(key(item) if type(item) is dict else _canonical(item), []).append(name)
        return out

    new_groups = by_key(new)
    for k, olds in by_key(old).items():
        for o, n in zip(olds, new_groups.get(k, ()), strict=False):
            pairs[o] = n
            del old[o], new[n]


def _canonical(value: Json) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _canonical_form(item: Json) -> str:
    return _canonical(normalize(item))


def _key_stage(key: KeyFunc) -> Stage:
    def stage(item: Json) -> Hashable | None:
        return key(item) if type(item) is dict else None

    return stage


def _geo(item: Mapping[str, Json]) -> tuple[float, float] | None:
    point = item.get("geoPoint")
    if type(point) is not dict:
        return None
    lat, lon = point.get("lat"), point.get("lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    return round(float(lat), 4), round(float(lon), 4)


def _site_geo_key(item: Json) -> Hashable | None:
    if type(item) is not dict:
        return None
    geo = _geo(item)
    return None if geo is None else (location_key(item), geo)


def _fold(value: Json) -> str:
    """A facility or place name as read, not as encoded: accents, case, punctuation and spacing dropped."""
    return _fold_text(value) if isinstance(value, str) else ""


@lru_cache(maxsize=8192)
def _fold_text(value: str) -> str:
    text = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _country(item: Json) -> Hashable:
    return _fold(item.get("country")) if type(item) is dict else None


def _no_block(item: Json) -> Hashable:
    return None


def _compatible(a: Json, b: Json) -> bool:
    """Equal as read, or filled in on one side."""
    fa, fb = _fold(a), _fold(b)
    return fa == fb or not fa or not fb


def _same_site(a: Json, b: Json) -> bool:
    if type(a) is not dict or type(b) is not dict:
        return False
    if _fold(a.get("country")) != _fold(b.get("country")):
        return False
    facility_a, facility_b = _fold(a.get("facility")), _fold(b.get("facility"))
    places_agree = all(_compatible(a.get(f), b.get(f)) for f in ("city", "state", "zip"))
    geo_a, geo_b = _geo(a), _geo(b)
    same_facility = facility_a != "" and facility_a == facility_b
    if (same_facility and places_agree) or _readdressed(a, b, same_facility, geo_a is not None and geo_a == geo_b):
        return True
    if (
        geo_a is None
        or geo_a != geo_b
        or not facility_a
        or not facility_b
        or (_fold(a.get("city")) != _fold(b.get("city")) and not places_agree)
    ):
        return False
    if facility_a in facility_b or facility_b in facility_a:
        return True
    return SequenceMatcher(None, facility_a, facility_b, autojunk=False).ratio() >= 0.8


def _readdressed(a: Mapping[str, Json], b: Mapping[str, Json], same_facility: bool, same_geo: bool) -> bool:
    """One site given another address: the same facility at the same zip code (a city shortened
    from "N. Efkapria-Pavlos Melas" to "Pavlos Melas", a district named by its city), or a facility
    renamed at the same zip code and the same geoPoint."""
    zip_a = _fold(a.get("zip"))
    if not zip_a or zip_a != _fold(b.get("zip")):
        return False
    return same_facility or same_geo


CLOSE_EDIT = 0.85
"""Two texts this similar (difflib ratio) are one text edited, e.g. "in 2L" → "in 2/3L"."""


def _same_item(a: Json, b: Json) -> bool:
    """One field differs and at least two non-empty ones agree (a reworded outcome, a renamed arm);
    or every differing field is a text edited only slightly and at least one other field agrees
    (an arm whose label and description were both touched up)."""
    if type(a) is not dict or type(b) is not dict or a.keys() != b.keys():
        return False
    differing = [k for k in a if a[k] != b[k] and normalize(a[k]) != normalize(b[k])]
    agreeing = [k for k in a if k not in differing and a[k] not in (None, "", [], {})]
    if len(differing) <= 1:
        return len(agreeing) >= 2
    return bool(agreeing) and all(_close_text(a[k], b[k]) for k in differing)


def _close_text(a: Json, b: Json) -> bool:
    """Two texts that are one text edited: slightly ("in 2L" → "in 2/3L"), or one holds the other
    whole as read ("Gocatamig" → "Arm A: Gocatamig")."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    fa, fb = _fold(a), _fold(b)
    if fa and fb and (fa in fb or fb in fa):
        return True
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= CLOSE_EDIT

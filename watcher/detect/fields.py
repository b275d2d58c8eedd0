"""A study record as the API returns it → its flat, named fields.

Every part of the record lands in some field, so nothing real can be missed: the catalog
(`watcher.detect.catalog`) names the parts we know, and any key the catalog does not know
(the API schema drifts) is kept under a generic name, `<module prefix>.<json key>`, never dropped.

Lists with a natural identity (sites, arms, outcomes, ...) become mappings from that
identity to the item (`watcher.detect.keys`), so reordering is never a change and an edit
names its item. All other values are kept as the record has them, shared rather than copied,
because extraction runs on every poll of records up to megabytes; `keys.normalize` gives their
order-insensitive form (sets sorted, nested identity lists keyed), which is what
`watcher.detect.diff` compares and reports. Each results module is one field, reported by digest:
telling *that* 650 kB of adverse-event tables changed is cheap, describing *how* is not
this stage's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watcher.detect.catalog import CATALOG, GENERIC_PREFIXES, FieldSpec
from watcher.detect.keys import (
    KeyFunc,
    abbrev_key,
    filename_key,
    id_key,
    id_type_key,
    keyed,
    label_key,
    location_key,
    location_zip_key,
    measure_key,
    measure_time_key,
    name_key,
    name_role_key,
    reference_key,
    type_name_key,
    url_key,
)
from watcher.models import Json

_CATALOG_NAMES = frozenset(spec.name for spec in CATALOG)

# How the items of each keyed field are named, first key first (each FieldSpec's `key` says it in words).
KEYS: Mapping[str, tuple[KeyFunc, ...]] = {
    "outcomes.primary": (measure_key, measure_time_key),
    "outcomes.secondary": (measure_key, measure_time_key),
    "outcomes.other": (measure_key, measure_time_key),
    "armsInterventions.arms": (label_key,),
    "armsInterventions.interventions": (type_name_key,),
    "sponsor.collaborators": (name_key,),
    "identification.secondaryIds": (id_type_key,),
    "contacts.central": (name_role_key,),
    "contacts.officials": (name_role_key,),
    "references.references": (reference_key,),
    "references.seeAlsoLinks": (url_key,),
    "references.availIpds": (id_type_key,),
    "documents.largeDocs": (filename_key,),
    "locations.<key>": (location_key, location_zip_key),
    **{
        f"derived.{browse}.{part}": ((abbrev_key,) if part == "browseBranches" else (id_key,))
        for browse in ("conditionBrowse", "interventionBrowse")
        for part in ("meshes", "ancestors", "browseLeaves", "browseBranches")
    },
}


class _Node:
    """The catalog as a tree over JSON paths, for one walk of the record."""

    __slots__ = ("children", "prefix", "spec")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.spec: FieldSpec | None = None
        self.prefix: str | None = None


def _build_tree() -> _Node:
    root = _Node()
    for spec in CATALOG:
        node = root
        for part in spec.source.split("."):
            node = node.children.setdefault(part, _Node())
        node.spec = spec
    for path, prefix in GENERIC_PREFIXES.items():
        node = root
        for part in path.split(".") if path else ():
            node = node.children.setdefault(part, _Node())
        node.prefix = prefix
    return root


_TREE = _build_tree()


def extract_fields(study: Mapping[str, Any]) -> dict[str, Json]:
    """The study's fields by name, every part of the record accounted for.

    Absent parts give absent fields (not None), so a module that appears or disappears
    reports its fields as added or removed. Keyed lists are keyed here; everything else is
    the record's own value, shared, not copied: treat the result as read-only, and use
    `normalize` (as `watcher.detect.diff` does) for the order-insensitive form of a value.
    """
    out: dict[str, Json] = {}
    _walk(study, _TREE, "record", (), out)
    return out


def _walk(value: Mapping[str, Any], node: _Node, prefix: str, rest: tuple[str, ...], out: dict[str, Json]) -> None:
    children = node.children
    for key, child_value in value.items():
        child = children.get(key)
        if child is None:
            _generic(prefix, (*rest, key), child_value, out)
            continue
        spec = child.spec
        if spec is not None:
            if spec.kind in _AS_IS:
                out[spec.name] = child_value
            else:
                _emit(spec, child_value, out)
        elif type(child_value) is dict or isinstance(child_value, Mapping):
            if child.prefix is not None:
                _walk(child_value, child, child.prefix, (), out)
            else:
                _walk(child_value, child, prefix, (*rest, key), out)
        else:
            _generic(prefix, (*rest, key), child_value, out)


_AS_IS = frozenset({"value", "text", "date", "set", "criteria", "digest"})


def _generic(prefix: str, path: tuple[str, ...], value: Json, out: dict[str, Json]) -> None:
    name = ".".join((prefix, *path))
    if name in _CATALOG_NAMES:
        name = ".".join((prefix, "unknown", *path))
    out[name] = value


def _emit(spec: FieldSpec, value: Json, out: dict[str, Json]) -> None:
    if spec.kind == "family":
        if type(value) is list:
            for key, item in keyed(value, KEYS[spec.name]).items():
                out["locations." + key] = item
        else:
            out[spec.name.replace("<key>", "?")] = value
    elif spec.kind == "keyed" and type(value) is list:
        out[spec.name] = keyed(value, KEYS[spec.name])
    else:
        out[spec.name] = value

"""Identity and normal form of record values: the keys that name a list's items, `keyed`,
`normalize` and `fingerprint`.

Lists with a natural identity (sites, arms, outcomes, ...) become mappings from that identity
to the item, so reordering is never a change and an edit names its item; which field is keyed
by which of the key functions below is decided in `watcher.detect.fields`. Values are kept as the
record has them, shared rather than copied; `normalize` gives their order-insensitive form (sets
sorted, nested identity lists keyed), which is what `watcher.detect.diff` compares and reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from watcher.models import Json

KeyFunc = Callable[[Mapping[str, Any]], str]


def _s(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    return value if type(value) is str else "" if value is None else str(value)


def location_key(item: Mapping[str, Any]) -> str:
    get = item.get
    return f"{get('facility') or ''}|{get('city') or ''}|{get('state') or ''}|{get('country') or ''}".lower()


def location_zip_key(item: Mapping[str, Any]) -> str:
    get = item.get
    parts = (get("facility"), get("city"), get("state"), get("zip"), get("country"))
    return "|".join("" if p is None else str(p) for p in parts).lower()


def label_key(item: Mapping[str, Any]) -> str:
    return _s(item, "label")


def type_name_key(item: Mapping[str, Any]) -> str:
    return f"{_s(item, 'type')}|{_s(item, 'name')}"


def measure_key(item: Mapping[str, Any]) -> str:
    return _s(item, "measure")


def measure_time_key(item: Mapping[str, Any]) -> str:
    return f"{_s(item, 'measure')}|{_s(item, 'timeFrame')}"


def name_key(item: Mapping[str, Any]) -> str:
    return _s(item, "name")


def name_role_key(item: Mapping[str, Any]) -> str:
    return f"{_s(item, 'name')}|{_s(item, 'role')}"


def id_type_key(item: Mapping[str, Any]) -> str:
    return f"{_s(item, 'id')}|{_s(item, 'type')}"


def reference_key(item: Mapping[str, Any]) -> str:
    return _s(item, "pmid") or _s(item, "citation")


def url_key(item: Mapping[str, Any]) -> str:
    return _s(item, "url") or _s(item, "label")


def id_key(item: Mapping[str, Any]) -> str:
    return _s(item, "id")


def abbrev_key(item: Mapping[str, Any]) -> str:
    return _s(item, "abbrev") or _s(item, "name")


def filename_key(item: Mapping[str, Any]) -> str:
    return _s(item, "filename") or _s(item, "label")


def _canonical(value: Json) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _scalar_sort_key(value: Json) -> tuple[str, str]:
    return (type(value).__name__, str(value))


# Lists inside items that have an identity of their own (location contacts, retractions).
_NESTED_KEYS: Mapping[str, KeyFunc] = {
    "contacts": name_role_key,
    "retractions": lambda item: _s(item, "pmid") or _s(item, "source"),
}


def normalize(value: Json) -> Json:
    """The order-insensitive form of a value: known nested lists keyed, other lists sorted.

    Extraction keeps values as the record has them (so equal parts of two versions compare
    equal at C speed); `watcher.detect.diff` normalizes only the values that differ, and every
    value it reports. Parts that need no change are shared with the input, not copied.
    """
    kind = type(value)
    if kind is dict:
        out: dict[str, Json] | None = None
        for k, v in value.items():
            kv = type(v)
            if kv is list or kv is dict:
                key_func = _NESTED_KEYS.get(k) if kv is list else None
                if key_func is not None:
                    nv: Json = {ik: normalize(iv) for ik, iv in keyed(v, (key_func,)).items()}
                else:
                    nv = normalize(v)
                if nv is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = nv
        return value if out is None else out
    if kind is list:
        if not any(type(i) is dict or type(i) is list for i in value):
            try:
                ordered = sorted(value)
            except TypeError:
                ordered = sorted(value, key=_scalar_sort_key)
            return value if ordered == value else ordered
        return sorted((normalize(i) for i in value), key=_canonical)
    return value


def keyed(items: Iterable[Any], keys: Sequence[KeyFunc]) -> dict[str, Json]:
    """Items by identity: the first key that is unique wins; duplicates get `#2`, `#3`, ...

    Each key function is tried in turn on the items that still collide, then the rest get
    an occurrence suffix in the order of their content, so that the result does not depend
    on the list's order. Items are kept as they are (see `normalize`); an item that is not
    an object is keyed by its JSON text rather than dropped.
    """
    first = keys[0]
    out: dict[str, Json] = {}
    items = list(items)
    for item in items:
        key = first(item) if type(item) is dict else _canonical(item)
        if key in out:
            break
        out[key] = item
    else:
        return out
    out.clear()
    _assign(items, keys, out)
    return out


def _assign(items: list[Json], keys: Sequence[KeyFunc], out: dict[str, Json]) -> None:
    groups: dict[str, list[Json]] = {}
    for item in items:
        key = keys[0](item) if type(item) is dict else _canonical(item)
        groups.setdefault(key, []).append(item)
    for key, group in groups.items():
        if len(group) == 1 and key not in out:
            out[key] = group[0]
        elif len(keys) > 1:
            _assign(group, keys[1:], out)
        else:
            n = 1
            for item in sorted(group, key=lambda i: _canonical(normalize(i))):
                name = key
                while name in out:
                    n += 1
                    name = f"{key}#{n}"
                out[name] = item


def fingerprint(value: Json) -> str:
    """A short, stable digest that changes whenever the value does (key order ignored)."""
    text = json.dumps(value, sort_keys=True, check_circular=False, separators=(",", ":"))
    return "blake2b:" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

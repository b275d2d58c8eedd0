"""Canonical JSON of records and their parts, encoded once, at orjson's speed, byte for byte as before.

`content_hash` (the column every stored version carries) and the blob digests are SHA-256 of
`json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` in UTF-8. With the
standard library that costs more than parsing the record; orjson writes the same bytes about ten
times faster, except where the two disagree, and those cases are sent to the standard library:

- floats Python writes with an exponent (`1e-05`, `1e+16`): orjson writes `0.00001` or `1e16`, so an
  output with a digit before `e` or a number starting `0.0000` (a false alarm in text only costs
  time) is redone. The first is looked for with `bytes.translate` and a plain search, several times
  faster over a record than any regular expression;
- what orjson refuses (integers beyond 64 bits, keys that are not strings, mappings that are not
  dicts, strings with lone surrogates) is redone, and fails or not exactly as before;
- NaN and infinities (orjson writes `null`) are not JSON and cannot come from the registry: the page
  and response readers refuse them (`watcher.registry.pages`).

A record is encoded as its parts (each top-level section, `protocolSection` one module per part: the
unit the store keeps), and the content hash is computed from the same bytes, assembled as the
whole record's canonical JSON would be: a record is serialised once for its hash and its blobs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

SPLIT = ("protocolSection",)  # sections stored one level further down, one part per module
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_SMALL = re.compile(rb"(?:^|[:,\[])-?0\.0000")
_SORTED = orjson.OPT_SORT_KEYS


def canonical_bytes(value: Any) -> bytes:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` in UTF-8."""
    try:
        raw = orjson.dumps(value, option=_SORTED)
    except TypeError:  # orjson.JSONEncodeError is one
        return _standard(value)
    if b"0e" in raw.translate(_DIGITS) or (b"0.0000" in raw and _SMALL.search(raw) is not None):
        return _standard(value)
    return raw


def _standard(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Encoded:
    """A record's content hash and the canonical bytes of each of its parts (path → bytes)."""

    digest: str
    parts: tuple[tuple[Path, bytes], ...]


def encode_record(record: Mapping[str, Any]) -> Encoded:
    """The record's parts in canonical JSON and its content hash, from one serialisation.

    The hash leaves out `derivedSection.miscInfoModule.versionHolder`, the date ClinicalTrials.gov
    regenerated the record: it moves on every data refresh without any edit (see `content_hash`).
    Each part is written once by orjson and checked for floats it writes otherwise than json by two
    searches; `derivedSection` is written a module at a time, so that only its small
    `miscInfoModule` is written twice (with and without the version date).
    """
    if not isinstance(record, dict) or not all(isinstance(k, str) for k in record):
        return Encoded(_hash_standard(record), tuple(((str(k),), _standard(v)) for k, v in record.items()))
    parts: list[tuple[Path, bytes]] = []
    pieces: list[bytes] = []  # the whole record's canonical JSON, hashed at once, less its braces and commas
    for key in sorted(record):
        value = record[key]
        if key in SPLIT and _splits(value):
            inner: list[bytes] = []
            for sub in sorted(value):
                raw = _part(value[sub])
                parts.append(((key, sub), raw))
                inner.append(_key(sub) + raw)
            pieces.append(_key(key) + b"{" + b",".join(inner) + b"}")
            continue
        raw, hashed = _derived(value) if key == "derivedSection" else (_part(value), None)
        parts.append(((key,), raw))
        pieces.append(_key(key) + (raw if hashed is None else hashed))
    return Encoded(hashlib.sha256(b"{" + b",".join(pieces) + b"}").hexdigest(), tuple(parts))


_EXPONENT = re.compile(rb"e(?<=[0-9]e)[0-9+-]")
"""A digit, `e`, and a digit or sign: where orjson may have written a float with an exponent. Found
by its `e` first, several times faster than translating the text to look for a digit before `e`."""


def _part(value: Any) -> bytes:
    """`canonical_bytes(value)`, with the usual case (orjson's bytes, no float it writes otherwise
    than json) found by two searches; anything else goes through `canonical_bytes` itself."""
    try:
        raw = orjson.dumps(value, option=_SORTED)
    except TypeError:
        return _standard(value)
    if _EXPONENT.search(raw) is None and b"0.0000" not in raw:
        return raw
    return canonical_bytes(value)


def _splits(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(k, str) for k in value)


def _derived(derived: Any) -> tuple[bytes, bytes | None]:
    """`derivedSection`'s canonical bytes, and those it is hashed with (None: the same)."""
    misc = derived.get("miscInfoModule") if isinstance(derived, dict) else None
    if not isinstance(misc, dict) or "versionHolder" not in misc or not _splits(derived):
        trimmed = _without_version_holder(derived)
        return _part(derived), (None if trimmed is None else _part(trimmed))
    modules = {sub: _part(derived[sub]) for sub in sorted(derived)}
    raw = b"{" + b",".join(_key(sub) + data for sub, data in modules.items()) + b"}"
    modules["miscInfoModule"] = _part({k: v for k, v in misc.items() if k != "versionHolder"})
    return raw, b"{" + b",".join(_key(sub) + data for sub, data in modules.items()) + b"}"


@functools.lru_cache(maxsize=4096)
def _key(key: str) -> bytes:
    """`"key":` — records repeat a few hundred keys, so each is written once."""
    return canonical_bytes(key) + b":"


def _without_version_holder(derived: Any) -> Any | None:
    """`derivedSection` without `miscInfoModule.versionHolder`; None when it has none."""
    misc = derived.get("miscInfoModule") if isinstance(derived, Mapping) else None
    if not isinstance(misc, Mapping) or "versionHolder" not in misc:
        return None
    return {**derived, "miscInfoModule": {k: v for k, v in misc.items() if k != "versionHolder"}}


def _hash_standard(record: Mapping[str, Any]) -> str:
    derived = record.get("derivedSection")
    trimmed = _without_version_holder(derived)
    if trimmed is not None:
        record = {**record, "derivedSection": trimmed}
    return hashlib.sha256(_standard(record)).hexdigest()

"""How deep a record nests, found at the speed of a serialisation rather than of a walk.

Every fetched study is checked before anything recursive reads it. Walking a record in Python
visits each of its values and cost about twice `json.loads` of it, more than the rest of a first
sync's work per record. Instead the record is written by orjson (a tenth of that) and its nesting
read from the text with bytes and regular-expression operations in C: escapes and string contents
are dropped, leaving only brackets, and each pass of `replace(b"[]", b"")` removes the innermost pairs, so a record ten
levels deep is empty after ten passes. Only a record that is not empty after `limit` passes (or
that orjson refuses) is walked, so the answer is the walk's in every case.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

MAX_DEPTH = 64
"""How deep a record may nest. Real records nest about ten levels; past a few hundred Python's
decoder, orjson and every recursive walk over a record fail."""

_CONTAINERS = (dict, list)
_OTHER_BYTES = bytes(b for b in range(256) if b not in b'[]{}"')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_SQUARE = bytes.maketrans(b"{}", b"[]")


def depth_over(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` holds an item deeper than `limit` objects and arrays (never recursion)."""
    try:
        text = orjson.dumps(value)
    except TypeError:  # what orjson refuses (integers beyond 64 bits, nesting past 255): the walk decides
        return _walk_over(value, limit)
    return not _within(text, limit) and _walk_over(value, limit)


def _within(text: bytes, limit: int) -> bool:
    """Whether JSON `text` nests at most `limit` arrays and objects deep (empty ones count too)."""
    if b"\\" in text:  # every escape (`\\`, `\"`, `\n`…) as a unit: each quote left opens or closes a string
        text = _ESCAPE.sub(b"", text)
    skeleton = text.translate(None, _OTHER_BYTES).replace(b'""', b"")  # brackets; strings without any vanish
    if b'"' in skeleton:
        skeleton = b"".join(skeleton.split(b'"')[::2])
    skeleton = skeleton.translate(_SQUARE)
    for _ in range(limit):
        if not skeleton:
            return True
        skeleton = skeleton.replace(b"[]", b"")
    return not skeleton


def _walk_over(value: Any, limit: int) -> bool:
    """The exact answer, one level of containers at a time: an item is deeper than `limit` when a
    container at depth `limit` holds anything."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    for _ in range(limit):
        if not level:
            return False
        below: list[Any] = []
        for item in level:
            below.extend([c for c in (item.values() if isinstance(item, dict) else item) if isinstance(c, _CONTAINERS)])
        level = below
    return any(level)

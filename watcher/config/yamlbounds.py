"""Bounds on what a loaded YAML document may cost, whichever loader built it.

A YAML alias is a reference: `b: [*a, *a]` loads as one list reachable twice, so a 500-byte file
with aliases nested nine deep ("billion laughs") loads in a few kilobytes yet stands for hundreds of
millions of values. Nothing goes wrong until something walks or prints the value — a validator
rendering it into an error message, a comparison, a copy — and then the process runs out of memory.
So a loaded document is walked once, in document order, counting the values each alias adds; past
`ALIAS_EXPANSION_LIMIT` it is refused with the line of the alias that crossed the bound. The walk
only looks at the loaded Python values (mappings, lists, tuples), so it works for any loader that
shares aliased nodes (ruamel.yaml, PyYAML and their C loaders all do).

Values rendered into messages go through `short_repr`, which never renders more than a few dozen
characters whatever the value holds.
"""

from __future__ import annotations

import itertools
import reprlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

ALIAS_EXPANSION_LIMIT = 100_000
"""Values that aliases may add to a document. Real configurations reuse a channel list or a
rule set a few thousand times at most; a bomb adds hundreds of millions."""

SHORT_REPR_LIMIT = 80


@dataclass(frozen=True, slots=True)
class Overflow:
    """Where a document's aliases crossed the bound: the key path and the line of the alias."""

    path: str
    line: int | None
    message: str


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple)


def _entries(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            if _is_container(key):
                yield key, key
            yield key, child
    else:
        yield from enumerate(value)


@dataclass(slots=True)
class _Frame:
    value: Any
    entries: Iterator[tuple[Any, Any]]
    key: Any  # where the value sits in its parent (unused for the document itself)
    size: int = 1


def _path(stack: list[_Frame], key: Any) -> str:
    """`trials[3].channels`: built only when something is reported (building it at each step would
    make a deeply nested document cost the square of its depth)."""
    path = ""
    steps = [(frame.value, child.key) for frame, child in itertools.pairwise(stack)]
    for parent, step in [*steps, (stack[-1].value, key)]:
        if isinstance(parent, Mapping):
            shown = step if isinstance(step, str) else short_repr(step, 40)
            path = f"{path}.{shown}" if path else shown
        else:
            path = f"{path}[{step}]"
    return path


def alias_overflow(
    document: Any, line_of: Callable[[Any, Any], int | None], limit: int = ALIAS_EXPANSION_LIMIT
) -> Overflow | None:
    """The first place where the values added by aliases pass `limit`, or where a value contains
    itself; None for a document that is fine. Iterative: a deeply nested document is no problem.
    `line_of(parent, key)` gives the line of an entry when the loader kept lines (else None)."""
    if not _is_container(document):
        return None
    sizes: dict[int, int] = {}
    open_ids = {id(document)}
    stack = [_Frame(document, _entries(document), None)]
    added = 0
    while stack:
        frame = stack[-1]
        entry = next(frame.entries, None)
        if entry is None:
            stack.pop()
            open_ids.discard(id(frame.value))
            sizes[id(frame.value)] = frame.size
            if stack:
                stack[-1].size += frame.size
            continue
        key, child = entry
        if not _is_container(child):
            frame.size += 1
            continue
        if id(child) in open_ids:
            return Overflow(
                _path(stack, key), line_of(frame.value, key), "a YAML alias that refers to a value containing it"
            )
        if id(child) in sizes:
            added += sizes[id(child)]
            frame.size += sizes[id(child)]
            if added > limit:
                message = f"YAML aliases expand to more than {limit:,} values (expected plain values or a few aliases)"
                return Overflow(_path(stack, key), line_of(frame.value, key), message)
            continue
        open_ids.add(id(child))
        stack.append(_Frame(child, _entries(child), key))
    return None


class _Short(reprlib.Repr):
    """reprlib's bounded rendering, for mapping and list subclasses too (ruamel's CommentedMap/Seq
    would otherwise fall back to their own unbounded repr)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple = 2, 4, 6, 6
        self.maxstring, self.maxother, self.maxlong = 60, 40, 40

    def repr1(self, x: Any, level: int) -> str:
        try:
            if isinstance(x, str):
                return self.repr_str(str(x), level)
            if isinstance(x, Mapping):
                return self.repr_dict(dict(list(_first(x.items(), self.maxdict + 1))), level) if x else "{}"
            if isinstance(x, list):
                return self._items(x, "[", "]", level)
            if isinstance(x, tuple):
                return self._items(x, "(", ")", level)
            return super().repr1(x, level)
        except Exception:  # a value whose repr fails (an int past Python's digit limit) is still shown
            return f"<{type(x).__name__}>"

    def _items(self, x: list[Any] | tuple[Any, ...], left: str, right: str, level: int) -> str:
        if not x:
            return left + right
        if level <= 0:
            return f"{left}...{right}"
        shown = [self.repr1(item, level - 1) for item in x[: self.maxlist]]
        if len(x) > self.maxlist:
            shown.append("...")
        return left + ", ".join(shown) + right


def _first(items: Any, count: int) -> Iterator[Any]:
    for index, item in enumerate(items):
        if index >= count:
            return
        yield item


_SHORT = _Short()


def short_repr(value: Any, limit: int = SHORT_REPR_LIMIT) -> str:
    """`repr(value)` for error messages, bounded: never more than `limit` characters, whatever the
    value holds, and never walking more than a handful of its items."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

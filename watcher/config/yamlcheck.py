"""Reading YAML with line numbers, and collecting every problem with its file, line and key path.

ruamel.yaml is used (not PyYAML) because it keeps line numbers for every key and list item.

Bounds on what a document may cost once loaded, whichever loader built it:

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
import re
import reprlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from watcher.errors import Problem
from watcher.models import SEVERITIES, Severity

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """`10s`, `30m`, `6h`, `1d`, or combinations such as `1h30m`."""
    match = _DURATION_RE.match(text.strip()) if text else None
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration such as 10s, 30m, 6h or 1d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The text `parse_duration` reads back: `6h`, `1h30m`, `0s`."""
    seconds = int(value.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds // 3600 % 24, "h"), (seconds // 60 % 60, "m"), (seconds % 60, "s")]
    return "".join(f"{count}{unit}" for count, unit in parts if count) or "0s"


class Validator:
    """Collects problems for one file while reading typed values out of its YAML tree."""

    def __init__(self, file: Path | str) -> None:
        self.file = str(file)
        self.problems: list[Problem] = []

    def add(self, line: int | None, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, key, message))

    @staticmethod
    def line_of(node: Any, key: Any = None) -> int | None:
        try:
            if key is None:
                return int(node.lc.line) + 1
            if isinstance(node, CommentedSeq):
                return int(node.lc.item(key)[0]) + 1
            return int(node.lc.key(key)[0]) + 1
        except (AttributeError, KeyError, IndexError, TypeError):
            return None

    def mapping(self, parent: Any, key: str, path: str) -> Mapping[str, Any] | None:
        value = parent.get(key) if isinstance(parent, Mapping) else None
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.add(self.line_of(parent, key), path, f"expected a mapping, got {kind(value)}")
            return None
        return value

    def unknown_keys(self, node: Any, allowed: Sequence[str], path: str) -> None:
        if not isinstance(node, Mapping):
            return
        for key in node:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.add(self.line_of(node, key), where, f"unknown key (expected one of: {', '.join(allowed)})")

    def string(self, node: Any, key: str, path: str, default: str | None = None) -> str | None:
        value = node.get(key, default) if isinstance(node, Mapping) else default
        if value is None or isinstance(value, str):
            return value
        self.add(self.line_of(node, key), path, f"expected a string, got {kind(value)}")
        return default

    def number(self, node: Any, key: str, path: str, default: float, minimum: float = 0) -> float:
        value = node.get(key, default) if isinstance(node, Mapping) else default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(self.line_of(node, key), path, f"expected a number, got {kind(value)}")
            return default
        if value < minimum:
            self.add(self.line_of(node, key), path, f"must be at least {minimum}, got {value}")
            return default
        return float(value)

    def boolean(self, node: Any, key: str, path: str, default: bool) -> bool:
        value = node.get(key, default) if isinstance(node, Mapping) else default
        if isinstance(value, bool):
            return value
        self.add(self.line_of(node, key), path, f"expected true or false, got {kind(value)}")
        return default

    def strings(self, node: Any, key: str, path: str) -> tuple[str, ...]:
        value = node.get(key) if isinstance(node, Mapping) else None
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.add(self.line_of(node, key), path, "expected a string or a list of strings")
        return ()

    def severity(self, node: Any, key: str, path: str) -> Severity | None:
        value = node.get(key) if isinstance(node, Mapping) else None
        if value is None:
            return None
        if value in SEVERITIES:
            return value  # type: ignore[no-any-return]
        self.add(self.line_of(node, key), path, f"{short_repr(value)} is not one of {', '.join(SEVERITIES)}")
        return None


def kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {short_repr(value)}"


def read_yaml(path: Path, validator: Validator) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        validator.add(None, "", "file not found")
        return None
    except OSError as exc:
        validator.add(None, "", f"cannot read: {exc.strerror}")
        return None
    return load_yaml_text(text, validator)


def load_yaml_text(text: str, validator: Validator) -> Any:
    """The document in `text`, or None with the problem added: a syntax error, a document nested past
    what the parser can follow, or aliases that expand past the bound (see `watcher.config.yamlcheck`)."""
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        validator.add(line, "", f"YAML syntax error: {exc.problem or exc.context}")
        return None
    except YAMLError as exc:
        validator.add(None, "", f"YAML syntax error: {short_repr(str(exc), 200)}")
        return None
    except RecursionError:
        validator.add(None, "", "YAML nested too deeply to read (expected a few levels of mappings and lists)")
        return None
    return bounded(document, validator)


def bounded(document: Any, validator: Validator) -> Any:
    """`document`, or None (with the problem added) when its aliases expand past the bound."""
    overflow = alias_overflow(document, validator.line_of)
    if overflow is None:
        return document
    validator.add(overflow.line, overflow.path, overflow.message)
    return None


# -- bounds on a loaded document -----------------------------------------------------------------

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

"""Collecting every problem of a settings file or watchlist with its file, line and key path.

The document is parsed by `watcher.config.yamlload` (libyaml, lines kept) and bounded by
`watcher.config.yamlbounds` (aliases, rendered values) before any validator looks at it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from watcher.config.yamlbounds import alias_overflow, short_repr
from watcher.config.yamlload import YamlSyntaxError, load_config_yaml
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
            if isinstance(node, list):
                return int(node.lc.item(key)[0]) + 1  # type: ignore[attr-defined]
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
    what the parser can follow, or aliases that expand past the bound (`watcher.config.yamlbounds`)."""
    try:
        document = load_config_yaml(text)
    except YamlSyntaxError as exc:
        validator.add(exc.line, "", f"YAML syntax error: {short_repr(exc.problem, 200)}")
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

"""What a configuration value may be: how it is read from YAML, checked, and shown in the reference.

A kind reads one key in two steps so that every section reports its problems in the same order:
`read` reports a value that is not of the kind (a word where a number belongs) and `check`, run once
the whole section is read, a value of the kind the rest of the system would refuse (0 where at least 1
is needed, an unknown timezone). `label` and `show` are the reference's type and default columns.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from watcher.config.yamlbounds import short_repr
from watcher.config.yamlcheck import Validator, format_duration, kind, parse_duration
from watcher.models import SEVERITIES, Severity

if TYPE_CHECKING:
    from watcher.config.keys import Key

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reading:
    """What reading a file needs besides the YAML: where problems go, what relative paths are
    relative to, and the environment channel URLs take `${VAR}` from."""

    validator: Validator
    base_dir: Path = Path()
    environ: Mapping[str, str] = field(default_factory=dict)
    look_up: bool = True
    """Run the checks that load a library to look a value up (apprise's URL schemes: ~0.2 s of
    imports). Commands that only show what is stored (`status`, `list`) never send, so skip them."""


class ValueKind(ABC, Generic[T]):
    """The base of every kind; the defaults suit a value that is read as it is written."""

    __slots__ = ()

    @property
    @abstractmethod
    def label(self) -> str:
        """What the value may be, as the reference's type column says it."""

    @abstractmethod
    def read(self, node: Mapping[str, Any], key: str, path: str, default: T, reading: Reading) -> T:
        """The value of `key`, present in `node`; on a problem, `default` (the file is refused anyway)."""

    looked_up: ClassVar[bool] = False
    """True for a kind whose `check` loads a library to look the value up (see `Reading.look_up`)."""

    def absent(self, default: T, reading: Reading) -> T:
        """The value when the key is not written."""
        return default

    def check(self, value: T, raw: Any) -> str | None:
        """Why a value that was read is refused, or None; `raw` is the value as the YAML wrote it."""
        return None

    def show(self, value: T) -> str:
        """A default as one would write it in the file."""
        return "none" if value is None else str(value)

    def members(self) -> tuple[str, tuple[Key, ...]] | None:
        """For a mapping of keys of its own: how its keys' paths join this one's (`.`, `.<name>.`), and the keys."""
        return None


@dataclass(frozen=True, slots=True)
class Text(ValueKind[Any]):
    """A string; empty or null means the default."""

    @property
    def label(self) -> str:
        return "text"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        return reading.validator.string(node, key, path) or default


@dataclass(frozen=True, slots=True)
class HttpUrl(ValueKind[Any]):
    """An http(s) URL, kept without its trailing slash."""

    @property
    def label(self) -> str:
        return "http(s) URL"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        text = reading.validator.string(node, key, path)
        if not text:
            return default
        if not re.match(r"^https?://", text):
            reading.validator.add(
                reading.validator.line_of(node, key), path, f"{short_repr(text)} is not an http(s) URL"
            )
            return default
        return text.rstrip("/")


@dataclass(frozen=True, slots=True)
class FilePath(ValueKind[Any]):
    """A file or folder, relative to the folder of the file that names it."""

    @property
    def label(self) -> str:
        return "path, relative to the settings file"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        text = reading.validator.string(node, key, path)
        return reading.base_dir / text if text else self.absent(default, reading)

    def absent(self, default: Any, reading: Reading) -> Any:
        return reading.base_dir / default if isinstance(default, Path) else default


@dataclass(frozen=True, slots=True)
class Flag(ValueKind[bool]):
    @property
    def label(self) -> str:
        return "true or false"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: bool, reading: Reading) -> bool:
        return reading.validator.boolean(node, key, path, default)

    def show(self, value: bool) -> str:
        return "true" if value else "false"


def _number(node: Mapping[str, Any], key: str, path: str, reading: Reading) -> float | None:
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        reading.validator.add(reading.validator.line_of(node, key), path, f"expected a number, got {kind(value)}")
        return None
    return value


@dataclass(frozen=True, slots=True)
class Number(ValueKind[float]):
    at_least: float = 0

    @property
    def label(self) -> str:
        return f"number ≥ {self.at_least}"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: float, reading: Reading) -> float:
        value = _number(node, key, path, reading)
        return default if value is None else float(value)

    def check(self, value: float, raw: Any) -> str | None:
        return f"must be at least {self.at_least}, got {raw}" if raw < self.at_least else None

    def show(self, value: float) -> str:
        return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Integer(ValueKind[int]):
    """A count; a fraction is cut to its whole part."""

    at_least: int = 1

    @property
    def label(self) -> str:
        return f"whole number ≥ {self.at_least}"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: int, reading: Reading) -> int:
        value = _number(node, key, path, reading)
        return default if value is None else int(value)

    def check(self, value: int, raw: Any) -> str | None:
        return f"must be at least {self.at_least}, got {raw}" if raw < self.at_least else None


@dataclass(frozen=True, slots=True)
class Days(ValueKind[timedelta]):
    """A number of days (a fraction is kept)."""

    at_least: int = 1

    @property
    def label(self) -> str:
        return f"number of days ≥ {self.at_least}"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: timedelta, reading: Reading) -> timedelta:
        value = _number(node, key, path, reading)
        return default if value is None else timedelta(days=value)

    def check(self, value: timedelta, raw: Any) -> str | None:
        return f"must be at least {self.at_least}, got {raw}" if raw < self.at_least else None

    def show(self, value: timedelta) -> str:
        return f"{value / timedelta(days=1):g}"


@dataclass(frozen=True, slots=True)
class Duration(ValueKind[timedelta]):
    """`10s`, `30m`, `6h`, `1d` or combined (`1h30m`), with optional bounds; `why` ends the bounds' message."""

    longer_than: timedelta | None = None
    at_least: timedelta | None = None
    at_most: timedelta | None = None
    why: str = ""

    @property
    def label(self) -> str:
        if self.at_least is not None and self.at_most is not None:
            bounds = f" from {format_duration(self.at_least)} to {format_duration(self.at_most)}"
        elif self.at_least is not None:
            bounds = f" ≥ {format_duration(self.at_least)}"
        elif self.longer_than is not None:
            bounds = f" > {format_duration(self.longer_than)}"
        else:
            bounds = ""
        return f"duration (10s, 30m, 6h, 1d, 1h30m){bounds}"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: timedelta, reading: Reading) -> timedelta:
        try:
            return parse_duration(str(node[key]))
        except ValueError as exc:
            reading.validator.add(reading.validator.line_of(node, key), path, str(exc))
            return default

    def check(self, value: timedelta, raw: Any) -> str | None:
        low, high = self.at_least, self.at_most
        if low is not None and high is not None and not low <= value <= high:
            why = f" ({self.why})" if self.why else ""
            return f"must be between {format_duration(low)} and {format_duration(high)}{why}"
        if low is not None and high is None and value < low:
            return f"must be at least {format_duration(low)}"
        if self.longer_than is not None and value <= self.longer_than:
            return f"must be longer than {format_duration(self.longer_than)}"
        return None

    def show(self, value: timedelta) -> str:
        return format_duration(value)


@dataclass(frozen=True, slots=True)
class Nullable(ValueKind[Any]):
    """`inner`, or nothing (null or absent): None."""

    inner: ValueKind[Any]

    @property
    def label(self) -> str:
        return self.inner.label

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        return None if node[key] is None else self.inner.read(node, key, path, default, reading)

    def check(self, value: Any, raw: Any) -> str | None:
        return None if value is None else self.inner.check(value, raw)


@dataclass(frozen=True, slots=True)
class SeverityLevel(ValueKind[Severity | None]):
    @property
    def label(self) -> str:
        return ", ".join(SEVERITIES)

    def read(
        self, node: Mapping[str, Any], key: str, path: str, default: Severity | None, reading: Reading
    ) -> Severity | None:
        return reading.validator.severity(node, key, path)


@dataclass(frozen=True, slots=True)
class Texts(ValueKind[tuple[str, ...]]):
    """One string or a list of strings (field globs, tags)."""

    @property
    def label(self) -> str:
        return "text or list of texts"

    def read(
        self, node: Mapping[str, Any], key: str, path: str, default: tuple[str, ...], reading: Reading
    ) -> tuple[str, ...]:
        return reading.validator.strings(node, key, path)

    def show(self, value: tuple[str, ...]) -> str:
        return ", ".join(value) if value else "none"


@dataclass(frozen=True, slots=True)
class Choice(ValueKind[str]):
    """One word of `options`; YAML's true and false stand for the words `true` and `false` name."""

    options: tuple[str, ...]
    true: str | None = None
    false: str | None = None

    @property
    def label(self) -> str:
        return f"one of {', '.join(self.options)}"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: str, reading: Reading) -> str:
        value = node[key]
        if isinstance(value, bool) and (self.true if value else self.false):
            return str(self.true if value else self.false)
        return str(value)

    def check(self, value: str, raw: Any) -> str | None:
        return None if value in self.options else f"{short_repr(raw)} is not one of {', '.join(self.options)}"


_SQLITE_RELATIVE = re.compile(r"^(sqlite(?:\+\w+)?:///)(?![/~])([^?]+)(\?.*)?$")


def resolve_sqlite_url(url: str, base_dir: Path) -> str:
    """`sqlite:///state/tw.sqlite` → `sqlite:////<base_dir>/state/tw.sqlite`; absolute, `~`, in-memory
    and other databases' URLs are kept as they are."""
    match = _SQLITE_RELATIVE.match(url)
    if match is None or match.group(2) == ":memory:":
        return url
    prefix, database, query = match.groups()
    return f"{prefix}{(base_dir / database).absolute()}{query or ''}"


@dataclass(frozen=True, slots=True)
class DatabaseUrl(Text):
    """Any SQLAlchemy URL: only its `scheme://` is checked here (`check-config` tries the rest). A
    relative SQLite path is relative to the settings file's folder, as every path in the file is."""

    @property
    def label(self) -> str:
        return "SQLAlchemy URL"

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        value = Text.read(self, node, key, path, default, reading)
        return resolve_sqlite_url(value, reading.base_dir) if isinstance(value, str) else value

    def check(self, value: Any, raw: Any) -> str | None:
        if "://" in value:
            return None
        return f"{short_repr(value)} is not an SQLAlchemy URL such as sqlite:///path or postgresql+psycopg://…"


@dataclass(frozen=True, slots=True)
class SeverityRules(ValueKind[Mapping[str, Severity]]):
    """`severity:`, field glob → the severity of a change to a matching field."""

    @property
    def label(self) -> str:
        return f"mapping of field glob → {', '.join(SEVERITIES)}"

    def read(
        self, node: Mapping[str, Any], key: str, path: str, default: Mapping[str, Severity], reading: Reading
    ) -> Mapping[str, Severity]:
        rules_node = reading.validator.mapping(node, key, path) or {}
        rules = {str(glob): reading.validator.severity(rules_node, glob, f"{path}.{glob}") for glob in rules_node}
        return {glob: severity for glob, severity in rules.items() if severity}

    def show(self, value: Mapping[str, Severity]) -> str:
        return "the built-in rules"


@dataclass(frozen=True, slots=True)
class ReadByParser(ValueKind[Any]):
    """A key its file's parser reads itself, because the rules need more than the key: a bare NCT ID
    in place of a trial's mapping, the channels configured, the other keys of the item. Its `Key`
    gives the reference a type and the unknown-key message a name; `what` is that type, `below` the
    keys of a mapping (or of a list's mappings) as `ValueKind.members` gives them."""

    what: str
    below: tuple[str, tuple[Key, ...]] | None = None

    @property
    def label(self) -> str:
        return self.what

    def members(self) -> tuple[str, tuple[Key, ...]] | None:
        return self.below

    def read(self, node: Mapping[str, Any], key: str, path: str, default: Any, reading: Reading) -> Any:
        raise TypeError(f"{path} is read by its file's parser, not by its kind")
